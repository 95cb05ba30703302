"""gradflow's dtypes, their NumPy/CuPy equivalents, and type promotion.

Promotion follows PyTorch: dimensioned tensors decide the result unless a
0-d tensor or a Python scalar belongs to a higher category (bool < integer <
floating), so ``float32_tensor * 2.5`` stays float32 and ``int_tensor / 2``
becomes the default float dtype.
"""

from __future__ import annotations

import builtins

import numpy as np

from .errors import DtypeError

_BOOL, _INT, _FLOAT = 0, 1, 2


class dtype:  # noqa: N801 - lower case like torch.dtype
    """A tensor element type, e.g. ``gradflow.float32``."""

    __slots__ = ("name", "np", "category", "itemsize")

    def __init__(self, name: str, np_dtype, category: int, itemsize: int):
        self.name = name
        self.np = None if np_dtype is None else np.dtype(np_dtype)
        self.category = category
        self.itemsize = itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.category == _FLOAT

    @property
    def is_signed(self) -> bool:
        return self.name not in ("bool", "uint8")

    def __repr__(self) -> str:
        return f"gradflow.{self.name}"

    def __reduce__(self):
        return (to_dtype, (self.name,))


float16 = half = dtype("float16", np.float16, _FLOAT, 2)
bfloat16 = dtype("bfloat16", None, _FLOAT, 2)
float32 = float = dtype("float32", np.float32, _FLOAT, 4)  # noqa: A001
float64 = double = dtype("float64", np.float64, _FLOAT, 8)
uint8 = dtype("uint8", np.uint8, _INT, 1)
int8 = dtype("int8", np.int8, _INT, 1)
int16 = short = dtype("int16", np.int16, _INT, 2)
int32 = int = dtype("int32", np.int32, _INT, 4)  # noqa: A001
int64 = long = dtype("int64", np.int64, _INT, 8)
bool = dtype("bool", np.bool_, _BOOL, 1)  # noqa: A001

ALL_DTYPES = (float16, bfloat16, float32, float64, uint8, int8, int16, int32, int64, bool)
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update(half=float16, float=float32, double=float64, short=int16, int=int32, long=int64)
_BY_NUMPY = {d.np: d for d in ALL_DTYPES if d.np is not None}

_default_float = float32


def get_default_dtype() -> dtype:
    """The float dtype used for Python floats and new float tensors."""
    return _default_float


def set_default_dtype(d) -> None:
    """Set the default float dtype (float32 or float64, like PyTorch)."""
    global _default_float
    d = to_dtype(d)
    if d not in (float16, float32, float64):
        raise DtypeError(f"set_default_dtype: only float16, float32 and float64 can be the default, got {d}")
    _default_float = d


def to_dtype(obj) -> dtype:
    """Convert a gradflow dtype, a NumPy dtype, a name or a Python type to a gradflow dtype."""
    if isinstance(obj, dtype):
        return obj
    if isinstance(obj, str):
        found = _BY_NAME.get(obj.replace("gradflow.", "").replace("torch.", ""))
        if found is not None:
            return found
    if obj is builtins.float:
        return _default_float
    if obj is builtins.int:
        return int64
    if obj is builtins.bool:
        return bool
    try:
        found = _BY_NUMPY.get(np.dtype(obj))
    except (TypeError, ValueError, SyntaxError, KeyError):  # NumPy parses strings such as "i4,(" as Python
        found = None
    if found is None:
        names = ", ".join(d.name for d in ALL_DTYPES)
        raise DtypeError(f"unsupported dtype {obj!r}; gradflow supports {names}")
    return found


def from_numpy_dtype(np_dtype) -> dtype:
    """The gradflow dtype of a NumPy/CuPy array dtype."""
    found = _BY_NUMPY.get(np_dtype)
    if found is None:
        found = _BY_NUMPY.get(np.dtype(np_dtype))
    if found is None:
        raise DtypeError(
            f"arrays of dtype {np_dtype} are not supported; convert with .astype(numpy.float32) or another "
            f"supported dtype ({', '.join(d.name for d in ALL_DTYPES if d.np is not None)})"
        )
    return found


def numpy_dtype(d: dtype):
    """The array dtype behind a gradflow dtype; bfloat16 has none."""
    if d.np is None:
        raise DtypeError(
            f"{d} has no NumPy or CuPy array type: neither backend can store it; use float16 or float32 instead"
        )
    return d.np


def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype that holds both ``a`` and ``b`` (torch.promote_types)."""
    if a is b:
        return a
    if bfloat16 in (a, b):
        other = b if a is bfloat16 else a
        if other.category < _FLOAT:
            return bfloat16
        return float32 if other is float16 else other
    if a.category != b.category:
        # Across categories the higher one wins as it is (int64 + float16 -> float16), as in PyTorch.
        return a if a.category > b.category else b
    return _BY_NUMPY[np.promote_types(a.np, b.np)]


def scalar_dtype(value) -> dtype:
    """The dtype a Python scalar takes on its own."""
    if isinstance(value, builtins.bool):
        return bool
    if isinstance(value, builtins.int):
        return int64
    return _default_float


def result_type(*operands) -> dtype:
    """PyTorch's result dtype of an op over tensors and Python scalars."""
    dim_result = zero_result = scalar_result = None
    for op in operands:
        if op is None:
            continue
        d = getattr(op, "dtype", None)
        if d is None:
            s = scalar_dtype(op)
            scalar_result = s if scalar_result is None else _promote_category(scalar_result, s)
        elif op.ndim == 0:
            zero_result = d if zero_result is None else promote_types(zero_result, d)
        else:
            dim_result = d if dim_result is None else promote_types(dim_result, d)
    result = dim_result
    if zero_result is not None and (result is None or zero_result.category > result.category):
        result = zero_result
    if scalar_result is not None and (result is None or scalar_result.category > result.category):
        result = scalar_result
    return result


def _promote_category(a: dtype, b: dtype) -> dtype:
    return a if a.category >= b.category else b
