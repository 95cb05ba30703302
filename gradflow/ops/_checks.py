"""Argument checks shared by the ops, each raising a typed error that says what to do."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ArgumentTypeError, DtypeError, IndexOutOfRangeError, ShapeError, not_a_tensor, shape_str


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """``dim`` as a non-negative axis of an ``ndim``-dimensional tensor (0-d tensors accept 0 and -1)."""
    if not isinstance(dim, numbers.Integral):
        raise ArgumentTypeError(
            f"{op}: dim must be an int or a tuple of ints, got {type(dim).__name__} {dim!r}; pass e.g. dim=1"
        )
    bound = max(ndim, 1)
    if not -bound <= dim < bound:
        raise IndexOutOfRangeError(
            f"{op}: dimension out of range (expected to be in range of [{-bound}, {bound - 1}], but got {dim})"
        )
    return int(dim) + bound if dim < 0 else int(dim)


def normalize_dims(dims, ndim: int, op: str) -> tuple:
    """A dim, a sequence of dims or None (all dims) as a sorted tuple of axes."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, numbers.Integral) or not isinstance(dims, (tuple, list)):
        dims = (dims,)  # a float or other non-int dim is refused by normalize_dim
    normalized = [normalize_dim(d, ndim, op) for d in dims]
    if len(set(normalized)) != len(normalized):
        raise IndexOutOfRangeError(f"{op}: dims {list(dims)} name a dimension more than once; list each dim once")
    axes = tuple(sorted(normalized))
    if ndim == 0:
        return ()
    return axes


def broadcast_shapes_or_raise(op: str, *shapes) -> tuple:
    """The broadcast shape of ``shapes``, or a ShapeError naming the op and the shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(shape_str(s) for s in shapes)
        raise ShapeError(
            f"{op}: shapes {listed} cannot be broadcast together: trailing dimensions must be equal or 1; "
            "reshape or unsqueeze an operand so that they line up"
        ) from None


def require_float(op: str, tensor) -> None:
    """Raise when a float-only op gets an integer tensor."""
    try:
        floating = tensor._dtype.is_floating_point
    except AttributeError:
        raise not_a_tensor(op, tensor) from None
    if not floating:
        raise DtypeError(
            f"{op}: expected a floating point tensor but got {tensor._dtype.name} of shape {shape_str(tensor.shape)}; "
            "convert it first with .float() or .double()"
        )


def int_tuple(op: str, name: str, value, dims: int, repeat_single: bool = False) -> tuple:
    """An int (or a sequence of ``dims`` ints) as a tuple of ``dims`` ints, for sizes such as stride or padding.

    ``repeat_single`` also accepts a one-element sequence and repeats it, as PyTorch's
    pooling ops and layer constructors do (its functional convolutions do not).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * dims
    values = tuple(value) if isinstance(value, (tuple, list)) else ()
    if repeat_single and len(values) == 1:
        values = values * dims
    if len(values) != dims or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ShapeError(
            f"{op}: {name} must be a single int or a sequence of {dims} ints (one per spatial dimension), "
            f"got {name}={value!r}"
        )
    return values


def index_bounds(indices) -> tuple[int, int]:
    """``(min, max)`` of a non-empty index array as Python ints.

    On a GPU both values travel in ONE device-to-host copy: every read of device data on the
    host waits for the device to finish its queued work, so two separate reads would cost two
    round trips.
    """
    if isinstance(indices, np.ndarray):
        return int(indices.min()), int(indices.max())
    import cupy  # only CuPy arrays get here

    with indices.device:
        smallest, largest = cupy.stack((indices.min(), indices.max())).tolist()
    return int(smallest), int(largest)


def out_of_range_value(indices, low: int, high: int, exempt: int | None = None, bounds=None):
    """The first index outside ``[low, high)`` as a Python int, or None when all are inside.

    ``exempt`` is a value allowed anyway (a loss's ``ignore_index``). ``bounds`` is the
    ``index_bounds(indices)`` pair when the caller has it already. This is the one place
    where the index checks of the ops read device data on the host: one synchronisation per
    call on a GPU (min and max in one copy), until a device-side check replaces it.
    """
    if indices.size == 0:
        return None
    smallest, largest = index_bounds(indices) if bounds is None else bounds
    if smallest >= low and largest < high:
        return None
    if exempt is None:
        return largest if largest >= high else smallest
    outside = ((indices < low) | (indices >= high)) & (indices != exempt)
    return int(indices[outside].ravel()[0]) if bool(outside.any()) else None
