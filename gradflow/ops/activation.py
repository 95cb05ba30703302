"""Activations: sigmoid, tanh, relu, leaky_relu, elu, gelu (exact and tanh), silu, softplus.

sigmoid, tanh, relu, gelu and silu run forward through the backend's fused bias +
activation primitive (``bias_act_forward``: NumPy on the CPU, kernels/elementwise.cu on
CUDA). gelu, silu and relu take their first-order backward from ``bias_act_backward``
too; under ``create_graph=True`` they use the composite formulas below, which record
and differentiate again. sigmoid and tanh keep torch's choice of saving the output and
reading the derivative from it (one saved array either way, and the input may then be
changed in place), so their backward stays the composite formula on the output.
"""

from __future__ import annotations

import math

from ..autograd.function import Function
from ..autograd.grad_mode import _state as _grad_state
from ..dtypes import get_default_dtype
from ..tensor import Tensor
from ._checks import require_float
from .compare import where


def _fused_input_grad(ctx, grad: Tensor, saved: Tensor, activation: str) -> Tensor:
    """grad * act'(saved) by the backend's fused primitive: the first-order backward path.

    Only used with grad mode off (backward without ``create_graph``), where nothing is
    recorded, so one kernel on the arrays replaces the composite formula's several ops.
    """
    grad_input, _ = ctx.device.backend.bias_act_backward(grad._data, saved._data, None, activation, False)
    return Tensor._wrap(grad_input, ctx.device)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.device.backend.bias_act_forward(x, None, "sigmoid")
        # The derivative is read from the output (as torch does), so x may change in place.
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.device.backend.bias_act_forward(x, None, "tanh")
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind == "f":
            out = ctx.device.backend.bias_act_forward(x, None, "relu")
        else:  # integer relu (no gradient) stays a plain maximum
            out = ctx.device.backend.xp.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        if not _grad_state.enabled:
            # relu(z) > 0 exactly where z > 0, so the saved output stands in for the input.
            return _fused_input_grad(ctx, grad, out, "relu")
        # Zero only where out <= 0 (PyTorch's threshold_backward): a NaN input passes its gradient, as
        # in the fused path, and an inf gradient beside a negative input gives 0, not inf * 0 = NaN.
        return where(out <= 0, 0.0, grad)


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return ctx.device.backend.xp.where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * where(x > 0, 1.0, ctx.negative_slope).to(grad.dtype)


class Elu(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        xp = ctx.device.backend.xp
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # alpha * exp(x) rather than out + alpha, which cancels to 0 (float32: from x < -17) long before
        # exp(x) underflows. x is clamped to <= 0 so that, under create_graph, the masked-out branch never
        # holds exp(large x) = inf (0 * inf = NaN). As PyTorch, only x <= 0 takes it: a NaN input gets 1.
        return grad * where(x <= 0, ctx.alpha * x.clamp(max=0).exp(), 1.0)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    """GELU by the fused primitive; its derivative also written with gradflow ops so it differentiates again."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.activation = "gelu_tanh" if approximate == "tanh" else "gelu"
        return ctx.device.backend.bias_act_forward(x, None, ctx.activation)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if not _grad_state.enabled:
            return _fused_input_grad(ctx, grad, x, ctx.activation)
        if ctx.activation == "gelu_tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
            t = inner.tanh()
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
        cdf = 0.5 * (1 + (x * _INV_SQRT_2).erf())
        pdf = _INV_SQRT_2PI * (-0.5 * x * x).exp()
        return grad * (cdf + x * pdf)


class Silu(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.device.backend.bias_act_forward(x, None, "silu")

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if not _grad_state.enabled:
            return _fused_input_grad(ctx, grad, x, "silu")
        s = x.sigmoid()
        return grad * (s * (1 + x * (1 - s)))


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
        scaled = x * ctx.beta
        return grad * where(scaled > ctx.threshold, 1.0, scaled.sigmoid())


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), stable for large |x|; integer inputs give the default float dtype."""
    if not input._dtype.is_floating_point:
        input = input.to(get_default_dtype())
    return Sigmoid.apply(input)


# gradflow.tanh and Tensor.tanh are bound from ops/elementwise.py, which takes this
# function (`from .activation import tanh`), so tanh has one definition.
def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent; integer inputs give the default float dtype."""
    if not input._dtype.is_floating_point:
        input = input.to(get_default_dtype())
    return Tanh.apply(input)


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
    return Silu.apply(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold."""
    require_float("softplus", input)
    return Softplus.apply(input, beta, threshold)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("sigmoid", "relu")

__all__ = [*TENSOR_METHODS, "leaky_relu", "elu", "gelu", "silu", "softplus"]
