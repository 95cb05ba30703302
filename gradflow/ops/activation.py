"""Activations: sigmoid, tanh, relu, leaky_relu, elu, gelu (exact and tanh), silu, mish, softplus.

sigmoid, tanh, relu, gelu, silu and mish run forward through the backend's fused activation
primitive (``activation_forward``: NumPy on the CPU, kernels/elementwise.cu on CUDA).
relu, gelu, silu and mish take their backward from ``activation_backward`` through
``ActivationBackward``, a differentiable Function (Chainer's ``ReLUGrad2`` pattern): its
forward is the fused primitive and its backward is written once below in gradflow ops, so
first- and higher-order gradients go through the same formulas. sigmoid and tanh keep
torch's choice of saving the output and reading the derivative from it (one saved array
either way, and the input may then be changed in place): their backward is one composite
formula on the output, which differentiates again as it is.
"""

from __future__ import annotations

import math

from .. import dtypes
from ..autograd.function import Function
from ..dtypes import get_default_dtype
from ..errors import ArgumentValueError, DtypeError
from ..tensor import Tensor
from ._checks import require_float
from .compare import where

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_CUBIC = 0.044715


def _second_derivative(x: Tensor, activation: str) -> Tensor:
    """act''(x) in gradflow ops (recorded under create_graph, so third derivatives work too).

    gelu: act' = Phi + x phi, so act'' = phi (2 - x^2). silu: act' = s (1 + x (1 - s)), so
    act'' = s (1 - s) (2 + x (1 - 2 s)). gelu_tanh: act = x s with s = sigmoid(2u),
    u = c (x + k x^3); with q = s (1 - s), act' = s + 2 x q u' and
    act'' = 2 q (2 u' + x (2 (1 - 2 s) u'^2 + u'')). mish: act = x t with t = tanh(softplus(x)),
    s = sigmoid(x) = softplus', u = 1 - t^2 = t' / s; act' = t + x s u, so
    act'' = s u (2 + x (1 - s - 2 t s)). softplus (threshold 20, exact there in float64) keeps
    t free of exp overflow: act'' is 0, not NaN, far out (torch's, through exp(x), is NaN past
    x = 709 in float64, 88 in float32).
    """
    if activation == "gelu":
        return _INV_SQRT_2PI * (-0.5 * x * x).exp() * (2 - x * x)
    if activation == "silu":
        s = x.sigmoid()
        return s * (1 - s) * (2 + x * (1 - 2 * s))
    if activation == "mish":
        s = x.sigmoid()
        t = tanh(softplus(x))
        return s * (1 - t * t) * (2 + x * (1 - s - 2 * t * s))
    # gelu_tanh
    s = (2 * _SQRT_2_OVER_PI * (x + _GELU_TANH_CUBIC * x * x * x)).sigmoid()
    du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_CUBIC * x * x)
    d2u = (6 * _SQRT_2_OVER_PI * _GELU_TANH_CUBIC) * x
    return 2 * s * (1 - s) * (2 * du + x * (2 * (1 - 2 * s) * du * du + d2u))


class ActivationBackward(Function):
    """``grad * act'(x)`` by the backend's fused ``activation_backward``: the backward of relu, gelu, silu, mish.

    It is linear in ``grad``, so its derivative along ``grad`` is this same Function applied to the
    incoming gradient; along ``x`` it is ``grad * act''(x)`` (``_second_derivative``). For relu, ``x``
    is relu's output (positive exactly where the input is) and act'' is 0.
    """

    @staticmethod
    def forward(ctx, grad, x, activation):
        ctx.activation = activation
        ctx.save_for_backward(grad, x)
        return ctx.device.backend.activation_backward(grad, x, activation)

    @staticmethod
    def backward(ctx, grad_grad_x):
        grad, x = ctx.saved_tensors
        activation = ctx.activation
        grad_grad = ActivationBackward.apply(grad_grad_x, x, activation) if ctx.needs_input_grad[0] else None
        grad_x = None
        if ctx.needs_input_grad[1] and activation != "relu":
            grad_x = grad_grad_x * grad * _second_derivative(x, activation)
        return grad_grad, grad_x, None


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.device.backend.activation_forward(x, "sigmoid")
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
        out = ctx.device.backend.activation_forward(x, "tanh")
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
            out = ctx.device.backend.activation_forward(x, "relu")
        else:  # integer relu (no gradient) stays a plain maximum
            out = ctx.device.backend.xp.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # relu(z) > 0 exactly where z > 0, so the saved output stands in for the input. The kernel selects
        # (PyTorch's threshold_backward): a NaN input passes its gradient, and an inf gradient beside a
        # negative input gives 0, not inf * 0 = NaN.
        return ActivationBackward.apply(grad, out, "relu")


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
        # holds exp(large x) = inf (0 * inf = NaN). A NaN input takes the exp branch (clamp keeps NaN), so its
        # gradient is NaN, as PyTorch's vectorized kernel gives (docs/differences.md, elu-nan-grad).
        return grad * where(x > 0, 1.0, ctx.alpha * x.clamp(max=0).exp())


class Gelu(Function):
    """GELU by the fused primitive, exact (erf) or with torch's tanh approximation."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.activation = "gelu_tanh" if approximate == "tanh" else "gelu"
        return ctx.device.backend.activation_forward(x, ctx.activation)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ActivationBackward.apply(grad, x, ctx.activation)


class Silu(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.device.backend.activation_forward(x, "silu")

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ActivationBackward.apply(grad, x, "silu")


class Mish(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.device.backend.activation_forward(x, "mish")

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ActivationBackward.apply(grad, x, "mish")


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
    """max(x, 0); integer tensors keep their dtype, bool tensors raise (as in PyTorch)."""
    if getattr(input, "_dtype", None) is dtypes.bool:  # a non-tensor goes on to Relu.apply's typed error
        raise DtypeError(
            "relu: bool inputs are not supported (a bool tensor is already its own relu); convert with .long() or "
            ".float() first"
        )
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
        raise ArgumentValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    require_float("gelu", input)
    return Gelu.apply(input, approximate)


def silu(input: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    require_float("silu", input)
    return Silu.apply(input)


def mish(input: Tensor) -> Tensor:
    """x * tanh(softplus(x)), as ``torch.nn.functional.mish``.

    Example:
        >>> import gradflow as gf
        >>> [round(v, 4) for v in gf.nn.functional.mish(gf.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.3034, 0.0, 1.944]
    """
    require_float("mish", input)
    return Mish.apply(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold."""
    require_float("softplus", input)
    return Softplus.apply(input, beta, threshold)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("sigmoid", "relu")

__all__ = [*TENSOR_METHODS, "leaky_relu", "elu", "gelu", "silu", "mish", "softplus"]
