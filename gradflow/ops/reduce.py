"""Reductions: sum, mean, prod, max/min, amax/amin, argmax/argmin, cumsum/cumprod, all/any,
and sum_to_size (the engine's un-broadcasting).

A ``dim`` of None or ``()`` reduces every dimension. Gradients flow back through
``keep_reduced``/``expand_reduced``, which put the reduced dimensions back.
float16 sums and means accumulate in float32, as PyTorch's do, and return float16.
The statistics (var, std, norm, logsumexp) live in ``statistics.py``; cumsum and cumprod in
``cumulative.py`` (re-exported here).
"""

from __future__ import annotations

import builtins
from collections import namedtuple

from ..autograd.function import Function
from ..dtypes import bool as bool_
from ..dtypes import float16, float32
from ..errors import DtypeError, IndexOutOfRangeError, ShapeError, shape_str
from ..tensor import Tensor
from ._checks import normalize_dim, normalize_dims
from .compare import _no_grad_op, maximum, minimum, where
from .creation import arange
from .cumulative import _int_to_int64, cumprod, cumsum  # noqa: F401 (cumsum, cumprod: re-exported)

# What max/min with a dim return, like torch.return_types.max: (values, indices).
MaxResult = namedtuple("max", ("values", "indices"))
MinResult = namedtuple("min", ("values", "indices"))


def reduction_axes(dim, ndim: int, op: str) -> tuple:
    """Axes for ``dim``: an int, a sequence, or None/() for every dimension."""
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    return normalize_dims(dim, ndim, op)


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` with the reduced ``axes`` set to 1 (what keepdim=True gives)."""
    return tuple(1 if axis in axes else size for axis, size in enumerate(shape))


def keep_reduced(result: Tensor, input_shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """A reduction's result (or its gradient) with the reduced axes as size-1 dimensions, to broadcast."""
    return result if keepdim else result.reshape(_kept_shape(input_shape, axes))


def expand_reduced(grad: Tensor, input_shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """Broadcast the gradient of a reduction back over the reduced axes."""
    return keep_reduced(grad, input_shape, axes, keepdim).expand(input_shape)


def _count(shape: tuple, axes: tuple) -> int:
    count = 1
    for axis in axes:
        count *= shape[axis]
    return count


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype):
        xp = ctx.device.backend.xp
        ctx.input_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        # float16 accumulates in float32 (as PyTorch does): partial sums past 65504 do not overflow.
        if dtype is None and x.dtype == xp.float16:
            return xp.sum(x, axis=axes, keepdims=keepdim, dtype=xp.float32).astype(x.dtype)
        return xp.sum(x, axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        return expand_reduced(grad, ctx.input_shape, ctx.axes, ctx.keepdim)


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or None for all); integers and bools sum to int64."""
    return Sum.apply(input, reduction_axes(dim, input.ndim, "sum"), keepdim, _int_to_int64(input, dtype))


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Arithmetic mean over ``dim``; floating point tensors only, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    if not input._dtype.is_floating_point:
        raise DtypeError(
            f"mean: could not infer an output dtype: input dtype must be floating point, got {input._dtype.name}; "
            "convert first with .float() or pass dtype=gradflow.float32"
        )
    axes = reduction_axes(dim, input.ndim, "mean")
    count = _count(input.shape, axes)
    # float16 is summed and divided in float32, then rounded once (the sum may pass 65504, the mean not).
    total = Sum.apply(input, axes, keepdim, float32.np if input._dtype is float16 else None)
    return (total / count if count else total * float("nan")).to(input._dtype)  # the mean of nothing is NaN


def sum_to_size(input: Tensor, *size) -> Tensor:
    """Sum ``input`` down to ``size``, which it must broadcast from (undoes broadcasting)."""
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    if input.shape == shape:
        return input
    lead = input.ndim - len(shape)
    if lead < 0 or builtins.any(s != 1 and s != t for s, t in zip(shape, input.shape[lead:])):
        raise ShapeError(
            f"sum_to_size: size {shape_str(shape)} is not expandable to the tensor's size {shape_str(input.shape)}; "
            "every dimension must equal the tensor's or be 1"
        )
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and input.shape[lead + i] != 1)
    result = Sum.apply(input, axes, True, None)
    return result.reshape(shape) if lead else result


class ProdOthers(Function):
    """For each element, the product of the other elements of its reduction slice (prod's derivative).

    Zeros are handled by counting them: with none, it is prod / x; with one, only the zero
    position sees a non-zero product; with more, everything is zero. The backward applies
    the same counting to the second derivative, so prod is exact twice even at zeros.
    """

    @staticmethod
    def forward(ctx, x, axes):
        xp = ctx.device.backend.xp
        ctx.axes = axes
        ctx.save_for_backward(x)
        zero = x == 0
        safe = xp.where(zero, 1, x)
        other_zeros = xp.sum(zero, axis=axes, keepdims=True) - zero
        return xp.where(other_zeros == 0, xp.prod(safe, axis=axes, keepdims=True) / safe, 0).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        # d others_i / d x_j = prod of x over the slice without i and j (i != j): non-zero only
        # when no zero lies outside {i, j}. For a position j with no other zero, every i counts;
        # with exactly one other zero, only that zero's i does.
        (x,) = ctx.saved_tensors
        axes = ctx.axes
        zero = x == 0
        safe = where(zero, 1.0, x)
        other_zeros = Sum.apply(zero, axes, True, None) - zero.long()  # bool - is refused, as in torch
        spread = grad / safe
        at_zeros = grad * zero
        inner = where(other_zeros == 0, Sum.apply(spread, axes, True, None) - spread, 0.0) + where(
            other_zeros == 1, Sum.apply(at_zeros, axes, True, None) - at_zeros, 0.0
        )
        return Prod.apply(safe, axes, True, None) / safe * inner, None


class Prod(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype):
        ctx.input_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.save_for_backward(x)
        return ctx.device.backend.xp.prod(x, axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return keep_reduced(grad, ctx.input_shape, ctx.axes, ctx.keepdim) * ProdOthers.apply(x, ctx.axes)


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product over ``dim`` (None: all); integers and bools multiply in int64. Exact gradients at zeros."""
    return Prod.apply(input, reduction_axes(dim, input.ndim, "prod"), keepdim, _int_to_int64(input, dtype))


def _require_elements(op: str, input: Tensor, axes: tuple, dim_given: bool) -> None:
    """max/min-like reductions have no identity: refuse to reduce over nothing, as PyTorch does."""
    if input._data.size:
        return
    if not dim_given:
        raise ShapeError(
            f"{op}: expected reduction dim to be specified for input.numel() == 0 (input of shape "
            f"{shape_str(input.shape)}); specify the reduction dim with the 'dim' argument"
        )
    for axis in axes:
        if input.shape[axis] == 0:
            raise IndexOutOfRangeError(
                f"{op}: expected reduction dim {axis} to have non-zero size (input of shape {shape_str(input.shape)})"
            )


class Amax(Function):
    """The maximum over ``axes``; the gradient is shared evenly among the elements equal to it."""

    largest = True

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        xp = ctx.device.backend.xp
        ctx.input_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        out = (xp.amax if ctx.function.largest else xp.amin)(x, axis=axes, keepdims=keepdim)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        hits = x == keep_reduced(out, ctx.input_shape, ctx.axes, ctx.keepdim)
        share = Sum.apply(hits, ctx.axes, True, None).to(grad.dtype)
        return keep_reduced(grad, ctx.input_shape, ctx.axes, ctx.keepdim) * hits / share


class Amin(Amax):
    largest = False


def _amax_or_amin(function, op: str, input: Tensor, dim, keepdim: bool) -> Tensor:
    axes = reduction_axes(dim, input.ndim, op)
    _require_elements(op, input, axes, True)
    return function.apply(input, axes, keepdim)


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (int or tuple; () or None: all); ties share the gradient evenly."""
    return _amax_or_amin(Amax, "amax", input, dim, keepdim)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Minimum over ``dim`` (int or tuple; () or None: all); ties share the gradient evenly."""
    return _amax_or_amin(Amin, "amin", input, dim, keepdim)


class MaxDim(Function):
    """Values and int64 indices of the maximum along one axis; the gradient goes to the index."""

    largest = True

    @staticmethod
    def forward(ctx, x, axis, keepdim):
        xp = ctx.device.backend.xp
        ctx.input_shape, ctx.axis, ctx.keepdim = x.shape, axis, keepdim
        pick = xp.argmax if ctx.function.largest else xp.argmin
        index = pick(x, axis=axis, keepdims=True).astype(xp.int64, copy=False)
        values = xp.take_along_axis(x, index, axis=axis)  # NaN wins, as in argmax, and values match indices
        if not keepdim:
            values, index = values.squeeze(axis), index.squeeze(axis)
        ctx.save_for_backward(index)
        return values, index

    @staticmethod
    def backward(ctx, grad, grad_index):
        (index,) = ctx.saved_tensors
        shape, axis = ctx.input_shape, ctx.axis
        positions = arange(shape[axis], device=grad.device).reshape(
            tuple(size if a == axis else 1 for a, size in enumerate(shape))
        )
        chosen = positions == keep_reduced(index, shape, (axis,), ctx.keepdim)
        return keep_reduced(grad, shape, (axis,), ctx.keepdim) * chosen


class MinDim(MaxDim):
    largest = False


def _extreme(op: str, input: Tensor, dim, keepdim: bool, other, largest: bool):
    if isinstance(dim, Tensor) or other is not None:
        return (maximum if largest else minimum)(input, dim if other is None else other)
    if dim is None:
        _require_elements(op, input, (), False)
        return (Amax if largest else Amin).apply(input, tuple(range(input.ndim)), False)
    axis = normalize_dim(dim, input.ndim, op)
    result, function = (MaxResult, MaxDim) if largest else (MinResult, MinDim)
    if input.ndim == 0:  # a 0-d tensor is its own max along dim 0 (index 0)
        return result(*function.apply(input.reshape(1), 0, False))
    _require_elements(op, input, (axis,), True)
    return result(*function.apply(input, axis, keepdim))


def max(input: Tensor, dim=None, keepdim: bool = False, *, other: Tensor | None = None):  # noqa: A001
    """``max(x)``: the largest element (0-d; ties share the gradient); ``max(x, dim, keepdim)``: a
    ``(values, indices)`` namedtuple along ``dim``; ``max(x, other_tensor)``: the elementwise maximum."""
    return _extreme("max", input, dim, keepdim, other, True)


def min(input: Tensor, dim=None, keepdim: bool = False, *, other: Tensor | None = None):  # noqa: A001
    """``min(x)``, ``min(x, dim, keepdim)`` -> ``(values, indices)``, or ``min(x, other_tensor)``; see ``max``."""
    return _extreme("min", input, dim, keepdim, other, False)


def _arg_extreme(op: str, input: Tensor, dim, keepdim: bool, largest: bool) -> Tensor:
    def compute(xp, x):
        pick = xp.argmax if largest else xp.argmin
        if dim is None:  # the index into the flattened tensor
            flat = pick(x.reshape(-1))
            return xp.asarray(flat, dtype=xp.int64).reshape((1,) * x.ndim if keepdim else ())
        if x.ndim == 0:
            return xp.zeros((), dtype=xp.int64)
        return pick(x, axis=axis, keepdims=keepdim).astype(xp.int64, copy=False)

    if input.dtype is bool_:  # PyTorch has no argmax/argmin kernel for bool
        raise DtypeError(f"{op}: bool inputs are not supported; convert first, e.g. {op}(x.long())")
    axis = None if dim is None else normalize_dim(dim, input.ndim, op)
    _require_elements(op, input, () if axis is None or input.ndim == 0 else (axis,), dim is not None)
    return _no_grad_op(op, compute, input)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """int64 index of the maximum along ``dim``, or into the flattened tensor when dim is None."""
    return _arg_extreme("argmax", input, dim, keepdim, True)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """int64 index of the minimum along ``dim``, or into the flattened tensor when dim is None."""
    return _arg_extreme("argmin", input, dim, keepdim, False)


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where every element along ``dim`` (None or (): all) is non-zero; a bool tensor."""
    axes = reduction_axes(dim, input.ndim, "all")
    return _no_grad_op("all", lambda xp, x: xp.asarray(xp.all(x, axis=axes, keepdims=keepdim)), input)


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where some element along ``dim`` (None or (): all) is non-zero; a bool tensor."""
    axes = reduction_axes(dim, input.ndim, "any")
    return _no_grad_op("any", lambda xp, x: xp.asarray(xp.any(x, axis=axes, keepdims=keepdim)), input)


_NAMES = (
    "sum",
    "mean",
    "sum_to_size",
    "prod",
    "max",
    "min",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "cumsum",
    "cumprod",
    "all",
    "any",
)

# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = _NAMES

__all__ = list(_NAMES)
