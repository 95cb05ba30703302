"""Shape ops: reshape/view, expand, transpose/permute and the rest of the family.

Ops whose result shares memory with the input (views) share its version
counter, so an in-place change through either is seen by saved tensors.
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import ShapeError, shape_str
from ..tensor import Tensor
from ._checks import normalize_dim


def as_view(result: Tensor, base: Tensor) -> Tensor:
    """Mark ``result`` as a view of ``base``: same version counter, ``_base`` set."""
    result._vc = base._shared_version_counter()
    result._base = base._base if base._base is not None else base
    return result


def _shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape)


def _resolve_shape(op: str, input: Tensor, shape: tuple) -> tuple:
    numel = input._data.size
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred (-1), got {shape_str(shape)}")
    known = 1
    for size in shape:
        if size != -1:
            if size < 0:
                raise ShapeError(f"{op}: invalid shape dimension {size} in {shape_str(shape)}")
            known *= size
    if -1 in shape:
        if known == 0 or numel % known:
            raise ShapeError(
                f"{op}: shape {shape_str(shape)} is invalid for input of size {numel} (shape {shape_str(input.shape)})"
            )
        shape = tuple(numel // known if size == -1 else size for size in shape)
    elif known != numel:
        raise ShapeError(
            f"{op}: shape {shape_str(shape)} is invalid for input of size {numel} (shape {shape_str(input.shape)}); "
            "the number of elements must stay the same"
        )
    return shape


def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one dimension may be -1); a view when possible."""
    shape = _resolve_shape("reshape", input, tuple(int(s) for s in _shape_args(shape)))
    return as_view(Reshape.apply(input, shape), input)


def view(input: Tensor, *shape) -> Tensor:
    """Like reshape (gradflow copies when the memory layout needs it instead of raising)."""
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return input.to(shape[0])
    return reshape(input, *shape)


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return ctx.device.backend.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.sum_to_size(ctx.input_shape)


def expand(input: Tensor, *sizes) -> Tensor:
    """A read-only broadcast view with size-1 dimensions repeated; -1 keeps a dimension."""
    sizes = tuple(int(s) for s in _shape_args(sizes))
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ShapeError(
            f"expand: the number of sizes ({len(sizes)}) must be at least the number of dimensions "
            f"({input.ndim}) of the tensor of shape {shape_str(input.shape)}"
        )
    shape = []
    for axis, size in enumerate(sizes):
        own = input.shape[axis - lead] if axis >= lead else None
        if size == -1:
            if own is None:
                raise ShapeError(f"expand: -1 is not allowed in a new leading dimension ({shape_str(sizes)})")
            size = own
        elif own is not None and own != 1 and own != size:
            raise ShapeError(
                f"expand: the expanded size {size} must match the existing size {own} at dimension {axis} "
                f"(tensor of shape {shape_str(input.shape)} to {shape_str(sizes)}); only size-1 dimensions expand"
            )
        shape.append(size)
    shape = tuple(shape)
    if shape == input.shape:
        return input
    return as_view(Expand.apply(input, shape), input)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


def broadcast_to(input: Tensor, shape) -> Tensor:
    return expand(input, tuple(shape))


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.permute(tuple(np.argsort(ctx.axes)))


def permute(input: Tensor, *dims) -> Tensor:
    """Reorder the dimensions; ``dims`` lists the source dimension of each output dimension."""
    dims = _shape_args(dims)
    axes = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if len(axes) != input.ndim or len(set(axes)) != len(axes):
        raise ShapeError(
            f"permute: dims {list(dims)} must name each of the {input.ndim} dimensions of the tensor of shape "
            f"{shape_str(input.shape)} exactly once"
        )
    return as_view(Permute.apply(input, tuple(int(a) for a in axes)), input)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    axes = list(range(input.ndim))
    first, second = normalize_dim(dim0, input.ndim, "transpose"), normalize_dim(dim1, input.ndim, "transpose")
    if input.ndim == 0:
        return input
    axes[first], axes[second] = axes[second], axes[first]
    return permute(input, axes)


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """Transpose a tensor of at most two dimensions."""
    if input.ndim > 2:
        raise ShapeError(f"t: expects a tensor with <= 2 dimensions, got shape {shape_str(input.shape)}; use transpose")
    return input if input.ndim < 2 else transpose(input, 0, 1)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("reshape", "view", "expand", "expand_as", "broadcast_to", "permute", "transpose", "swapaxes", "swapdims", "t")

__all__ = ["reshape", "view", "expand", "expand_as", "broadcast_to", "permute", "transpose", "swapaxes", "swapdims", "t"]
