"""RMSprop, with optional centering, momentum and weight decay."""

from __future__ import annotations

from ._functional import rmsprop
from .optimizer import Optimizer, check_hyperparameter


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), as ``torch.optim.RMSprop``.

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        g_avg = alpha * g_avg + (1 - alpha) * g                (centered)
        avg = sqrt(v - g_avg * g_avg) + eps if centered else sqrt(v) + eps
        buf = momentum * buf + g / avg;  p = p - lr * buf     (momentum > 0)
        p = p - lr * g / avg                                  (otherwise)

    State per parameter: ``'step'``, ``'square_avg'``, plus ``'momentum_buffer'`` (momentum > 0)
    and ``'grad_avg'`` (centered).

    >>> import gradflow as gf
    >>> from gradflow.optim import RMSprop
    >>> w = gf.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = RMSprop([w], lr=0.01, alpha=0.75)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.98, -1.98]
    """

    _options_added_later = {"momentum": 0, "centered": False, "maximize": False}

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_hyperparameter(lr >= 0.0, "learning rate", lr, "lr >= 0")
        check_hyperparameter(eps >= 0.0, "epsilon value", eps, "eps >= 0")
        check_hyperparameter(momentum >= 0.0, "momentum value", momentum, "momentum >= 0")
        check_hyperparameter(weight_decay >= 0.0, "weight_decay value", weight_decay, "weight_decay >= 0")
        check_hyperparameter(alpha >= 0.0, "alpha value", alpha, "alpha >= 0")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict) -> None:
        momentum, centered = group["momentum"], group["centered"]
        for params in self._params_by_device(group).values():
            square_avgs, grad_avgs, buffers, state_steps = [], [], [], []
            for param in params:
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = self._new_step()
                    state["square_avg"] = self._zeros_like(param)
                # Created on demand too, so momentum or centering switched on later starts from zeros.
                if momentum > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = self._zeros_like(param)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = self._zeros_like(param)
                square_avgs.append(state["square_avg"])
                state_steps.append(state["step"])
                if momentum > 0:
                    buffers.append(state["momentum_buffer"])
                if centered:
                    grad_avgs.append(state["grad_avg"])
            rmsprop(
                params,
                [param.grad for param in params],
                square_avgs,
                grad_avgs,
                buffers,
                state_steps,
                lr=group["lr"],
                alpha=group["alpha"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum=momentum,
                centered=centered,
                maximize=group["maximize"],
            )
