"""softmax and log_softmax over one dimension, stable for any magnitude of input.

Both subtract the row maximum before exponentiating, so float32 logits of
+-1e4 give finite values and gradients. Backward is written with gradflow ops
on the saved output, so second derivatives work.
"""

from __future__ import annotations

from ..autograd.function import Function
from ._checks import normalize_dim, require_float


def _shifted(xp, x, axis):
    """x minus its maximum along ``axis``; rows that are all -inf (or hold +inf) are left unshifted."""
    if x.size == 0:
        return x
    peak = xp.amax(x, axis=axis, keepdims=True)
    return x - xp.where(xp.isfinite(peak), peak, 0).astype(x.dtype, copy=False)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = ctx.device.backend.xp
        exps = xp.exp(_shifted(xp, x, axis))
        out = exps / xp.sum(exps, axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # d softmax: y * (g - sum(g * y)) along the row.
        return out * (grad - (grad * out).sum(ctx.axis, keepdim=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = ctx.device.backend.xp
        shifted = _shifted(xp, x, axis)
        out = shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # d log_softmax: g - softmax * sum(g) along the row.
        return grad - out.exp() * grad.sum(ctx.axis, keepdim=True)


def _prepare(op: str, input, dim, dtype):
    if dim is None:
        raise TypeError(f"{op}: pass dim= (the dimension to normalise over), e.g. {op}(x, dim=-1)")
    if dtype is not None:
        input = input.to(dtype)
    require_float(op, input)
    return input, normalize_dim(dim, input.ndim, op)


def softmax(input, dim=None, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim``; ``dtype`` casts the input first (as in PyTorch)."""
    input, axis = _prepare("softmax", input, dim, dtype)
    return Softmax.apply(input, axis if input.ndim else None)


def log_softmax(input, dim=None, dtype=None):
    """log(softmax(x)) along ``dim``, computed as x - max - log(sum(exp(x - max)))."""
    input, axis = _prepare("log_softmax", input, dim, dtype)
    return LogSoftmax.apply(input, axis if input.ndim else None)


TENSOR_METHODS = ("softmax", "log_softmax")
__all__ = list(TENSOR_METHODS)
