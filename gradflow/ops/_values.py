"""What creation ops accept as sizes and values: the checks behind zeros/ones/full/eye/tensor.

PyTorch refuses what a dtype cannot hold (``full((2,), nan, dtype=int64)``, ``tensor([2**70])``,
``full(1, 300, dtype=uint8)``), sizes that are not ints (``ones(2.5)``) and ragged nested lists;
NumPy would wrap, truncate or raise its own errors. A failed allocation is gradflow's OutOfMemoryError.
"""

from __future__ import annotations

import builtins
import math
import numbers
import sys

import numpy as np

from ..errors import (
    ArgumentTypeError,
    ArgumentValueError,
    OutOfMemoryError,
    ShapeError,
    ValueOutOfRangeError,
    shape_str,
)
from ..tensor import Tensor


def size_arg(size, op: str) -> tuple:
    """Accept ``zeros(2, 3)``, ``zeros((2, 3))`` and ``zeros([2, 3])``; every size an int >= 0, as in torch."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(dimension(s, op, "size") for s in size)
    if any(s < 0 for s in shape):
        raise ArgumentValueError(f"{op}: negative dimension in size {list(shape)}; sizes must be >= 0")
    return shape


def dimension(value, op: str, name: str) -> int:
    """One size argument as an int: Python and NumPy integers and 1-element integer tensors, never floats or bools."""
    if isinstance(value, Tensor) and not value._dtype.is_floating_point and value._dtype.name != "bool":
        if value._data.size == 1:
            return int(value.item())
    elif isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    kind = "an int or a tuple of ints" if name == "size" else "an int"
    raise ArgumentTypeError(
        f"{op}(): argument '{name}' must be {kind}, got {type(value).__name__} {value!r}; "
        f"convert it first, e.g. {op}(int(n))"
    )


def allocate(op: str, shape: tuple, chosen, make):
    """Run ``make()``, which allocates ``shape`` of ``chosen``: a failed allocation is an OutOfMemoryError."""
    nbytes = math.prod(shape) * chosen.itemsize
    message = (
        f"{op}: a {chosen.name} tensor of shape {shape_str(shape)} needs {nbytes:,} bytes, more than can be "
        "allocated; make it smaller or split the work into pieces"
    )
    if nbytes > sys.maxsize:  # NumPy would say "array is too big" (a ValueError)
        raise OutOfMemoryError(message)
    try:
        return make()
    except MemoryError:  # NumPy's and CuPy's allocation failures
        raise OutOfMemoryError(message) from None


def check_fits(op: str, values, chosen, check_floats: bool) -> None:
    """Refuse Python numbers that ``chosen`` cannot hold, as torch does, instead of wrapping them silently.

    Integer dtypes refuse NaN, +-inf and values outside their range (uint8, like torch, wraps negative ints);
    with ``check_floats`` (``full``), float32/float64 also refuse finite values beyond their largest.
    """
    if chosen.name == "bool" or chosen.np is None or not values:
        return
    info = np.iinfo(chosen.np) if not chosen.is_floating_point else np.finfo(chosen.np)
    for value in values:
        if isinstance(value, (bool, np.bool_)):
            continue
        if chosen.is_floating_point:
            bad = (
                check_floats and chosen.itemsize >= 4 and math.isfinite(value) and abs(value) > builtins.float(info.max)
            )
        elif isinstance(value, numbers.Integral):
            low = -(2**63) if chosen.name == "uint8" else info.min
            bad = not low <= value <= builtins.int(info.max)
        else:
            value = builtins.float(value)
            bad = not math.isfinite(value) or not builtins.int(info.min) <= math.trunc(value) <= builtins.int(info.max)
        if bad:
            raise ValueOutOfRangeError(
                f"{op}: value {value!r} cannot be converted to {chosen.name} without overflow; "
                "use a dtype that holds it (float64 for huge values, a float dtype for NaN/inf) or clamp it first"
            )


def host_array(data) -> np.ndarray:
    """Python data (nested lists, numbers, 0-d tensors) as a NumPy array; ragged lists are a ShapeError."""
    try:
        array = np.asarray(unwrap_nested(data))
    except ValueError:  # NumPy: "setting an array element with a sequence ... inhomogeneous shape"
        dim, expected, got = _first_ragged(data) or (0, "?", "?")
        raise ShapeError(
            f"tensor: expected a sequence of length {expected} at dim {dim} (got {got}); nested lists must be "
            "rectangular: pad the short rows or make one tensor per row"
        ) from None
    if array.dtype == object:
        ints = all(isinstance(v, numbers.Integral) for v in array.reshape(-1).tolist()) if array.size else False
        if ints:  # Python ints beyond int64/uint64
            raise ValueOutOfRangeError(
                f"tensor: integer {max(array.reshape(-1).tolist(), key=abs)} does not fit in int64 "
                "(Overflow when unpacking long long); pass it as a float, or split it into smaller numbers"
            )
        raise ArgumentTypeError(
            f"tensor: could not infer a dtype from data of type {type(data).__name__}; pass numbers, nested lists "
            "of numbers, or arrays"
        )
    return array


def _first_ragged(data, dim: int = 1):
    """(dim, expected length, got) of the first row whose length differs from its siblings', or None."""
    if not isinstance(data, (list, tuple)) or not data:
        return None
    lengths = [len(item) if isinstance(item, (list, tuple)) else "a number" for item in data]
    for length in lengths:
        if length != lengths[0]:
            return dim, lengths[0], length
    return next((found for item in data if (found := _first_ragged(item, dim + 1))), None)


def check_python_values(array: np.ndarray, chosen) -> None:
    """Python numbers ``chosen`` cannot hold raise, as in torch: 2**63 as int64, NaN as an int, 300 as uint8."""
    if array.dtype == np.uint64 and not chosen.is_floating_point and chosen.name != "bool":
        raise ValueOutOfRangeError(
            f"tensor: integer {int(array.max())} does not fit in int64 (Overflow when unpacking long long); "
            "pass it as a float, or split it into smaller numbers"
        )
    if chosen.is_floating_point or chosen.name == "bool" or array.dtype.kind not in "iuf":
        return
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        values = [array[~finite].reshape(-1)[0].item()] if not finite.all() else []
        values += [array[finite].min().item(), array[finite].max().item()] if finite.any() else []
    else:
        values = [int(array.min()), int(array.max())] if array.size else []
    check_fits("tensor", values, chosen, False)


def unwrap_nested(data):
    """Lists may hold 0-d tensors (e.g. ``[x.sum(), y.sum()]``); turn them into numbers."""
    if isinstance(data, (list, tuple)) and data and any(isinstance(item, (Tensor, list, tuple)) for item in data):
        return [unwrap_nested(item) for item in data]
    if isinstance(data, Tensor):
        return data.detach().cpu().numpy()
    return data
