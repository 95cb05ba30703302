"""Indexing: ``x[...]`` (basic slicing, integer arrays, boolean masks) and ``x[...] = v``.

Basic indexing returns a view; advanced indexing a copy. The gradient of an
index scatters back with repeated indices accumulated.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import _state
from ..errors import IndexOutOfRangeError, device_mismatch, shape_str
from ..tensor import Tensor
from .creation import tensor
from .inplace import apply_inplace, write_into
from .shape import as_view


def _convert_index(input: Tensor, index):
    """Turn tensors and lists inside an index into arrays of the input's backend."""
    if isinstance(index, tuple):
        return tuple(_convert_one(input, part) for part in index)
    return _convert_one(input, index)


def _convert_one(input: Tensor, part):
    if isinstance(part, Tensor):
        if part._device is not input._device:
            raise device_mismatch("index", input._device, part._device, "index tensor")
        if part._dtype.is_floating_point:
            raise IndexOutOfRangeError(
                f"index: tensors used as indices must be long, int or bool tensors, got {part._dtype.name}"
            )
        return part._data
    if isinstance(part, (list, np.ndarray)):
        return input._device.backend.asarray(part)
    return part


def is_basic(index) -> bool:
    """True when ``index`` uses only ints, slices, None and Ellipsis (the result is a view)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        part is None or part is Ellipsis or isinstance(part, slice) or isinstance(part, numbers.Integral)
        for part in parts
    ) and not any(isinstance(part, bool) for part in parts)


def _out_of_range(input: Tensor, error: IndexError) -> IndexOutOfRangeError:
    return IndexOutOfRangeError(f"index: {error} (tensor of shape {shape_str(input.shape)})")


class Index(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.input_shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        return IndexBackward.apply(grad, ctx.input_shape, ctx.index)


class IndexBackward(Function):
    """Scatter a gradient into zeros of the input's shape, accumulating repeated indices."""

    @staticmethod
    def forward(ctx, grad, input_shape, index):
        ctx.index = index
        backend = ctx.device.backend
        out = backend.xp.zeros(input_shape, dtype=grad.dtype)
        if is_basic(index):
            out[index] = grad
        else:
            backend.add_at(out, index, grad)
        return out

    @staticmethod
    def backward(ctx, grad):
        return Index.apply(grad, ctx.index), None, None


def getitem(input: Tensor, index) -> Tensor:
    """``input[index]`` with NumPy's indexing rules (views for basic indexing)."""
    converted = _convert_index(input, index)
    try:
        result = Index.apply(input, converted)
    except IndexError as error:
        raise _out_of_range(input, error) from None
    return as_view(result, input) if is_basic(converted) else result


class IndexPut(Function):
    """A copy of ``x`` with ``x[index] = value`` (the functional form of assignment)."""

    @staticmethod
    def forward(ctx, x, index, value):
        ctx.index = index
        out = x.copy()
        out[index] = value
        return out

    @staticmethod
    def backward(ctx, grad):
        needs_x, _, needs_value = ctx.needs_input_grad
        grad_x = IndexPut.apply(grad, ctx.index, 0.0) if needs_x else None
        grad_value = Index.apply(grad, ctx.index) if needs_value else None
        return grad_x, None, grad_value


def index_put(input: Tensor, index, value) -> Tensor:
    """Out-of-place ``input[index] = value``; gradients reach both ``input`` and ``value``."""
    converted = _convert_index(input, index)
    if isinstance(value, Tensor) and value._dtype is not input._dtype:
        value = value.to(input._dtype)
    try:
        return IndexPut.apply(input, converted, value)
    except IndexError as error:
        raise _out_of_range(input, error) from None


def setitem(input: Tensor, index, value) -> None:
    """``input[index] = value`` in place (the version counter is bumped)."""
    if isinstance(value, Tensor) and value._device is not input._device:
        raise device_mismatch("setitem", input._device, value._device, "value")
    if not isinstance(value, Tensor) and not isinstance(value, numbers.Number):
        value = tensor(value, dtype=input.dtype, device=input.device)
    if _state.enabled and (input._requires_grad or (isinstance(value, Tensor) and value._requires_grad)):
        apply_inplace(input, "setitem", lambda old, v: index_put(old, index, v), value)
        return
    converted = _convert_index(input, index)
    try:
        write_into(input, value._data if isinstance(value, Tensor) else value, "setitem", converted)
    except IndexError as error:
        raise _out_of_range(input, error) from None


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("index_put",)

__all__ = list(TENSOR_METHODS)
