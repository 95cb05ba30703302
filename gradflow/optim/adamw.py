"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2017)."""

from __future__ import annotations

from .adam import Adam


class AdamW(Adam):
    """Adam whose weight decay shrinks the parameters instead of entering the moments, as ``torch.optim.AdamW``.

    Per parameter at step ``t``: ``p = p * (1 - lr * weight_decay)``, then Adam's update
    (see ``Adam``) without the L2 term. Note the default ``weight_decay=1e-2``.

    >>> import gradflow as gf
    >>> from gradflow.optim import AdamW
    >>> w = gf.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.85, -1.8]
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load like ``Optimizer.load_state_dict``; the groups stay AdamW (decoupled decay) whatever was saved."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
