"""Arithmetic: + - * / // % ** and their reflected forms, negation and abs.

Python scalars stay scalars (they promote weakly, as in PyTorch); tensors are
cast to the result dtype before the op so NumPy computes in that dtype.
Gradients are returned at the broadcast shape; the engine sums them back.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.function import Function
from ..errors import ArgumentTypeError, ArgumentValueError, DtypeError, IntegerDivisionByZeroError
from ..tensor import Tensor
from ._operands import apply_broadcasting, promote_operands
from .compare import where


class Add(Function):
    # The common alpha == 1 case stores nothing on ctx, so its node needs no attribute dict.
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class ScaledAdd(Function):
    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.alpha = alpha
        return a + b * alpha

    @staticmethod
    def backward(ctx, grad):
        return grad, grad * ctx.alpha


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class ScaledSub(Function):
    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.alpha = alpha
        return a - b * alpha

    @staticmethod
    def backward(ctx, grad):
        return grad, grad * -ctx.alpha


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        needs_a, needs_b = ctx.needs_input_grad
        return (grad * b if needs_a else None), (grad * a if needs_b else None)


# x / 0, 0 / 0, inf - inf: PyTorch gives inf/NaN silently; NumPy would also warn (CuPy never does).
quiet = np.errstate(divide="ignore", invalid="ignore", over="ignore")


class Div(Function):
    @staticmethod
    @quiet
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        needs_a, needs_b = ctx.needs_input_grad
        grad_a = grad / b if needs_a else None
        grad_b = -grad * a / (b * b) if needs_b else None
        return grad_a, grad_b


class RoundedDiv(Function):
    """Division rounded toward zero ('trunc') or down ('floor'); its gradient is zero, as in PyTorch."""

    @staticmethod
    @quiet
    def forward(ctx, a, b, rounding_mode):
        xp = ctx.device.backend.xp
        if rounding_mode == "floor":
            return xp.floor_divide(a, b)
        # The operands were cast to the result dtype already; integer division must stay integer.
        result_dtype = (a if hasattr(a, "dtype") else b).dtype
        return xp.trunc(a / b).astype(result_dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        zeros = grad * 0
        return zeros, zeros


class Remainder(Function):
    """Python's modulo: the result takes the sign of the divisor."""

    @staticmethod
    @quiet
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.device.backend.xp.remainder(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        needs_a, needs_b = ctx.needs_input_grad
        grad_b = -grad * (a / b).floor() if needs_b else None
        return (grad if needs_a else None), grad_b


class Pow(Function):
    @staticmethod
    @quiet
    def forward(ctx, base, exponent):
        out = _integer_power(ctx.device.backend.xp, base, exponent)
        ctx.save_for_backward(base, exponent, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        base, exponent, out = ctx.saved_tensors
        needs_base, needs_exponent = ctx.needs_input_grad
        grad_base = grad_exponent = None
        if needs_base:
            if not isinstance(exponent, Tensor):
                grad_base = grad * 0 if exponent == 0 else grad * exponent * base ** (exponent - 1)
            else:
                # PyTorch's derivative is 0 where the exponent is 0, base 0 included (there e * b^(e-1)
                # is 0 * inf): x ** arange(4) has finite gradients at x = 0. As in PyTorch, the mask
                # covers the incoming gradient too (a NaN there still gives 0).
                grad_base = where(exponent == 0, 0.0, grad * exponent * base ** (exponent - 1))
        if needs_exponent:
            # d(b^e)/de = b^e log(b) (NaN for b < 0, as in PyTorch); PyTorch takes it as 0 where b == 0
            # and e >= 0. The inner where keeps log(0) out of that branch and of its derivatives.
            if isinstance(base, Tensor):
                at_zero = (base == 0) & (exponent >= 0)
                log_base = where(at_zero, 1.0, base).log()
            else:
                at_zero = exponent >= 0 if base == 0 else exponent != exponent  # all False unless base is 0
                log_base = _log_scalar(base)
            grad_exponent = where(at_zero, 0.0, grad * out * log_base)
        return grad_base, grad_exponent


def _integer_power(xp, base, exponent):
    """``base ** exponent``; integer tensors to negative integer tensor powers give torch's values (NumPy raises):
    1 for base 1, +-1 for base -1 by the exponent's parity, 0 otherwise (the fraction truncated).
    A bool result stays bool (``b ** True`` is b, ``b ** False`` is True), where NumPy would give int8."""
    if _is_bool(base) and _is_bool(exponent):
        return xp.logical_or(base, xp.logical_not(exponent))
    kind = getattr(exponent, "dtype", None)
    if kind is None or kind.kind not in "iu" or getattr(base, "dtype", exponent.dtype).kind not in "iu":
        return base**exponent
    negative = exponent < 0
    if not negative.any():
        return base**exponent
    positive = base ** xp.where(negative, 0, exponent)
    parity = xp.where(exponent % 2 == 0, 1, base).astype(positive.dtype)
    return xp.where(negative, xp.where((base == 1) | (base == -1), parity, 0), positive).astype(positive.dtype)


def _is_bool(value) -> bool:
    """A Python bool or a bool array (NumPy's or CuPy's dtype compares equal to ``bool``)."""
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b"


def _log_scalar(value: float) -> float:
    """log of a Python number, as a tensor log would give it: -inf at 0, NaN below."""
    return math.log(value) if value > 0 else (-math.inf if value == 0 else math.nan)


class BoolExponentGuard(Function):
    """The identity on the base of ``x ** bool_tensor``, whose backward refuses as PyTorch's does.

    The bool exponent is cast to the base's dtype before the power, so the power's own backward could
    not tell; PyTorch computes the forward and raises only when the base's gradient is asked for
    (its ``exponent - 1`` is a bool subtraction).
    """

    @staticmethod
    def forward(ctx, base):
        return base

    @staticmethod
    def backward(ctx, grad):
        raise DtypeError(
            "pow: the gradient of `base ** exponent` with respect to the base is not defined for a bool exponent "
            "tensor; convert the exponent first (exponent.to(base.dtype))"
        )


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.device.backend.xp.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * a.sign()


# -- public functions ------------------------------------------------------------------------------


def add(input, other, *, alpha=1) -> Tensor:
    """``input + alpha * other`` with broadcasting.

    ``alpha`` takes the result's dtype, as in PyTorch: a bool result uses ``bool(alpha)``, and an integer or
    bool result refuses a float ``alpha``.
    """
    (a, b), dtype = promote_operands("add", input, other, numbers_allowed=True)
    if alpha == 1 and alpha.__class__ is not bool:
        return apply_broadcasting(Add, "add", a, b)
    alpha = _check_alpha("add", dtype, alpha)
    if alpha is True:  # a bool result: a | (b & alpha)
        return apply_broadcasting(Add, "add", a, b)
    if alpha is False and not isinstance(b, Tensor):  # False * a Python bool would be the int 0
        return apply_broadcasting(Add, "add", a, False)
    return apply_broadcasting(ScaledAdd, "add", a, b, alpha)


def sub(input, other, *, alpha=1) -> Tensor:
    """``input - alpha * other`` with broadcasting; bool operands raise, as in PyTorch (use ``^`` or ``~``)."""
    _refuse_bool("sub", "Subtraction, the `-` operator,", input, other, "use the `^` or logical_xor() operator")
    (a, b), dtype = promote_operands("sub", input, other, numbers_allowed=True)
    if alpha == 1 and alpha.__class__ is not bool:
        return apply_broadcasting(Sub, "sub", a, b)
    return apply_broadcasting(ScaledSub, "sub", a, b, _check_alpha("sub", dtype, alpha))


def mul(input, other) -> Tensor:
    """Elementwise product with broadcasting."""
    (a, b), _ = promote_operands("mul", input, other, numbers_allowed=True)
    return apply_broadcasting(Mul, "mul", a, b)


def div(input, other, *, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give floats), or rounded with ``rounding_mode`` 'trunc' or 'floor'."""
    if rounding_mode is None:
        (a, b), _ = promote_operands("div", input, other, float_result=True, numbers_allowed=True)
        return apply_broadcasting(Div, "div", a, b)
    if rounding_mode not in ("trunc", "floor"):
        raise ArgumentValueError(
            f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}; pass one of those"
        )
    (a, b), dtype = promote_operands("div", input, other, numbers_allowed=True)
    _check_integer_divisor("floor_divide" if rounding_mode == "floor" else "div", a, b, dtype)
    return apply_broadcasting(RoundedDiv, "div", a, b, rounding_mode=rounding_mode)


def floor_divide(input, other) -> Tensor:
    """``input // other``: division rounded down."""
    return div(input, other, rounding_mode="floor")


def remainder(input, other) -> Tensor:
    """``input % other`` with the sign of ``other`` (Python's rule)."""
    (a, b), dtype = promote_operands("remainder", input, other)
    _check_integer_divisor("remainder", a, b, dtype)
    return apply_broadcasting(Remainder, "remainder", a, b)


def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    """``input ** exponent``; either side may be a Python number."""
    (base, power), dtype = promote_operands("pow", input, exponent)
    if not dtype.is_floating_point and isinstance(power, int) and power < 0:
        raise DtypeError(
            f"pow: integers to negative integer powers are not allowed ({dtype.name} ** {power}); "
            "convert the base with .float() first"
        )
    if isinstance(exponent, Tensor) and exponent._dtype.name == "bool" and dtype.name != "bool":
        base = BoolExponentGuard.apply(base) if isinstance(base, Tensor) and base.requires_grad else base
    return apply_broadcasting(Pow, "pow", base, power)


def neg(input: Tensor) -> Tensor:
    """``-input``; a bool tensor raises, as in PyTorch (use ``~`` or logical_not())."""
    _refuse_bool("neg", "Negation, the `-` operator,", input, None, "use the `~` or logical_not() operator")
    return Neg.apply(input)


def abs(input: Tensor) -> Tensor:  # noqa: A001 - PyTorch's name
    """Elementwise absolute value (not defined for bool tensors, as in PyTorch)."""
    _refuse_bool("abs", "abs()", input, None, "a bool is its own absolute value; convert with .long() for numbers")
    return Abs.apply(input)


def _refuse_bool(op: str, what: str, input, other, fix: str) -> None:
    """PyTorch refuses -, neg and abs of bool tensors, where NumPy would raise its own TypeError."""
    for value in (input, other):
        if (isinstance(value, Tensor) and value._dtype.name == "bool") or isinstance(value, (bool, np.bool_)):
            raise DtypeError(f"{op}: {what} on a bool tensor is not supported; {fix}")


def _check_alpha(op: str, dtype, alpha):
    """PyTorch's rule for ``alpha`` in add/sub: it must fit the result's dtype; a bool result takes bool(alpha)."""
    if isinstance(alpha, complex):  # gradflow has no complex dtypes
        raise ArgumentTypeError(f"{op}: alpha must not be a complex number (got {alpha!r}); pass a real alpha")
    if isinstance(alpha, (bool, np.bool_)) and dtype.name != "bool":
        raise ArgumentTypeError(
            f"{op}: a bool alpha is only supported for bool results, got alpha={alpha!r} with {dtype.name} operands; "
            "pass a number"
        )
    if not dtype.is_floating_point and not isinstance(alpha, (int, np.integer)):
        raise ArgumentTypeError(
            f"{op}: for integer or bool operands ({dtype.name}) alpha must not be a floating point number "
            f"(got {alpha!r}); pass an integer alpha or convert the operands with .float()"
        )
    return bool(alpha) if dtype.name == "bool" else alpha


def _check_integer_divisor(op: str, a, b, dtype) -> None:
    """Integer // 0 and % 0 have no integer result: PyTorch raises (NumPy would give 0 and warn)."""
    if dtype.is_floating_point:
        return
    if dtype.name == "bool":
        raise DtypeError(f"{op}: not implemented for bool tensors; convert them first with .long()")
    if isinstance(a, Tensor) and a._data.size == 0:
        return
    zero = bool((b._data == 0).any()) if isinstance(b, Tensor) else b == 0
    if zero:
        raise IntegerDivisionByZeroError(
            f"{op}: integer division by zero ({dtype.name} divisor holds 0); divide as floats (x.float()) to get "
            "inf/NaN, or mask the zeros first"
        )


def rsub(input, other, *, alpha=1) -> Tensor:
    """``other - alpha * input``."""
    return sub(other, input, alpha=alpha)


def true_divide(input, other) -> Tensor:
    return div(input, other)


negative = neg
multiply = mul
subtract = sub
divide = div
absolute = abs


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = (
    "add",
    "sub",
    "mul",
    "div",
    "floor_divide",
    "remainder",
    "pow",
    "neg",
    "abs",
    "negative",
    "multiply",
    "subtract",
    "divide",
    "absolute",
    "true_divide",
)

__all__ = [*TENSOR_METHODS, "rsub"]
