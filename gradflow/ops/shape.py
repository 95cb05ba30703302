"""Shape ops: reshape/view, expand, transpose/permute and the rest of the family.

Ops whose result shares memory with the input (views) share its version
counter, so an in-place change through either is seen by saved tensors.
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..dtypes import numpy_dtype, to_dtype
from ..errors import ShapeError, shape_str
from ..tensor import Tensor
from ._checks import normalize_dim


def as_view(result: Tensor, base: Tensor) -> Tensor:
    """Mark ``result`` as a view of ``base``: same version counter, ``_base`` set."""
    result._vc = base._shared_version_counter()
    result._base = base._base if base._base is not None else base
    return result


def _view_if_shared(result: Tensor, base: Tensor) -> Tensor:
    """``as_view`` when the backend could reshape without a copy (it copies for some strided layouts)."""
    if base._device.backend.xp.may_share_memory(result._data, base._data):
        return as_view(result, base)
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


def _resolve_shape(op: str, input_shape: tuple, shape: tuple) -> tuple:
    """``shape`` with its -1 filled in, or a ShapeError when it can't hold ``input_shape``'s elements."""
    numel = int(np.prod(input_shape, dtype=np.int64))
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
                f"{op}: shape {shape_str(shape)} is invalid for input of size {numel} (shape {shape_str(input_shape)})"
            )
        shape = tuple(numel // known if size == -1 else size for size in shape)
    elif known != numel:
        raise ShapeError(
            f"{op}: shape {shape_str(shape)} is invalid for input of size {numel} (shape {shape_str(input_shape)}); "
            "the number of elements must stay the same"
        )
    return shape


def reshape(input: Tensor, *shape, _op: str = "reshape") -> Tensor:
    """The same elements in a new shape (one dimension may be -1); a view when possible."""
    shape = _resolve_shape(_op, input.shape, tuple(int(s) for s in _shape_args(shape)))
    return _view_if_shared(Reshape.apply(input, shape), input)


def view(input: Tensor, *shape) -> Tensor:
    """The same memory in a new shape (one dimension may be -1); raises, as PyTorch does, when the
    tensor's strides do not allow it without a copy: then use ``reshape`` or ``contiguous().view``.

    ``view(dtype)`` reinterprets the bits as another dtype, as in PyTorch: the last
    dimension scales by the ratio of item sizes, memory is shared, and the result
    carries no gradient.
    """
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return _view_as_dtype(input, to_dtype(shape[0]))
    shape = _resolve_shape("view", input.shape, tuple(int(s) for s in _shape_args(shape)))
    result = Reshape.apply(input, shape)
    if input._data.size and not input._device.backend.xp.may_share_memory(result._data, input._data):
        # A copy would make writes through the view miss the base, silently.
        strides = [step // input._data.itemsize for step in input._data.strides]
        raise ShapeError(
            f"view: shape {shape_str(shape)} is not compatible with the input's size {shape_str(input.shape)} and "
            f"stride {strides} (it is not contiguous); use .reshape(...) instead, or .contiguous().view(...)"
        )
    return as_view(result, input)


def _view_as_dtype(input: Tensor, dtype) -> Tensor:
    try:
        array = input._data.view(numpy_dtype(dtype))
    except ValueError:
        raise ShapeError(
            f"view: cannot view a {input.dtype.name} tensor of shape {shape_str(input.shape)} as {dtype.name}: the "
            "last dimension must be contiguous and its size in bytes divisible by the new item size"
        ) from None
    return as_view(Tensor._wrap(array, input._device), input)


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


def _reshaped_view(input: Tensor, shape: tuple) -> Tensor:
    """A view of ``input`` with a new shape whose element count is known to match."""
    return _view_if_shared(Reshape.apply(input, tuple(int(s) for s in shape)), input)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim`` .. ``end_dim`` (inclusive) into one; a 0-d tensor becomes 1-d."""
    if input.ndim == 0:
        normalize_dim(start_dim, 0, "flatten")
        normalize_dim(end_dim, 0, "flatten")
        return _reshaped_view(input, (1,))
    start, end = normalize_dim(start_dim, input.ndim, "flatten"), normalize_dim(end_dim, input.ndim, "flatten")
    if start > end:
        raise ShapeError(
            f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim}) for a tensor of shape "
            f"{shape_str(input.shape)}"
        )
    merged = int(np.prod(input.shape[start : end + 1], dtype=np.int64))
    return _reshaped_view(input, input.shape[:start] + (merged,) + input.shape[end + 1 :])


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """Split dimension ``dim`` into ``sizes`` (one of them may be -1), the inverse of flatten."""
    axis = normalize_dim(dim, input.ndim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise ShapeError("unflatten: sizes must be non-empty, e.g. x.unflatten(1, (2, 3))")
    length = input.shape[axis] if input.ndim else 1
    try:
        sizes = _resolve_shape("unflatten", (length,), sizes)
    except ShapeError:
        raise ShapeError(
            f"unflatten: sizes {shape_str(sizes)} don't multiply up to the size {length} of dimension {dim} of the "
            f"tensor of shape {shape_str(input.shape)}; their product must equal that size"
        ) from None
    return _reshaped_view(input, input.shape[:axis] + sizes + input.shape[axis + 1 :])


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Remove dimensions of size 1: all of them, or those among ``dim`` (an int or a tuple).

    A named dimension whose size is not 1 is left alone, as in PyTorch.
    """
    if dim is None:
        axes = {axis for axis, size in enumerate(input.shape) if size == 1}
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        axes = {normalize_dim(d, input.ndim, "squeeze") for d in dims}
        axes = {axis for axis in axes if input.ndim and input.shape[axis] == 1}
    if not axes:
        return _reshaped_view(input, input.shape)
    return _reshaped_view(input, tuple(size for axis, size in enumerate(input.shape) if axis not in axes))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim`` (in [-ndim - 1, ndim])."""
    axis = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    return _reshaped_view(input, input.shape[:axis] + (1,) + input.shape[axis:])


def movedim(input: Tensor, source, destination) -> Tensor:
    """Move dimension(s) ``source`` to position(s) ``destination``; the others keep their order."""
    sources = (source,) if isinstance(source, int) else tuple(source)
    targets = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(sources) != len(targets):
        raise ShapeError(
            f"movedim: source ({list(sources)}) and destination ({list(targets)}) must have the same number of dims"
        )
    sources = tuple(normalize_dim(d, input.ndim, "movedim") for d in sources)
    targets = tuple(normalize_dim(d, input.ndim, "movedim") for d in targets)
    if len(set(sources)) != len(sources) or len(set(targets)) != len(targets):
        raise ShapeError(f"movedim: repeated dim in source {list(sources)} or destination {list(targets)}")
    order = [axis for axis in range(input.ndim) if axis not in sources]
    for target, axis in sorted(zip(targets, sources)):
        order.insert(target, axis)
    return permute(input, order) if input.ndim else input


moveaxis = movedim


# -- copies that rearrange elements --------------------------------------------------------------


class Flip(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        # NumPy's flip is a view; PyTorch's is a copy, and writes to it must not reach the input.
        return ctx.device.backend.xp.flip(x, axes).copy()

    @staticmethod
    def backward(ctx, grad):
        return flip(grad, ctx.axes)


def _dim_list(dims, ndim: int, op: str) -> tuple:
    """Distinct, normalized axes from an int or a sequence (PyTorch rejects repeats)."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    axes = tuple(normalize_dim(d, ndim, op) for d in dims)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: dims {list(dims)} name a dimension more than once")
    return axes


def flip(input: Tensor, *dims) -> Tensor:
    """Reverse the order of elements along ``dims`` (a copy, as in PyTorch)."""
    dims = dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims
    axes = _dim_list(dims, input.ndim, "flip")
    if input.ndim == 0:
        axes = ()
    return Flip.apply(input, axes)


class Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return ctx.device.backend.xp.roll(x, shifts, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        negated = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return Roll.apply(grad, negated, ctx.axes)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Shift elements cyclically by ``shifts`` along ``dims`` (over the flattened tensor when None)."""
    if dims is None:
        if not isinstance(shifts, int):
            if len(shifts) != 1:
                raise ShapeError(f"roll: with dims=None, shifts must be a single int, got {list(shifts)}")
            shifts = shifts[0]
        return Roll.apply(input, int(shifts), None)
    shifts = (int(shifts),) if isinstance(shifts, int) else tuple(int(s) for s in shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ShapeError(f"roll: shifts ({list(shifts)}) and dims ({list(dims)}) must have the same length")
    axes = tuple(normalize_dim(d, input.ndim, "roll") for d in dims)
    if input.ndim == 0:
        return Roll.apply(input, 0, None)
    return Roll.apply(input, shifts, axes)


class Triangle(Function):
    """tril / triu: keep one triangle of the last two dimensions, zero the rest."""

    @staticmethod
    def forward(ctx, x, upper, diagonal):
        ctx.upper, ctx.diagonal = upper, diagonal
        xp = ctx.device.backend.xp
        return xp.triu(x, diagonal) if upper else xp.tril(x, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return Triangle.apply(grad, ctx.upper, ctx.diagonal)


def _triangle(input: Tensor, upper: bool, diagonal: int, op: str) -> Tensor:
    if input.ndim < 2:
        raise ShapeError(f"{op}: input tensor must have at least 2 dimensions, got shape {shape_str(input.shape)}")
    return Triangle.apply(input, upper, int(diagonal))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle (on and below ``diagonal``) of the last two dims; the rest is zero."""
    return _triangle(input, False, diagonal, "tril")


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle (on and above ``diagonal``) of the last two dims; the rest is zero."""
    return _triangle(input, True, diagonal, "triu")


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
def size(input: Tensor, dim: int | None = None):
    """The shape, or its length along ``dim`` (``Tensor.size``; not a ``gradflow.size`` function, as in PyTorch)."""
    if dim is None:
        return input._data.shape
    return input._data.shape[normalize_dim(dim, input._data.ndim, "size")]


TENSOR_METHODS = (
    "reshape",
    "view",
    "expand",
    "expand_as",
    "broadcast_to",
    "permute",
    "transpose",
    "swapaxes",
    "swapdims",
    "t",
    "flatten",
    "unflatten",
    "squeeze",
    "unsqueeze",
    "movedim",
    "moveaxis",
    "flip",
    "roll",
    "tril",
    "triu",
)

__all__ = list(TENSOR_METHODS)  # the same names are exported as gradflow.<name>
