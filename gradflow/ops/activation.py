"""Activations: sigmoid, relu, leaky_relu, elu, gelu (exact and tanh), silu, softplus."""

from __future__ import annotations

import math

from ..autograd.function import Function
from ..dtypes import get_default_dtype
from ..tensor import Tensor
from ._checks import require_float


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx.device.backend.xp
        # exp(-|x|) never overflows: the two branches are the same function.
        z = xp.exp(-xp.abs(x))
        out = xp.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx.device.backend.xp
        out = xp.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out > 0)


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return ctx.device.backend.xp.where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        from .compare import where

        return grad * where(x > 0, 1.0, ctx.negative_slope).to(grad.dtype)


class Elu(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        xp = ctx.device.backend.xp
        out = xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))
        ctx.save_for_backward(x, out)
        ctx.alpha = alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        from .compare import where

        return grad * where(x > 0, 1.0, out + ctx.alpha)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_exact(x: Tensor) -> Tensor:
    return 0.5 * x * (1 + (x * _INV_SQRT_2).erf())


def _gelu_tanh(x: Tensor) -> Tensor:
    return 0.5 * x * (1 + (_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())


class Gelu(Function):
    """GELU forward on arrays; its derivative written with gradflow ops so it differentiates again."""

    @staticmethod
    def forward(ctx, x, approximate):
        xp = ctx.device.backend.xp
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            return (0.5 * x * (1 + xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))).astype(x.dtype, copy=False)
        return (0.5 * x * (1 + ctx.device.backend.erf(x * _INV_SQRT_2))).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
            t = inner.tanh()
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
        cdf = 0.5 * (1 + (x * _INV_SQRT_2).erf())
        pdf = _INV_SQRT_2PI * (-0.5 * x * x).exp()
        return grad * (cdf + x * pdf)


class Softplus(Function):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = ctx.device.backend.xp
        scaled = x * beta
        # log1p(exp(z)) = max(z, 0) + log1p(exp(-|z|)) never overflows.
        smooth = (xp.maximum(scaled, 0) + xp.log1p(xp.exp(-xp.abs(scaled)))) / beta
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        return xp.where(scaled > threshold, x, smooth).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        from .compare import where

        scaled = x * ctx.beta
        return grad * where(scaled > ctx.threshold, 1.0, scaled.sigmoid())


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), stable for large |x|; integer inputs give the default float dtype."""
    if not input._dtype.is_floating_point:
        input = input.to(get_default_dtype())
    return Sigmoid.apply(input)


def relu(input: Tensor) -> Tensor:
    """max(x, 0)."""
    return Relu.apply(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    require_float("leaky_relu", input)
    return LeakyRelu.apply(input, negative_slope)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    require_float("elu", input)
    return Elu.apply(input, alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); ``approximate='tanh'`` uses the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    require_float("gelu", input)
    return Gelu.apply(input, approximate)


def silu(input: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    require_float("silu", input)
    return input * sigmoid(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold."""
    require_float("softplus", input)
    return Softplus.apply(input, beta, threshold)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("sigmoid", "relu")

__all__ = [*TENSOR_METHODS, "leaky_relu", "elu", "gelu", "silu", "softplus"]
