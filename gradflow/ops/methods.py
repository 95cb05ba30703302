"""Attach the ops to Tensor as methods and operators.

Each ops module lists in ``TENSOR_METHODS`` the functions that PyTorch also
offers as Tensor methods; they are bound here under the same name. Operators
and in-place methods are bound explicitly below.
"""

from __future__ import annotations

from ..tensor import Tensor
from . import (
    activation,
    arithmetic,
    compare,
    conversion,
    creation,
    elementwise,
    index,
    inplace,
    join,
    linalg,
    reduce,
    scatter,
    shape,
    softmax,
    statistics,
)

FAMILIES = (
    arithmetic,
    elementwise,
    activation,
    compare,
    reduce,
    statistics,
    shape,
    join,
    index,
    scatter,
    linalg,
    conversion,
    softmax,
)


def _reflected(function):
    def method(self, other) -> Tensor:
        return function(other, self)

    method.__name__ = f"r{function.__name__}"
    return method


def _positive(self) -> Tensor:
    """``+x``: the tensor itself, as in PyTorch."""
    return self


def _reversed_dims(self) -> Tensor:
    """``x.T``: the dimensions in reverse order."""
    return shape.permute(self, tuple(range(self.ndim - 1, -1, -1)))


def _matrix_transpose(self) -> Tensor:
    """``x.mT``: the last two dimensions swapped."""
    return shape.transpose(self, -2, -1)


def bind() -> None:
    """Install the methods on Tensor (idempotent)."""
    Tensor.__new__ = staticmethod(creation.tensor_new)
    Tensor.size = shape.size
    for module in FAMILIES:
        for name in module.TENSOR_METHODS:
            setattr(Tensor, name, getattr(module, name))

    operators = {
        "__add__": arithmetic.add,
        "__radd__": _reflected(arithmetic.add),
        "__sub__": arithmetic.sub,
        "__rsub__": _reflected(arithmetic.sub),
        "__mul__": arithmetic.mul,
        "__rmul__": _reflected(arithmetic.mul),
        "__truediv__": arithmetic.div,
        "__rtruediv__": _reflected(arithmetic.div),
        "__floordiv__": arithmetic.floor_divide,
        "__rfloordiv__": _reflected(arithmetic.floor_divide),
        "__mod__": arithmetic.remainder,
        "__rmod__": _reflected(arithmetic.remainder),
        "__pow__": arithmetic.pow,
        "__rpow__": _reflected(arithmetic.pow),
        "__matmul__": linalg.matmul,
        "__rmatmul__": _reflected(linalg.matmul),
        "__neg__": arithmetic.neg,
        "__pos__": _positive,
        "__abs__": arithmetic.abs,
        "__eq__": compare.eq,
        "__ne__": compare.ne,
        "__lt__": compare.lt,
        "__le__": compare.le,
        "__gt__": compare.gt,
        "__ge__": compare.ge,
        "__and__": compare.logical_and,
        "__or__": compare.logical_or,
        "__xor__": compare.logical_xor,
        "__invert__": compare.logical_not,
        "__iadd__": inplace.iadd,
        "__isub__": inplace.isub,
        "__imul__": inplace.imul,
        "__itruediv__": inplace.itruediv,
        "__getitem__": index.getitem,
        "__setitem__": index.setitem,
    }
    for name, function in operators.items():
        setattr(Tensor, name, function)

    for name in ("add_", "sub_", "mul_", "div_", "pow_", "clamp_", "neg_", "zero_", "fill_", "copy_"):
        setattr(Tensor, name, getattr(inplace, name))
    Tensor.clip_ = inplace.clamp_
    for name in scatter.INPLACE_METHODS:
        setattr(Tensor, name, getattr(scatter, name))
    for name in inplace.INPLACE_UNARY:
        setattr(Tensor, f"{name}_", inplace._unary_inplace(name))

    Tensor.T = property(_reversed_dims)
    Tensor.mT = property(_matrix_transpose)
