"""Joining and splitting: cat/stack, split/chunk/unbind, narrow/select, repeat/tile.

cat and split are each other's gradient, as are stack and unbind, so every
backward here is built from the ops of this module and double backward comes
free. split, chunk and unbind return views (sharing the input's version
counter); cat, stack, repeat and tile return new memory.
"""

from __future__ import annotations

from ..autograd.function import Function
from ..dtypes import promote_types
from ..errors import ArgumentTypeError, ArgumentValueError, IndexOutOfRangeError, ShapeError, device_mismatch, shape_str
from ..tensor import Tensor
from ._checks import normalize_dim
from .index import getitem
from .shape import as_view, reshape


def _tensor_list(op: str, tensors) -> list:
    """The tensors of a cat/stack call, checked for emptiness, type and device, cast to one promoted dtype."""
    if isinstance(tensors, Tensor):
        raise ArgumentTypeError(f"{op}: expected a sequence of tensors, got a single Tensor; wrap it: {op}([x, y])")
    tensors = list(tensors)
    if not tensors:
        raise ArgumentValueError(f"{op}: expected a non-empty list of tensors; pass at least one tensor")
    for position, tensor in enumerate(tensors):
        if not isinstance(tensor, Tensor):
            raise ArgumentTypeError(
                f"{op}: expected a sequence of tensors, but element {position} is {type(tensor).__name__}; "
                "wrap numbers with gradflow.tensor()"
            )
        if tensor._device is not tensors[0]._device:
            raise device_mismatch(op, tensors[0]._device, tensor._device, f"tensor {position}", "tensor 0")
    dtype = tensors[0]._dtype
    for tensor in tensors[1:]:
        dtype = promote_types(dtype, tensor._dtype)
    return [t if t._dtype is dtype else t.to(dtype) for t in tensors]


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim = dim
        ctx.sizes = [array.shape[dim] for array in arrays]
        return ctx.device.backend.xp.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        return split(grad, ctx.sizes, ctx.dim)


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate tensors along an existing dimension ``dim``.

    Shapes must match except along ``dim``; dtypes are promoted (int32 with
    float16 gives float16). As in PyTorch, 1-d empty tensors are skipped.

    >>> import gradflow as gf
    >>> gf.cat([gf.zeros(2, 3), gf.ones(1, 3)]).shape
    (3, 3)
    """
    tensors = _tensor_list("cat", tensors)
    # PyTorch's legacy rule: tensors of shape [0] join anything (they are dropped).
    numbered = [(i, t) for i, t in enumerate(tensors) if t.shape != (0,)] or [(0, tensors[0])]
    first = numbered[0][1]
    if any(tensor.ndim == 0 for _, tensor in numbered):
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated; unsqueeze(0) them or use stack")
    axis = normalize_dim(dim, first.ndim, "cat")
    for position, tensor in numbered:
        if tensor.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(tensor.shape, first.shape)) if i != axis
        ):
            raise ShapeError(
                f"cat: sizes of tensors must match except in dimension {dim}, got {shape_str(first.shape)} (tensor "
                f"{numbered[0][0]}) and {shape_str(tensor.shape)} (tensor {position}); reshape them so that only "
                f"dimension {dim} differs"
            )
    return Cat.apply(*(tensor for _, tensor in numbered), dim=axis)  # a copy even for one tensor, as in PyTorch


concat = concatenate = cat


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim = dim
        return ctx.device.backend.xp.stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        return unbind(grad, ctx.dim)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension ``dim`` (in [-ndim - 1, ndim])."""
    tensors = _tensor_list("stack", tensors)
    first = tensors[0]
    for position, tensor in enumerate(tensors):
        if tensor.shape != first.shape:
            raise ShapeError(
                f"stack: expects each tensor to be equal size, but got {shape_str(first.shape)} at entry 0 and "
                f"{shape_str(tensor.shape)} at entry {position}"
            )
    axis = normalize_dim(dim, first.ndim + 1, "stack")
    return Stack.apply(*tensors, dim=axis)


class Split(Function):
    """One node for all the pieces: backward gets one gradient per piece (zeros for unused ones)."""

    @staticmethod
    def forward(ctx, x, sizes, dim):
        ctx.dim = dim
        lead = (slice(None),) * dim
        pieces, start = [], 0
        for size in sizes:
            pieces.append(x[lead + (slice(start, start + size),)])
            start += size
        return tuple(pieces)

    @staticmethod
    def backward(ctx, *grads):
        return cat(grads, ctx.dim), None, None


def _split_views(input: Tensor, sizes: list, axis: int) -> tuple:
    return tuple(as_view(piece, input) for piece in Split.apply(input, tuple(sizes), axis))


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Split into views along ``dim``: pieces of ``split_size`` (the last may be smaller), or of the listed sizes.

    >>> import gradflow as gf
    >>> [p.shape for p in gf.arange(5).split(2)]
    [(2,), (2,), (1,)]
    """
    axis = normalize_dim(dim, tensor.ndim, "split")
    if tensor.ndim == 0:
        raise ShapeError("split: expected a tensor with at least one dimension, got a 0-d tensor")
    length = tensor.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size < 0 or (size == 0 and length != 0):
            raise ArgumentValueError(
                f"split: split_size must be positive (it can only be 0 if dimension {dim} has size 0), got {size}; "
                "pass a split_size >= 1"
            )
        sizes = [size] * (length // size) + [length % size] if size else [0]
        if len(sizes) > 1 and sizes[-1] == 0:
            sizes.pop()  # no empty piece at the end when size divides length
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != length:
            raise ShapeError(
                f"split: split sizes {sizes} must be non-negative and sum exactly to {length}, the size of "
                f"dimension {dim} of the tensor of shape {shape_str(tensor.shape)}"
            )
    return _split_views(tensor, sizes, axis)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` views of equal size along ``dim`` (the last may be smaller, or fewer come back)."""
    if chunks <= 0:
        raise ArgumentValueError(f"chunk: number of chunks must be greater than 0, got {chunks}; pass chunks >= 1")
    axis = normalize_dim(dim, input.ndim, "chunk")
    if input.ndim == 0:
        raise ShapeError("chunk: expected a tensor with at least one dimension, got a 0-d tensor")
    length = input.shape[axis]
    if length == 0:
        return _split_views(input, [0] * chunks, axis)
    return split(input, -(-length // chunks), axis)


class Unbind(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        lead = (slice(None),) * dim
        return tuple(x[lead + (i,)] for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *grads):
        return stack(grads, ctx.dim), None


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim`` as a tuple of views, each without that dimension."""
    if input.ndim == 0:
        raise ShapeError("unbind: expected a tensor with at least one dimension, got a 0-d tensor")
    axis = normalize_dim(dim, input.ndim, "unbind")
    if input.shape[axis] == 0:
        return ()
    return tuple(as_view(piece, input) for piece in Unbind.apply(input, axis))


def narrow(input: Tensor, dim: int, start, length: int) -> Tensor:
    """The view ``input[..., start : start + length, ...]`` along ``dim``; ``start`` may be negative."""
    if input.ndim == 0:
        raise ShapeError("narrow: cannot be applied to a 0-d tensor")
    axis = normalize_dim(dim, input.ndim, "narrow")
    size, start, length = input.shape[axis], int(start), int(length)
    if not -size <= start <= size:
        raise IndexOutOfRangeError(
            f"narrow: start {start} is out of range for dimension {dim} of size {size} (tensor of shape "
            f"{shape_str(input.shape)}); expected it in [{-size}, {size}]"
        )
    start = start + size if start < 0 else start
    if length < 0 or start + length > size:
        raise IndexOutOfRangeError(
            f"narrow: start ({start}) + length ({length}) exceeds dimension {dim} of size {size} (tensor of shape "
            f"{shape_str(input.shape)}); length must be in [0, {size - start}]"
        )
    return getitem(input, (slice(None),) * axis + (slice(start, start + length),))


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The view ``input[..., index, ...]`` along ``dim`` (that dimension removed); ``index`` may be negative."""
    if input.ndim == 0:
        raise IndexOutOfRangeError("select: cannot be applied to a 0-d tensor")
    axis = normalize_dim(dim, input.ndim, "select")
    size, index = input.shape[axis], int(index)
    if not -size <= index < size:
        raise IndexOutOfRangeError(
            f"select: index {index} out of range for tensor of size {shape_str(input.shape)} at dimension {dim}; "
            f"expected it in [{-size}, {size - 1}]"
        )
    return getitem(input, (slice(None),) * axis + (index,))


class Repeat(Function):
    @staticmethod
    def forward(ctx, x, repeats):
        ctx.input_shape, ctx.repeats = x.shape, repeats
        lead = len(repeats) - x.ndim
        return ctx.device.backend.xp.tile(x.reshape((1,) * lead + x.shape), repeats)

    @staticmethod
    def backward(ctx, grad):
        # Output dim i has repeats[i] copies of the input's size; split it in two and sum the copies.
        padded = (1,) * (len(ctx.repeats) - len(ctx.input_shape)) + ctx.input_shape
        interleaved = tuple(v for pair in zip(ctx.repeats, padded) for v in pair)
        summed = reshape(grad, interleaved).sum(tuple(range(0, len(interleaved), 2)))
        return reshape(summed, ctx.input_shape)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tensor.repeat: tile the tensor ``sizes[i]`` times along dim i (sizes may add leading dims)."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < input.ndim:
        raise ShapeError(
            f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the number of dimensions of the "
            f"tensor ({input.ndim}, shape {shape_str(input.shape)}); use tile() to repeat trailing dims only"
        )
    if any(s < 0 for s in sizes):
        raise ArgumentValueError(f"repeat: repeats must be non-negative, got {list(sizes)}; pass sizes >= 0")
    return Repeat.apply(input, sizes)


def tile(input: Tensor, dims) -> Tensor:
    """Like repeat, but ``dims`` shorter than the tensor's rank repeat its trailing dimensions."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("split", "chunk", "unbind", "narrow", "select", "repeat", "tile")

# torch has no torch.repeat (only Tensor.repeat), so neither does gradflow.
__all__ = ["cat", "concat", "concatenate", "stack", "split", "chunk", "unbind", "narrow", "select", "tile"]
