"""Comparisons and selection: eq ne lt le gt ge, logical ops, isnan/isinf/isfinite,
maximum/minimum, clamp and where.

Comparisons and logical ops return bool tensors that never require grad, so
they run outside the tape.
"""

from __future__ import annotations

from ..autograd.function import Function
from ..dtypes import bool as bool_dtype
from ..dtypes import result_type
from ..errors import ArgumentTypeError, ArgumentValueError, DtypeError, device_mismatch, not_a_tensor
from ..tensor import Tensor
from ._checks import broadcast_shapes_or_raise
from ._operands import apply_broadcasting, promote_operands, scalar_or_tensor
from .creation import full


def _no_grad_op(op: str, compute, *values) -> Tensor:
    """Run an op whose result never requires grad: check devices and shapes, record nothing."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    if like is None:
        raise not_a_tensor(op, values[0])
    values = tuple(scalar_or_tensor(v, like, op) for v in values)
    arrays = []
    for value in values:
        if isinstance(value, Tensor):
            if value._device is not like._device:
                raise device_mismatch(op, like._device, value._device)
            arrays.append(value._data)
        else:
            arrays.append(value)
    try:
        result = compute(like._device.backend.xp, *arrays)
    except ValueError:
        broadcast_shapes_or_raise(op, *(v.shape for v in values if isinstance(v, Tensor)))
        raise
    return Tensor._wrap(result, like._device)


def eq(input, other) -> Tensor:
    """Elementwise ``input == other`` as a bool tensor."""
    return _no_grad_op("eq", lambda xp, a, b: xp.equal(a, b), input, other)


def ne(input, other) -> Tensor:
    return _no_grad_op("ne", lambda xp, a, b: xp.not_equal(a, b), input, other)


def lt(input, other) -> Tensor:
    return _no_grad_op("lt", lambda xp, a, b: xp.less(a, b), input, other)


def le(input, other) -> Tensor:
    return _no_grad_op("le", lambda xp, a, b: xp.less_equal(a, b), input, other)


def gt(input, other) -> Tensor:
    return _no_grad_op("gt", lambda xp, a, b: xp.greater(a, b), input, other)


def ge(input, other) -> Tensor:
    return _no_grad_op("ge", lambda xp, a, b: xp.greater_equal(a, b), input, other)


def logical_and(input, other) -> Tensor:
    return _no_grad_op("logical_and", lambda xp, a, b: xp.logical_and(a, b), input, other)


def logical_or(input, other) -> Tensor:
    return _no_grad_op("logical_or", lambda xp, a, b: xp.logical_or(a, b), input, other)


def logical_xor(input, other) -> Tensor:
    return _no_grad_op("logical_xor", lambda xp, a, b: xp.logical_xor(a, b), input, other)


def logical_not(input) -> Tensor:
    return _no_grad_op("logical_not", lambda xp, a: xp.logical_not(a), input)


def isnan(input) -> Tensor:
    return _no_grad_op("isnan", lambda xp, a: xp.isnan(a), input)


def isinf(input) -> Tensor:
    return _no_grad_op("isinf", lambda xp, a: xp.isinf(a), input)


def isfinite(input) -> Tensor:
    return _no_grad_op("isfinite", lambda xp, a: xp.isfinite(a), input)


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and elements."""
    return input.shape == other.shape and bool(eq(input, other).all())


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """True when every element satisfies |input - other| <= atol + rtol * |other|."""
    return bool(_no_grad_op("allclose", lambda xp, a, b: xp.allclose(a, b, rtol, atol, equal_nan), input, other))


def isclose(input, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    return _no_grad_op("isclose", lambda xp, a, b: xp.isclose(a, b, rtol, atol, equal_nan), input, other)


class Maximum(Function):
    """max(a, b) elementwise; the gradient's shares are ``_shares``'s (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.device.backend.xp.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return _shares(ctx, grad, a, b, a < b, a > b)


class Minimum(Function):
    """min(a, b) elementwise; the gradient's shares are ``_shares``'s (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.device.backend.xp.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return _shares(ctx, grad, a, b, a > b, a < b)


def _shares(ctx, grad, a, b, a_loses, b_loses):
    """The gradients of max/min(a, b): the winner gets all of it, a tie half to each, and where either is NaN
    (the result is NaN) both get all of it, so the NaN reaches both inputs' gradients, as in PyTorch."""
    tie = where(a == b, 0.5, 1.0)
    needs_a, needs_b = ctx.needs_input_grad
    grad_a = grad * where(a_loses, 0.0, tie).to(grad.dtype) if needs_a else None
    grad_b = grad * where(b_loses, 0.0, tie).to(grad.dtype) if needs_b else None
    return grad_a, grad_b


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum of two tensors."""
    (a, b), _ = promote_operands("maximum", input, other)
    return apply_broadcasting(Maximum, "maximum", a, b)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum of two tensors."""
    (a, b), _ = promote_operands("minimum", input, other)
    return apply_broadcasting(Minimum, "minimum", a, b)


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        xp = ctx.device.backend.xp
        # maximum/minimum rather than clip: they take one-sided bounds on every backend and keep NaN.
        out = x if low is None else xp.maximum(x, low)
        out = out if high is None else xp.minimum(out, high)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        inside = x == x  # all True, and False at NaN like PyTorch's mask
        if ctx.low is not None:
            inside = logical_and(inside, x >= ctx.low)
        if ctx.high is not None:
            inside = logical_and(inside, x <= ctx.high)
        return grad * inside


class ClampBetween(Function):
    """clamp with a tensor bound (either bound may be None, a number or a tensor), with PyTorch's gradients:
    the input gets it where low <= x <= high (never at NaN), low where x < low < high, high where x > high
    or high < low (the bound that decides the result; high wins when the bounds cross)."""

    @staticmethod
    def forward(ctx, x, low, high):
        xp = ctx.device.backend.xp
        ctx.save_for_backward(x, low, high)
        out = x if low is None else xp.maximum(x, low)
        return out if high is None else xp.minimum(out, high)

    @staticmethod
    def backward(ctx, grad):
        x, low, high = ctx.saved_tensors
        needs_x, needs_low, needs_high = ctx.needs_input_grad
        grad_x = grad_low = grad_high = None
        if needs_x:
            if low is None or high is None:
                inside = x <= high if low is None else x >= low
            else:
                inside = logical_and(x >= low, x <= high)
            grad_x = where(inside, grad, 0.0)
        if needs_low and low is not None:
            below = x < low if high is None else logical_and(x < low, low < high)
            grad_low = where(below, grad, 0.0)
        if needs_high and high is not None:
            above = x > high if low is None else logical_or(x > high, high < low)
            grad_high = where(above, grad, 0.0)
        return grad_x, grad_low, grad_high


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Limit every element to [min, max]; either bound may be None, a number or a tensor."""
    if min is None and max is None:
        raise ArgumentValueError("clamp: at least one of min and max must be given; pass min=, max= or both")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = [v for v in (min, max) if v is not None]
        (input, *bounds), _ = promote_operands("clamp", input, *bounds)
        low = bounds.pop(0) if min is not None else None
        high = bounds.pop(0) if max is not None else None
        return apply_broadcasting(ClampBetween, "clamp", input, low, high)
    dtype = result_type(input, *(v for v in (min, max) if v is not None))
    if dtype is not input._dtype:
        input = input.to(dtype)
    return Clamp.apply(input, min, max)


clip = clamp


class Where(Function):
    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        xp = ctx.device.backend.xp
        # A Python number takes the other operand's dtype (promotion was decided before apply).
        if not hasattr(a, "dtype"):
            a = xp.asarray(a, dtype=b.dtype)
        if not hasattr(b, "dtype"):
            b = xp.asarray(b, dtype=a.dtype)
        return xp.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # A literal 0 rather than grad * 0: an inf gradient must not turn the other branch into NaN.
        grad_a = where(condition, grad, 0.0) if needs[1] else None
        grad_b = where(condition, 0.0, grad) if needs[2] else None
        return None, grad_a, grad_b


def where(condition: Tensor, input, other) -> Tensor:
    """``input`` where ``condition`` holds, else ``other``; either may be a number."""
    if not isinstance(condition, Tensor):
        raise ArgumentTypeError("where: condition must be a bool Tensor; compare first, e.g. where(x > 0, x, y)")
    if condition._dtype is not bool_dtype:
        raise DtypeError(f"where: condition must be a bool tensor, got {condition._dtype.name}; compare first (x > 0)")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        dtype = result_type(input, other)
        input = full((), input, dtype=dtype, device=condition.device)
        other = full((), other, dtype=dtype, device=condition.device)
    (a, b), _ = promote_operands("where", input, other)
    return apply_broadcasting(Where, "where", condition, a, b)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = (
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "isnan",
    "isinf",
    "isfinite",
    "equal",
    "allclose",
    "isclose",
    "maximum",
    "minimum",
    "clamp",
    "clip",
    "where",
)

__all__ = [*TENSOR_METHODS]
