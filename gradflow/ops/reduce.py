"""Reductions: sum, mean, sum_to_size (the engine's un-broadcasting), and the rest of the family."""

from __future__ import annotations

from ..autograd.function import Function
from ..dtypes import int64, numpy_dtype, to_dtype
from ..errors import DtypeError, ShapeError, shape_str
from ..tensor import Tensor
from ._checks import normalize_dims


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` with the reduced ``axes`` set to 1 (what keepdim=True gives)."""
    return tuple(1 if axis in axes else size for axis, size in enumerate(shape))


def expand_reduced(grad: Tensor, input_shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """Broadcast the gradient of a reduction back over the reduced axes."""
    if not keepdim:
        grad = grad.reshape(_kept_shape(input_shape, axes))
    return grad.expand(input_shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype):
        ctx.input_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return ctx.device.backend.xp.sum(x, axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        return expand_reduced(grad, ctx.input_shape, ctx.axes, ctx.keepdim)


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or None for all); integers and bools sum to int64."""
    axes = normalize_dims(dim, input.ndim, "sum")
    if dtype is not None:
        out_dtype = numpy_dtype(to_dtype(dtype))
    elif not input._dtype.is_floating_point:
        out_dtype = int64.np
    else:
        out_dtype = None
    return Sum.apply(input, axes, keepdim, out_dtype)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Arithmetic mean over ``dim``; floating point tensors only, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    if not input._dtype.is_floating_point:
        raise DtypeError(
            f"mean: could not infer an output dtype: input dtype must be floating point, got {input._dtype.name}; "
            "convert first with .float() or pass dtype=gradflow.float32"
        )
    axes = normalize_dims(dim, input.ndim, "mean")
    count = 1
    for axis in axes:
        count *= input.shape[axis]
    return sum(input, axes, keepdim) / max(count, 1) if count else sum(input, axes, keepdim) * float("nan")


def sum_to_size(input: Tensor, *size) -> Tensor:
    """Sum ``input`` down to ``size``, which it must broadcast from (undoes broadcasting)."""
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    if input.shape == shape:
        return input
    lead = input.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != t for s, t in zip(shape, input.shape[lead:])):
        raise ShapeError(
            f"sum_to_size: size {shape_str(shape)} is not expandable to the tensor's size {shape_str(input.shape)}; "
            "every dimension must equal the tensor's or be 1"
        )
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and input.shape[lead + i] != 1
    )
    result = sum(input, axes, keepdim=True)
    return result.reshape(shape) if lead else result


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("sum", "mean", "sum_to_size")

__all__ = ["sum", "mean", "sum_to_size"]
