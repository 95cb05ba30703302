"""Dropout: a mask drawn from the device's generator, scaled by 1/(1-p).

The mask comes from ``input._device.backend.rand``, so ``gradflow.manual_seed``
makes a run reproducible on each device. Forward keeps the scaled mask; backward
multiplies by it (a constant), so double backward needs nothing more.
"""

from __future__ import annotations

import numbers

from ..autograd.function import Function
from ..tensor import Tensor
from ._checks import require_float


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p):
        backend = ctx.device.backend
        # Keep an element with probability 1 - p: u < 1 - p for u uniform in [0, 1).
        keep = backend.rand(x.shape, x.dtype) < (1.0 - p)
        scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
        mask = keep.astype(x.dtype) * x.dtype.type(scale)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def _check_probability(p) -> float:
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` (identity unless training).

    ``inplace=True`` writes the result into ``input``. ``p=1`` gives zeros.

    >>> import gradflow as gf
    >>> _ = gf.manual_seed(0)
    >>> y = gf.nn.functional.dropout(gf.ones(4), p=0.5)
    """
    p = _check_probability(p)
    if not training or p == 0.0:
        return input
    require_float("dropout", input)
    if inplace:
        from .inplace import apply_inplace

        return apply_inplace(input, "dropout_", lambda old: Dropout.apply(old, p))
    return Dropout.apply(input, p)


__all__ = ["dropout"]
