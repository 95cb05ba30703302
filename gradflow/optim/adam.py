"""Adam, with optional AMSGrad and L2 (or, with ``decoupled_weight_decay``, AdamW's) weight decay."""

from __future__ import annotations

from ._functional import adam
from .optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014), as ``torch.optim.Adam``.

    Per parameter at step ``t``, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p            (p = p * (1 - lr * weight_decay) if decoupled_weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                (amsgrad; then v_max is used below instead of v)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: ``'step'`` (0-d float32 CPU tensor), ``'exp_avg'``, ``'exp_avg_sq'``
    and, with ``amsgrad``, ``'max_exp_avg_sq'``. Mixed precision: a float16 parameter keeps
    float32 moments, its update is computed in float32 and rounded once (on the CPU and on CUDA,
    like fused mixed-precision optimizers; PyTorch's default Adam would keep float16 moments).

    >>> import gradflow as gf
    >>> from gradflow.optim import Adam
    >>> w = gf.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.9, -1.9]
    """

    _options_added_later = {"amsgrad": False, "maximize": False, "decoupled_weight_decay": False}
    _float32_state_for_half = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_hyperparameter(lr >= 0.0, "learning rate", lr, "lr >= 0")
        check_hyperparameter(eps >= 0.0, "epsilon value", eps, "eps >= 0")
        for index in (0, 1):
            beta = betas[index]
            check_hyperparameter(0.0 <= beta < 1.0, f"beta parameter at index {index}", beta, "0 <= beta < 1")
        check_hyperparameter(weight_decay >= 0.0, "weight_decay value", weight_decay, "weight_decay >= 0")
        defaults = {
            "lr": lr,
            "betas": (float(betas[0]), float(betas[1])),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict) -> None:
        amsgrad = group["amsgrad"]
        beta1, beta2 = group["betas"]
        for params in self._params_by_device(group).values():
            exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps = [], [], [], []
            for param in params:
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = self._new_step()
                    state["exp_avg"] = self._new_state(param)
                    state["exp_avg_sq"] = self._new_state(param)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = self._new_state(param)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                if amsgrad:
                    max_exp_avg_sqs.append(state["max_exp_avg_sq"])
                state_steps.append(state["step"])
            adam(
                params,
                [param.grad for param in params],
                exp_avgs,
                exp_avg_sqs,
                max_exp_avg_sqs,
                state_steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                amsgrad=amsgrad,
                maximize=group["maximize"],
            )
