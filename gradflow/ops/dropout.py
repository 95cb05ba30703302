"""Dropout: a mask drawn from the device's generator, scaled by 1/(1-p).

Forward is the backend's fused primitive ``dropout_forward`` (mask and scale in one
pass): the CPU draws the mask with ``backend.rand``, the GPU with the Philox kernel
of ``kernels/dropout.cu`` keyed by the backend's (seed, draws) state, so
``gradflow.manual_seed`` and ``get/set_rng_state`` replay masks on each device.
Forward keeps the uint8 mask. The derivative has one formula for every order:
``grad * mask * scale``, a product of the incoming gradient with a constant, so under
``create_graph=True`` it is recorded like any product and differentiates to itself.
"""

from __future__ import annotations

import numbers

from ..autograd.function import Function
from ..errors import ArgumentValueError
from ..tensor import Tensor
from ._checks import require_float
from .inplace import apply_inplace


class Dropout(Function):
    """``x * mask * scale`` with the mask drawn by the fused primitive; backward is ``grad * mask * scale``."""

    @staticmethod
    def forward(ctx, x, p):
        out, mask = ctx.device.backend.dropout_forward(x, p)
        ctx.scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        # The same scaled mask as forward's product, so gradients equal forward's scaling bit for bit.
        dtype = grad._data.dtype
        scaled_mask = mask._data.astype(dtype) * dtype.type(ctx.scale)
        return grad * Tensor._wrap(scaled_mask, grad._device), None


def _check_probability(p) -> float:
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ArgumentValueError(f"dropout probability has to be between 0 and 1, but got {p}")
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
        return apply_inplace(input, "dropout_", lambda old: Dropout.apply(old, p))
    return Dropout.apply(input, p)


__all__ = ["dropout"]
