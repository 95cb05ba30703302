"""Unary math: exp, log, trigonometric, roots, rounding, sign.

Each op is its forward on arrays and its derivative written with gradflow
ops, so second derivatives come from the same lines. Integer inputs are
promoted to the default float dtype, as in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..autograd.function import Function
from ..dtypes import get_default_dtype
from ..errors import not_a_tensor
from ..tensor import Tensor
from .activation import tanh  # noqa: F401 - re-exported: one tanh, on the fused activation primitive
from .arithmetic import quiet


def _unary(
    name: str, forward, derivative=None, float_only: bool = True, doc: str = "", uses: str = "input", bools_to=None
):
    """Build a unary op from ``forward(xp, x)`` and ``derivative(x, out)`` (None: gradient zero).

    ``bools_to`` (with ``float_only=False``) is the dtype bool inputs are cast to first (square(bool) is
    int64 in PyTorch).

    ``uses`` says which of x and out the derivative reads ("input" or "output"); only
    that one is saved, so an in-place change of the other does not invalidate backward.
    """

    class UnaryOp(Function):
        @staticmethod
        @quiet  # log(0) = -inf, sqrt(-1) = NaN, exp(1e3) = inf: PyTorch's values, without NumPy's warnings
        def forward(ctx, x):
            out = forward(ctx.device.backend.xp, x)
            if derivative is not None:
                ctx.save_for_backward(out if uses == "output" else x)
            return out

        @staticmethod
        def backward(ctx, grad):
            if derivative is None:
                return grad * 0
            (saved,) = ctx.saved_tensors
            return grad * (derivative(None, saved) if uses == "output" else derivative(saved, None))

    UnaryOp.__name__ = UnaryOp.__qualname__ = name.capitalize()

    def op(input: Tensor) -> Tensor:
        try:  # costs nothing until a number comes in instead of a Tensor
            if float_only and not input._dtype.is_floating_point:
                input = input.to(get_default_dtype())
            elif bools_to is not None and input._dtype is dtypes.bool:
                input = input.to(bools_to)
        except AttributeError:
            raise not_a_tensor(name, input) from None
        return UnaryOp.apply(input)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc or f"Elementwise {name}."
    op.function = UnaryOp
    return op


_LN2 = math.log(2.0)
_LN10 = math.log(10.0)

exp = _unary("exp", lambda xp, x: xp.exp(x), lambda x, out: out, uses="output")
exp2 = _unary("exp2", lambda xp, x: xp.exp2(x), lambda x, out: out * _LN2, uses="output")
log = _unary("log", lambda xp, x: xp.log(x), lambda x, out: 1 / x, doc="Natural logarithm.")
log2 = _unary("log2", lambda xp, x: xp.log2(x), lambda x, out: 1 / (x * _LN2))
log10 = _unary("log10", lambda xp, x: xp.log10(x), lambda x, out: 1 / (x * _LN10))
log1p = _unary("log1p", lambda xp, x: xp.log1p(x), lambda x, out: 1 / (x + 1), doc="log(1 + x), exact for small x.")
expm1 = _unary(
    "expm1", lambda xp, x: xp.expm1(x), lambda x, out: out + 1, doc="exp(x) - 1, exact for small x.", uses="output"
)
sqrt = _unary("sqrt", lambda xp, x: xp.sqrt(x), lambda x, out: 0.5 / out, uses="output")
rsqrt = _unary(
    "rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda x, out: -0.5 * out * out * out, doc="1 / sqrt(x).", uses="output"
)
square = _unary("square", lambda xp, x: x * x, lambda x, out: 2 * x, float_only=False, bools_to=dtypes.int64)
reciprocal = _unary("reciprocal", lambda xp, x: 1 / x, lambda x, out: -out * out, uses="output")
sin = _unary("sin", lambda xp, x: xp.sin(x), lambda x, out: x.cos())
cos = _unary("cos", lambda xp, x: xp.cos(x), lambda x, out: -x.sin())
tan = _unary("tan", lambda xp, x: xp.tan(x), lambda x, out: 1 + out * out, uses="output")
asin = _unary("asin", lambda xp, x: xp.arcsin(x), lambda x, out: (1 - x * x).rsqrt())
acos = _unary("acos", lambda xp, x: xp.arccos(x), lambda x, out: -(1 - x * x).rsqrt())
atan = _unary("atan", lambda xp, x: xp.arctan(x), lambda x, out: 1 / (1 + x * x))
sinh = _unary("sinh", lambda xp, x: xp.sinh(x), lambda x, out: x.cosh())
cosh = _unary("cosh", lambda xp, x: xp.cosh(x), lambda x, out: x.sinh())
sign = _unary(
    "sign",
    lambda xp, x: xp.sign(x) if x.dtype.kind != "b" else x.copy(),
    None,
    float_only=False,
    doc="-1, 0 or 1 by the sign of each element.",
)
floor = _unary("floor", lambda xp, x: xp.floor(x), None, float_only=False)
ceil = _unary("ceil", lambda xp, x: xp.ceil(x), None, float_only=False)
trunc = _unary("trunc", lambda xp, x: xp.trunc(x), None, float_only=False)
frac = _unary("frac", lambda xp, x: x - xp.trunc(x), lambda x, out: 1.0)  # 1 even at +-inf and NaN, as in PyTorch


class Erf(Function):
    @staticmethod
    @quiet
    def forward(ctx, x):
        ctx.save_for_backward(x)
        # NumPy has no erf: each backend takes it from its SciPy (scipy or cupyx.scipy).
        return ctx.device.backend.erf(x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2 / math.sqrt(math.pi)) * (-(x * x)).exp()


def erf(input: Tensor) -> Tensor:
    """The Gauss error function."""
    if not input._dtype.is_floating_point:
        input = input.to(get_default_dtype())
    return Erf.apply(input)


class Round(Function):
    @staticmethod
    def forward(ctx, x, decimals):
        xp = ctx.device.backend.xp
        if decimals == 0 or x.dtype.kind != "f":
            return xp.round(x, decimals)
        # PyTorch scales by 10^|decimals| (computed in float64, then cast) in the op's math type: float32 for
        # float16, where x * 10 would overflow past 6553.5 and the halves would round differently.
        work = x.astype(xp.float32) if x.dtype == xp.float16 else x
        with np.errstate(over="ignore"):  # 10^|decimals| past the dtype's range is inf, as in PyTorch (any device)
            scale = work.dtype.type(np.float64(10.0) ** abs(decimals))
        rounded = xp.rint(work * scale) / scale if decimals > 0 else xp.rint(work / scale) * scale
        return rounded.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001 - PyTorch's name
    """Round half to even, to ``decimals`` decimal places (gradient zero)."""
    return Round.apply(input, decimals)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = (
    "exp",
    "exp2",
    "log",
    "log2",
    "log10",
    "log1p",
    "expm1",
    "sqrt",
    "rsqrt",
    "square",
    "reciprocal",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "sign",
    "floor",
    "ceil",
    "trunc",
    "frac",
    "erf",
    "round",
)

__all__ = [*TENSOR_METHODS]
