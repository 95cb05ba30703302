"""Running reductions along one dimension: cumsum and cumprod (re-exported by ``reduce.py``).

Integers and bools accumulate in int64; float16 running sums and products accumulate in float32, as PyTorch's do.
"""

from __future__ import annotations

from ..autograd.function import Function
from ..dtypes import int64, numpy_dtype, to_dtype
from ..errors import GraphError
from ..tensor import Tensor
from ._checks import normalize_dim


def _int_to_int64(input: Tensor, dtype):
    """The array dtype of sum/prod/cumsum: ``dtype`` if given; integers and bools accumulate in int64."""
    if dtype is not None:
        return numpy_dtype(to_dtype(dtype))
    return None if input._dtype.is_floating_point else int64.np


class Cumsum(Function):
    """Running sum along ``axis`` (from the end when ``reverse``: the backward of the other direction)."""

    @staticmethod
    def forward(ctx, x, axis, reverse, dtype):
        xp = ctx.device.backend.xp
        ctx.axis, ctx.reverse = axis, reverse
        if x.ndim == 0:
            return x.astype(dtype or x.dtype)
        # float16 accumulates in float32 (as PyTorch does): running sums past 65504 recover.
        half = dtype is None and x.dtype == xp.float16
        accumulate = xp.float32 if half else dtype
        if reverse:
            out = xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis, dtype=accumulate), axis)
        else:
            out = xp.cumsum(x, axis=axis, dtype=accumulate)
        return out.astype(x.dtype) if half else out

    @staticmethod
    def backward(ctx, grad):
        return Cumsum.apply(grad, ctx.axis, not ctx.reverse, None)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running sum along ``dim``; integers and bools accumulate in int64."""
    axis = normalize_dim(dim, input.ndim, "cumsum")
    return Cumsum.apply(input, axis, False, _int_to_int64(input, dtype))


class Cumprod(Function):
    @staticmethod
    def forward(ctx, x, axis, dtype):
        xp = ctx.device.backend.xp
        ctx.axis = axis
        # float16 accumulates in float32, as PyTorch's does (products past 65504 or below its subnormals recover).
        half = dtype is None and x.dtype == xp.float16
        out = (
            x.astype(dtype or x.dtype) if x.ndim == 0 else xp.cumprod(x, axis=axis, dtype=xp.float32 if half else dtype)
        )
        out = out.astype(x.dtype) if half else out
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        if x.ndim == 0 or x.shape[ctx.axis] == 1:  # along one element cumprod is the identity (inf included)
            return grad
        # d out_i / d x_k = out_i / x_k for i >= k: a reverse running sum, divided by x (a host
        # sync to look for zeros, as PyTorch does; zeros need the exact first-order formula).
        if not bool(ctx.device.backend.xp.any(x._data == 0)):
            return Cumsum.apply(grad * out, ctx.axis, True, None) / x
        return CumprodZerosGrad.apply(grad, x, out, ctx.axis)


class CumprodZerosGrad(Function):
    """The gradient of cumprod where the input has zeros (exact to first order)."""

    @staticmethod
    def forward(ctx, grad, x, out, axis):
        xp = ctx.device.backend.xp
        if x.size == 0:
            return xp.zeros_like(x)
        g, x, out = (xp.moveaxis(a, axis, -1) for a in (grad, x, out))
        positions = xp.arange(x.shape[-1])
        zero = x == 0
        first = xp.where(zero.any(-1, keepdims=True), xp.argmax(zero.astype(xp.int8), -1, keepdims=True), x.shape[-1])
        # Before the first zero of a slice: sum_{i >= k} g_i out_i / x_k (out is zero from there on).
        before = positions < first
        tail = xp.flip(xp.cumsum(xp.flip(g * out, -1), -1), -1)
        result = xp.where(before, tail / xp.where(before, x, 1), 0)
        # At the first zero: sum_{i >= k} g_i * out_{k-1} * prod_{k < j <= i} x_j; after it: zero.
        prefix = xp.take_along_axis(out, xp.maximum(first - 1, 0), -1)
        prefix = xp.where(first == 0, 1, prefix)
        running = xp.cumprod(xp.where(positions > first, x, 1), -1)
        at_first = xp.sum(xp.where(positions >= first, g * running, 0), -1, keepdims=True) * prefix
        result = xp.where(positions == first, at_first, result).astype(x.dtype)
        return xp.moveaxis(result, -1, axis)

    @staticmethod
    def backward(ctx, grad):
        raise GraphError(
            "cumprod: the second derivative of cumprod at inputs that contain zeros is not implemented; "
            "keep the inputs of a twice-differentiated cumprod away from zero (or use prod, which handles zeros)"
        )


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running product along ``dim``; integers and bools accumulate in int64."""
    axis = normalize_dim(dim, input.ndim, "cumprod")
    return Cumprod.apply(input, axis, _int_to_int64(input, dtype))


__all__ = ["cumsum", "cumprod"]
