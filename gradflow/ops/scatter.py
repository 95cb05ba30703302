"""Gather and scatter along a dimension: index_select, index_add, index_fill, gather, scatter,
scatter_add, take_along_dim, masked_fill, and their in-place forms.

Each op is an advanced index built from the index tensor along ``dim`` and aranges
elsewhere, fed to the three Functions of ``index.py``; their backwards are each other,
so double backward comes free.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..dtypes import bool as bool_dtype
from ..dtypes import int32, int64
from ..errors import ArgumentTypeError, DtypeError, IndexOutOfRangeError, ShapeError, device_mismatch, shape_str
from ..tensor import Tensor
from ._checks import broadcast_shapes_or_raise, normalize_dim, out_of_range_value
from .compare import where
from .creation import full, tensor
from .index import Index, IndexBackward, IndexPut, getitem
from .inplace import apply_inplace

# -- gather / scatter family ----------------------------------------------------------------------
#
# Every op takes ``index`` as an int64/int32 tensor and checks its range on the host before touching
# memory: NumPy would wrap negative indices silently and CuPy would read out of bounds. Each op is an
# advanced index (the index along ``dim``, aranges elsewhere) fed to the three Functions above:
# Index reads (gather, index_select), IndexPut writes (scatter, index_fill), IndexBackward adds with
# repeats accumulated (scatter_add, index_add). Their backwards are each other, so double backward is free.


def _index_tensor(op: str, input: Tensor, index, empty_any_dtype: bool = False) -> Tensor:
    """``index`` as an integer tensor on ``input``'s device, or a typed error saying what to pass.

    With ``empty_any_dtype`` (gather/scatter, as PyTorch) an empty index of any dtype passes.
    """
    if not isinstance(index, Tensor):
        if not isinstance(index, (list, tuple, np.ndarray, numbers.Integral)):
            raise ArgumentTypeError(
                f"{op}: index must be an int64 tensor, got {type(index).__name__}; "
                "wrap it with gradflow.tensor(..., dtype=gradflow.int64)"
            )
        index = tensor(index, dtype=int64, device=input.device)
    if index._dtype not in (int64, int32) and not (empty_any_dtype and index._data.size == 0):
        raise DtypeError(
            f"{op}: expected an int64 or int32 index tensor, got {index._dtype.name} of shape "
            f"{shape_str(index.shape)}; convert it with .long()"
        )
    if index._device is not input._device:
        raise device_mismatch(op, input._device, index._device, "index")
    return index


def _check_range(op: str, index: Tensor, size: int, dim: int, shape: tuple, wrap: bool = False) -> Tensor:
    """Raise IndexOutOfRangeError unless every index is in [0, size) ([-size, size) with ``wrap``).

    With ``wrap``, negative indices are returned counted from the end, as PyTorch reads them.
    """
    data = index._data
    bad = out_of_range_value(data, -size if wrap else 0, size)
    if bad is not None:
        allowed = f"[{-size}, {size - 1}]" if wrap else f"[0, {size - 1}]"
        raise IndexOutOfRangeError(
            f"{op}: index {bad} is out of bounds for dimension {dim} with size {size} (tensor of shape "
            f"{shape_str(shape)}); indices must lie in {allowed}"
        )
    if wrap and data.size and int(data.min()) < 0:
        backend = index._device.backend
        with backend.context():
            return Tensor._wrap(backend.xp.where(data < 0, data + size, data), index._device)
    return index


def _along(index: Tensor, dim: int) -> tuple:
    """The advanced index that reads ``index[i, j, ...]`` along ``dim`` and i, j, ... in the other dims."""
    backend = index._device.backend
    parts = []
    with backend.context():  # the aranges must live on the index's GPU
        for axis, size in enumerate(index.shape):
            shape = [1] * index.ndim
            shape[axis] = size
            parts.append(index._data if axis == dim else backend.xp.arange(size).reshape(shape))
    return tuple(parts)


def _add_at(input: Tensor, where: tuple, values: Tensor) -> Tensor:
    """``input`` plus ``values`` added at the advanced index ``where``, repeats accumulated (gradient: a gather)."""
    return input + IndexBackward.apply(values, input.shape, where)


def _vector_index(op: str, input: Tensor, dim: int, index, wrap: bool = False):
    """(input viewed as >= 1-d, the checked index as a tuple along dim) for index_select / index_add / index_fill."""
    index = _index_tensor(op, input, index)
    if index.ndim > 1:
        raise IndexOutOfRangeError(f"{op}: index is supposed to be a vector, got shape {shape_str(index.shape)}")
    base = input.reshape(1) if input.ndim == 0 else input
    axis = normalize_dim(dim, input.ndim, op)
    index = _check_range(op, index.reshape(-1), base.shape[axis], dim, input.shape, wrap)
    return base, (slice(None),) * axis + (index._data,)


def index_select(input: Tensor, dim: int, index) -> Tensor:
    """The entries of ``input`` at positions ``index`` (a 1-d int64 tensor) along ``dim`` (a copy)."""
    base, where = _vector_index("index_select", input, dim, index)
    result = Index.apply(base, where)
    return result.reshape(()) if input.ndim == 0 else result


def index_add(input: Tensor, dim: int, index, source: Tensor, *, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added at positions ``index`` along ``dim`` (repeats add up)."""
    base, where = _vector_index("index_add", input, dim, index)
    axis = len(where) - 1
    expected = base.shape[:axis] + where[-1].shape + base.shape[axis + 1 :]
    source = source.reshape(expected) if input.ndim == 0 else source
    if source.shape != expected:
        raise ShapeError(
            f"index_add: source should have shape {shape_str(expected)} (the input's shape {shape_str(input.shape)} "
            f"with dimension {dim} of size {where[-1].size}), got {shape_str(source.shape)}"
        )
    source = source.to(input.dtype) if alpha == 1 else (source * alpha).to(input.dtype)
    result = _add_at(base, where, source)
    return result.reshape(()) if input.ndim == 0 else result


def index_fill(input: Tensor, dim: int, index, value) -> Tensor:
    """A copy of ``input`` with the slices at ``index`` along ``dim`` set to ``value`` (a number or 0-d tensor)."""
    base, where = _vector_index("index_fill", input, dim, index, wrap=True)
    result = IndexPut.apply(base, where, _fill_value("index_fill", input, value))
    return result.reshape(()) if input.ndim == 0 else result


def _leading(tensor: Tensor, shape: tuple) -> Tensor:
    """``tensor`` cut to its leading block of ``shape`` (a view; the whole tensor when it already fits)."""
    if tensor.shape == tuple(shape):
        return tensor
    return getitem(tensor, tuple(slice(0, size) for size in shape))


def _scatter_args(op: str, input: Tensor, dim: int, index, src=None):
    """Check a gather/scatter call; return (input as >= 1-d, axis, index, src cut to the index's shape).

    An empty index has nothing to read or write: PyTorch then checks only ``dim`` and src's dtype (not the
    index's dtype, dimensions or sizes), and so does this; axis comes back None.
    """
    index = _index_tensor(op, input, index, empty_any_dtype=True)
    if index._data.size == 0:
        normalize_dim(dim, max(input.ndim, 1), op)
        _check_src_dtype(op, input, src)
        return input, None, index, src
    if index.ndim != max(input.ndim, 1) and not (input.ndim == 0 and index.ndim == 0):
        raise ShapeError(
            f"{op}: index must have the same number of dimensions as the input, got index of shape "
            f"{shape_str(index.shape)} and input of shape {shape_str(input.shape)}"
        )
    base = input
    if input.ndim == 0:
        base, index = input.reshape(1), index.reshape(1)
        src = src.reshape(1) if isinstance(src, Tensor) and src.ndim == 0 else src
    axis = normalize_dim(dim, base.ndim, op)
    for other_axis, (size, limit) in enumerate(zip(index.shape, base.shape)):
        if other_axis != axis and size > limit:
            raise ShapeError(
                f"{op}: index of shape {shape_str(index.shape)} is larger than the input of shape "
                f"{shape_str(input.shape)} at dimension {other_axis}; apart from dimension {dim} it must fit"
            )
    if isinstance(src, Tensor) and src.ndim:
        if src.ndim != index.ndim or any(s < i for s, i in zip(src.shape, index.shape)):
            raise ShapeError(
                f"{op}: src of shape {shape_str(src.shape)} must have the index's number of dimensions and be at "
                f"least as large as the index of shape {shape_str(index.shape)} in every dimension"
            )
        src = _leading(src, index.shape)
    _check_src_dtype(op, input, src)
    return base, axis, _check_range(op, index, base.shape[axis], dim, input.shape), src


def _check_src_dtype(op: str, input: Tensor, src) -> None:
    if isinstance(src, Tensor) and src._dtype is not input._dtype:
        raise DtypeError(
            f"{op}: expected src of the input's dtype {input._dtype.name}, got {src._dtype.name}; "
            f"convert it with .to({input._dtype.name})"
        )


def _nothing_at(input: Tensor, index: Tensor) -> Tensor:
    """gather with an empty index: an empty tensor of the index's shape, read from ``input`` (gradient zero)."""
    backend = index._device.backend
    with backend.context():
        nowhere = backend.xp.zeros(index.shape, dtype=backend.xp.int64)
    return Index.apply(input.reshape(-1), (nowhere,))


def gather(input: Tensor, dim: int, index) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for dim 0 (and likewise for other dims); the result has index's shape.

    >>> import gradflow as gf
    >>> gf.gather(gf.tensor([[1, 2], [3, 4]]), 1, gf.tensor([[0, 0], [1, 0]])).tolist()
    [[1, 1], [4, 3]]
    """
    base, axis, index, _ = _scatter_args("gather", input, dim, index)
    if axis is None:
        return _nothing_at(input, index)
    result = Index.apply(base, _along(index, axis))
    return result.reshape(()) if input.ndim == 0 else result


def scatter(input: Tensor, dim: int, index, src=None, *, value=None) -> Tensor:
    """Out-of-place scatter: a copy of ``input`` with ``src[i][j]`` written at ``[index[i][j]][j]`` (dim 0).

    ``src`` is a tensor of the input's dtype or a number (same as ``value=``). With repeated
    indices one of the writes wins, as in PyTorch.
    """
    if (src is None) == (value is None):
        raise ArgumentTypeError("scatter: pass exactly one of src (a tensor) and value (a number)")
    src = value if src is None else src
    base, axis, index, src = _scatter_args("scatter", input, dim, index, src)
    if axis is None:  # an empty index writes nothing
        return input.clone()
    result = IndexPut.apply(base, _along(index, axis), src)
    return result.reshape(()) if input.ndim == 0 else result


def scatter_add(input: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """Out-of-place scatter_add: a copy of ``input`` with ``src[i][j]`` added at ``[index[i][j]][j]`` (dim 0).

    Repeated indices accumulate.
    """
    if not isinstance(src, Tensor):
        raise ArgumentTypeError(
            f"scatter_add: src must be a Tensor, got {type(src).__name__}; use scatter(..., value=) for a number"
        )
    base, axis, index, src = _scatter_args("scatter_add", input, dim, index, src)
    if axis is None:  # an empty index adds nothing
        return input.clone()
    result = _add_at(base, _along(index, axis), src)
    return result.reshape(()) if input.ndim == 0 else result


def take_along_dim(input: Tensor, indices, dim: int | None = None) -> Tensor:
    """Pick values along ``dim`` at ``indices``, broadcasting the other dims (flattened when dim is None)."""
    indices = _index_tensor("take_along_dim", input, indices)
    if dim is None:
        flat = input.reshape(-1)
        indices = _check_range("take_along_dim", indices.reshape(-1), flat.shape[0], 0, input.shape, wrap=True)
        return Index.apply(flat, _along(indices, 0))
    if indices.ndim != input.ndim:
        raise ShapeError(
            f"take_along_dim: input and indices should have the same number of dimensions, got input of shape "
            f"{shape_str(input.shape)} and indices of shape {shape_str(indices.shape)}"
        )
    axis = normalize_dim(dim, input.ndim, "take_along_dim")
    if input.ndim == 0:
        return gather(input, 0, indices)
    # Every dim but ``dim`` broadcasts between input and indices.
    common = list(broadcast_shapes_or_raise("take_along_dim", _one_at(input.shape, axis), _one_at(indices.shape, axis)))
    wanted_input = tuple(common[:axis] + [input.shape[axis]] + common[axis + 1 :])
    wanted_indices = tuple(common[:axis] + [indices.shape[axis]] + common[axis + 1 :])
    indices = _check_range("take_along_dim", indices, input.shape[axis], dim, input.shape, wrap=True)
    return Index.apply(input.expand(wanted_input), _along(indices.expand(wanted_indices), axis))


def _one_at(shape: tuple, axis: int) -> tuple:
    """``shape`` with size 1 at ``axis`` (so that it broadcasts with anything there)."""
    return shape[:axis] + (1,) + shape[axis + 1 :]


def _fill_value(op: str, input: Tensor, value):
    """A number, or a 0-d tensor cast to ``input``'s dtype (its gradient is the sum over the filled places)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(
                f"{op}: only supports a 0-dimensional value tensor, got shape {shape_str(value.shape)}; "
                "use where() to fill from a tensor"
            )
        if value._device is not input._device:
            raise device_mismatch(op, input._device, value._device, "value")
        return value.to(input.dtype)
    if not isinstance(value, numbers.Number):
        raise ArgumentTypeError(
            f"{op}: value must be a number or a 0-d tensor, got {type(value).__name__}; pass a Python number"
        )
    return value


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """A copy of ``input`` with ``value`` where the bool ``mask`` (broadcast with input) is True."""
    if not isinstance(mask, Tensor) or mask._dtype is not bool_dtype:
        got = mask._dtype.name if isinstance(mask, Tensor) else type(mask).__name__
        raise DtypeError(f"masked_fill: only boolean masks are supported, got {got}; build one with a comparison")
    if mask._device is not input._device:
        raise device_mismatch("masked_fill", input._device, mask._device, "mask")
    value = _fill_value("masked_fill", input, value)
    if not isinstance(value, Tensor):
        value = full((), value, dtype=input.dtype, device=input.device)
    return where(mask, value, input)


# -- in-place forms (bound as Tensor methods by gradflow.ops.methods from INPLACE_METHODS) -------------------------


def scatter_(self, dim, index, src=None, *, value=None) -> Tensor:
    """In-place scatter."""
    return apply_inplace(self, "scatter_", lambda old, i, s: scatter(old, dim, i, s, value=value), index, src)


def scatter_add_(self, dim, index, src) -> Tensor:
    """In-place scatter_add."""
    return apply_inplace(self, "scatter_add_", lambda old, i, s: scatter_add(old, dim, i, s), index, src)


def masked_fill_(self, mask, value) -> Tensor:
    """In-place masked_fill; the mask must broadcast to this tensor's shape."""
    return apply_inplace(self, "masked_fill_", lambda old, m, v: masked_fill(old, m, v), mask, value)


def index_fill_(self, dim, index, value) -> Tensor:
    """In-place index_fill."""
    return apply_inplace(self, "index_fill_", lambda old, i, v: index_fill(old, dim, i, v), index, value)


def index_add_(self, dim, index, source, *, alpha=1) -> Tensor:
    """In-place index_add."""
    return apply_inplace(self, "index_add_", lambda old, i, s: index_add(old, dim, i, s, alpha=alpha), index, source)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = (
    "index_select",
    "index_add",
    "index_fill",
    "gather",
    "scatter",
    "scatter_add",
    "take_along_dim",
    "masked_fill",
)

# In-place methods, bound on Tensor by gradflow.ops.methods.
INPLACE_METHODS = ("scatter_", "scatter_add_", "masked_fill_", "index_fill_", "index_add_")

__all__ = list(TENSOR_METHODS)
