"""Adagrad, with learning-rate decay and weight decay."""

from __future__ import annotations

from ._functional import adagrad
from .optimizer import Optimizer, check_hyperparameter


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    Per parameter at step ``t``, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g * g
        p = p - clr * g / (sqrt(sum) + eps)

    State per parameter: ``'step'`` and ``'sum'`` (starting at ``initial_accumulator_value``).
    Like PyTorch, the state of the parameters given here is created at construction.

    >>> import gradflow as gf
    >>> from gradflow.optim import Adagrad
    >>> w = gf.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adagrad([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.tolist()
    [0.5, -1.5]
    """

    _options_added_later = {"maximize": False}

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        check_hyperparameter(lr >= 0.0, "learning rate", lr, "lr >= 0")
        check_hyperparameter(lr_decay >= 0.0, "lr_decay value", lr_decay, "lr_decay >= 0")
        check_hyperparameter(weight_decay >= 0.0, "weight_decay value", weight_decay, "weight_decay >= 0")
        check_hyperparameter(
            initial_accumulator_value >= 0.0,
            "initial_accumulator_value value",
            initial_accumulator_value,
            "initial_accumulator_value >= 0",
        )
        check_hyperparameter(eps >= 0.0, "epsilon value", eps, "eps >= 0")
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "maximize": maximize,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(param, group)

    def _init_state(self, param, group: dict) -> dict:
        state = self.state[param]
        if len(state) == 0:
            state["step"] = self._new_step()
            state["sum"] = self._zeros_like(param, group["initial_accumulator_value"])
        return state

    def _update_group(self, group: dict) -> None:
        for params in self._params_by_device(group).values():
            # Parameters added later with add_param_group get their state here (PyTorch would fail on them).
            states = [self._init_state(param, group) for param in params]
            adagrad(
                params,
                [param.grad for param in params],
                [state["sum"] for state in states],
                [state["step"] for state in states],
                lr=group["lr"],
                lr_decay=group["lr_decay"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
            )
