"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from ..errors import ArgumentValueError
from ._functional import sgd
from .optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        buf = g                                             (first step)
        buf = momentum * buf + (1 - dampening) * g          (later steps)
        g = g + momentum * buf if nesterov else buf          (when momentum != 0)
        p = p - lr * g

    State per parameter: ``'momentum_buffer'`` (only when ``momentum != 0``). Mixed precision: a
    float16 parameter keeps a float32 buffer, its update is computed in float32 and rounded once.

    >>> import gradflow as gf
    >>> from gradflow.optim import SGD
    >>> w = gf.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.8, -1.6]
    """

    _options_added_later = {"nesterov": False, "maximize": False}
    _float32_state_for_half = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_hyperparameter(lr >= 0.0, "learning rate", lr, "lr >= 0")
        check_hyperparameter(momentum >= 0.0, "momentum value", momentum, "momentum >= 0")
        check_hyperparameter(weight_decay >= 0.0, "weight_decay value", weight_decay, "weight_decay >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ArgumentValueError(
                f"Nesterov momentum requires a momentum and zero dampening (got momentum={momentum}, "
                f"dampening={dampening}); pass momentum > 0 and dampening=0, or nesterov=False"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict) -> None:
        momentum = group["momentum"]
        for params in self._params_by_device(group).values():
            buffers, first_steps = [], []
            if momentum != 0:
                for param in params:
                    state = self.state[param]
                    buffer = state.get("momentum_buffer")
                    first_steps.append(buffer is None)
                    if buffer is None:
                        # Filled with the gradient by the primitive (first_steps), so zeros are only a placeholder.
                        buffer = state["momentum_buffer"] = self._new_state(param)
                    buffers.append(buffer)
            sgd(
                params,
                [param.grad for param in params],
                buffers,
                lr=group["lr"],
                momentum=momentum,
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                first_steps=first_steps,
            )
