"""Turning op arguments into tensors of one dtype on one device."""

from __future__ import annotations

import numbers

import numpy as np

from ..dtypes import get_default_dtype, result_type
from ..errors import ArgumentTypeError, DeviceMismatchError, ShapeError, not_a_tensor
from ..tensor import Tensor
from ._checks import broadcast_shapes_or_raise
from .creation import as_tensor, tensor


def scalar_or_tensor(value, like: Tensor, op: str):
    """Keep Python numbers as they are (they promote weakly); wrap arrays on ``like``'s device."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bool, numbers.Number)):
        return value
    if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        if like._device.type != "cpu" and isinstance(value, np.ndarray):
            raise DeviceMismatchError(
                f"{op}: got a NumPy array and a tensor on {like._device}; convert the array with "
                f"gradflow.tensor(array, device={str(like._device)!r})"
            )
        return tensor(value, device=like._device)
    if type(value).__module__.startswith("cupy"):
        return as_tensor(value)
    raise ArgumentTypeError(f"{op}: unsupported operand of type {type(value).__name__}; expected a Tensor or a number")


def promote_operands(op: str, *values, float_result: bool = False, numbers_allowed: bool = False):
    """Convert scalars, cast tensors to the common result dtype, and return (operands, dtype).

    With ``float_result`` integer results become the default float dtype (true division).
    With ``numbers_allowed`` (add, sub, mul, div, as in PyTorch) operands that are all Python
    numbers give a 0-d tensor on the default device: ``add(1, 2)`` is ``tensor(3)``.
    """
    if len(values) == 2:
        # Fast path for the common cases: two tensors of one dtype, or a float tensor and a number.
        first, second = values
        if first.__class__ is Tensor:
            dtype = first._dtype
            same = (
                second._dtype is dtype
                if second.__class__ is Tensor
                else (second.__class__ in (float, int) and dtype.category == 2)
            )
            if same and (dtype.category == 2 or not float_result):
                return values, dtype
    like = next((v for v in values if isinstance(v, Tensor)), None)
    if like is None and numbers_allowed and all(isinstance(v, (bool, numbers.Number)) for v in values):
        like = tensor(values[0])  # PyTorch wraps the first number as a 0-d tensor of its own dtype
        values = (like, *values[1:])
    if like is None:  # pow(1, 2): PyTorch refuses too, so nothing says which device or dtype to use
        raise not_a_tensor(op, values[0])
    values = tuple(scalar_or_tensor(v, like, op) for v in values)
    dtype = result_type(*values)
    if float_result and not dtype.is_floating_point:
        dtype = get_default_dtype()
    converted = tuple(v.to(dtype) if isinstance(v, Tensor) and v._dtype is not dtype else v for v in values)
    return converted, dtype


def apply_broadcasting(function, op: str, *operands, **params):
    """``function.apply`` with broadcasting failures reported as ShapeError."""
    try:
        return function.apply(*operands, **params)
    except ValueError as error:
        if isinstance(error, ShapeError):
            raise
        shapes = [v.shape for v in operands if isinstance(v, Tensor)]
        broadcast_shapes_or_raise(op, *shapes)
        raise
