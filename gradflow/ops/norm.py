"""Normalisation: layer_norm, group_norm and batch_norm, with one formula per derivative.

Layer norm views its input as ``(rows, D)`` and runs on the backend's fused primitives
``layer_norm_forward``/``layer_norm_backward`` (NumPy on the CPU, ``kernels/norm.cu`` on
the GPU). Group norm is the same op over ``(N * groups, group size)`` rows, followed by
its per-channel affine. Training-mode batch norm, which normalises over every axis but
the channels, is ``BatchNorm``: the same closed forms written against ``xp``. Eval-mode
batch norm is an affine map built from plain ops.

Derivatives follow Chainer's ``ReLUGrad2`` pattern: ``LayerNorm.backward`` and
``BatchNorm.backward`` call ``LayerNormBackward`` / ``BatchNormBackward``, Functions whose forward
computes the first-order gradients on arrays (the fused primitive, or its ``xp`` closed
form) and whose backward, ``_second_order``, is the one statement of the derivatives of
those gradients. A plain backward runs with grad mode off, so the inner Function records
nothing; under ``create_graph=True`` it is recorded, second derivatives go through
``_second_order`` and higher ones through the gradflow ops it is written in.

The formulas and ``_second_order`` live in ``norm_second_order.py``. Squared deviations that
would overflow (|x - mean| past ~1.8e19 in float32) are scaled down first; an empty batch leaves
batch norm's running statistics as they were, as in PyTorch.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd.function import Function
from ..backends.fused.norm import reciprocal_std
from ..errors import ArgumentTypeError, ArgumentValueError, ShapeError, shape_str
from ..tensor import Tensor
from ._checks import require_float
from .norm_second_order import _NormalizationBackward, _per_input


class LayerNormBackward(_NormalizationBackward):
    """``(grad_x[, grad_weight][, grad_bias])`` of layer norm over 2-D ``x``: the fused backward primitive."""

    @staticmethod
    def forward(ctx, grad, x, weight, mean, rstd, eps, need_weight, need_bias):
        grads = ctx.device.backend.layer_norm_backward(grad, x, mean, rstd, weight, need_weight, need_bias)
        ctx.axes, ctx.eps, ctx.need_weight, ctx.need_bias = (1,), eps, need_weight, need_bias
        ctx.materialize_grads = False  # an unused gradient's cotangent stays None: no zeros to push through
        ctx.save_for_backward(grad, x, weight)
        return tuple(array for array in grads if array is not None)


class LayerNorm(Function):
    """Layer norm over the last axis of 2-D ``x`` with ``(D,)`` weight/bias (or None): the fused primitives."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        out, mean, rstd = ctx.device.backend.layer_norm_forward(x, weight, bias, eps)
        ctx.eps = eps
        ctx.save_for_backward(x, weight, mean, rstd)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_tensors
        needs_weight, needs_bias = ctx.needs_input_grad[1:3]
        return _per_input(ctx, LayerNormBackward.apply(grad, x, weight, mean, rstd, ctx.eps, needs_weight, needs_bias))


def _accumulation_array(xp, x):
    """Half-precision inputs accumulate their statistics in float32, as PyTorch does."""
    return x.astype(xp.float32) if x.dtype.itemsize < 4 else x


class BatchNormBackward(_NormalizationBackward):
    """``(grad_x[, grad_weight][, grad_bias])`` of training-mode batch norm: the closed form on arrays.

    The parameter gradients come back at the parameters' ``(C, 1, ...)`` shape, in the
    accumulation dtype (the engine casts them to the parameters' dtype).
    """

    @staticmethod
    def forward(ctx, grad, x, weight, mean, rstd, eps, need_weight, need_bias):
        axes = (0, *range(2, x.ndim))
        ctx.axes, ctx.eps, ctx.need_weight, ctx.need_bias = axes, eps, need_weight, need_bias
        ctx.materialize_grads = False
        ctx.save_for_backward(grad, x, weight)
        xp = ctx.device.backend.xp
        if x.size == 0:  # an empty batch: no input gradient, zero parameter gradients
            zeros = xp.zeros_like(mean[0])
            return (xp.zeros(x.shape, x.dtype),) + (zeros,) * need_weight + (zeros,) * need_bias
        grad_values = _accumulation_array(xp, grad)
        xhat = (_accumulation_array(xp, x) - mean) * rstd
        gw = grad_values if weight is None else grad_values * weight
        mean_gw = gw.mean(axis=axes, keepdims=True)
        mean_projection = (gw * xhat).mean(axis=axes, keepdims=True)
        grads = [(rstd * (gw - mean_gw - xhat * mean_projection)).astype(x.dtype, copy=False)]
        if need_weight:
            grads.append((grad_values * xhat).sum(axis=axes, keepdims=True)[0])
        if need_bias:
            grads.append(grad_values.sum(axis=axes, keepdims=True)[0])
        return tuple(grads)


class BatchNorm(Function):
    """Training-mode batch norm of ``(N, C, *)`` x, weight/bias at ``(C, 1, ...)`` (or None).

    The statistics are taken over every axis but the channels. With ``running_mean`` /
    ``running_var`` (arrays or None) the batch mean and unbiased batch variance also update
    them in place, as PyTorch's batch norm does.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, running_mean=None, running_var=None, momentum=0.0):
        xp = ctx.device.backend.xp
        axes = (0, *range(2, x.ndim))
        values = _accumulation_array(xp, x)
        if values.size == 0:  # an empty batch: empty output, running statistics unchanged (PyTorch)
            mean = xp.zeros((1, x.shape[1]) + (1,) * (x.ndim - 2), values.dtype)
            ctx.eps = eps
            ctx.save_for_backward(x, weight, mean, mean + 1)
            return xp.empty(x.shape, x.dtype)
        mean = values.mean(axis=axes, keepdims=True)
        centred = values - mean
        with np.errstate(over="ignore"):  # a variance past the dtype's range is inf (PyTorch's too)
            var = (centred * centred).mean(axis=axes, keepdims=True)
        rstd = reciprocal_std(xp, centred, axes, eps)  # the variance may overflow; rstd need not
        out = centred * rstd
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        # The running statistics never take part in autograd: they are updated in place.
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += (momentum * mean.reshape(-1)).astype(running_mean.dtype, copy=False)
        if running_var is not None:
            count = x.size // var.size
            unbiased = var.reshape(-1) * (count / (count - 1))
            running_var *= 1 - momentum
            running_var += (momentum * unbiased).astype(running_var.dtype, copy=False)
        ctx.eps = eps
        ctx.save_for_backward(x, weight, mean, rstd)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_tensors
        needs_weight, needs_bias = ctx.needs_input_grad[1:3]
        return _per_input(ctx, BatchNormBackward.apply(grad, x, weight, mean, rstd, ctx.eps, needs_weight, needs_bias))


def _affine(out: Tensor, weight, bias, channel_shape: tuple) -> Tensor:
    """``out * weight + bias`` with per-channel parameters broadcast along dim 1."""
    if weight is not None:
        out = out * weight.reshape(channel_shape)
    if bias is not None:
        out = out + bias.reshape(channel_shape)
    return out


def _check_vector(op: str, name: str, value, channels: int, input: Tensor) -> None:
    if value is None:
        return
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{op}: {name} must be a Tensor or None, got {type(value).__name__}")
    if value.numel() != channels:
        raise ShapeError(
            f"{op}: {name} should contain {channels} elements not {value.numel()} (one per channel of the input of "
            f"shape {shape_str(input.shape)}, channels on dim 1); pass a tensor of shape [{channels}]"
        )


def _verify_batch_size(op: str, size: tuple) -> None:
    values = size[0]
    for extent in size[2:]:
        values *= extent
    if values == 1:
        raise ShapeError(
            f"{op}: Expected more than 1 value per channel when training, got input size {shape_str(size)}; "
            "use a batch of more than one sample (or eval mode with running statistics)"
        )


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over ``(N, C, *)`` input, per channel ``C``.

    In training mode the batch statistics normalise the input and, when given,
    ``running_mean``/``running_var`` are updated in place:
    ``running = (1 - momentum) * running + momentum * batch_stat`` (the variance
    unbiased). In eval mode the running statistics normalise the input.

    >>> import gradflow as gf
    >>> x = gf.randn(8, 3)
    >>> mean, var = gf.zeros(3), gf.ones(3)
    >>> y = gf.nn.functional.batch_norm(x, mean, var, training=True)
    """
    require_float("batch_norm", input)
    if input.ndim < 2:
        raise ShapeError(
            f"batch_norm: expected input of shape (N, C, *) with at least 2 dimensions, got {shape_str(input.shape)}; "
            "add a batch dimension with unsqueeze(0)"
        )
    if not isinstance(momentum, numbers.Real):
        raise ArgumentTypeError(f"batch_norm: momentum must be a float, got {type(momentum).__name__}")
    channels = input.shape[1]
    vectors = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    for name, value in vectors.items():
        _check_vector("batch_norm", name, value, channels, input)
    if training:
        _verify_batch_size("batch_norm", input.shape)
        if eps <= 0.0:
            raise ArgumentValueError(f"batch_norm eps must be positive during training, but got {eps}")
        channel_shape = (-1,) + (1,) * (input.ndim - 2)
        result = BatchNorm.apply(
            input,
            None if weight is None else weight.reshape(channel_shape),
            None if bias is None else bias.reshape(channel_shape),
            float(eps),
            running_mean,
            running_var,
            float(momentum),
        )
        for buffer in (running_mean, running_var):
            if buffer is not None:
                buffer._bump_version()
        return result
    if eps < 0.0:
        raise ArgumentValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if running_mean is None or running_var is None:
        missing = "running_mean" if running_mean is None else "running_var"
        raise ArgumentValueError(
            f"batch_norm: {missing} must be defined in evaluation mode; pass the running statistics or training=True"
        )
    # Eval mode is an affine map per channel: plain ops give its gradients.
    channel_shape = (-1,) + (1,) * (input.ndim - 2)
    scale = (running_var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    out = _affine(input - running_mean.reshape(channel_shape), scale, bias, channel_shape)
    return out if out.dtype is input.dtype else out.to(input.dtype)


def _shape_tuple(op: str, normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    try:
        return tuple(int(size) for size in normalized_shape)
    except TypeError:
        raise ArgumentTypeError(
            f"{op}: normalized_shape must be an int or a sequence of ints, got {type(normalized_shape).__name__}"
        ) from None


def layer_norm(
    input: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale by ``weight`` and shift by ``bias``.

    >>> import gradflow as gf
    >>> y = gf.nn.functional.layer_norm(gf.randn(2, 5), (5,))
    """
    require_float("layer_norm", input)
    shape = _shape_tuple("layer_norm", normalized_shape)
    if not shape or input.shape[input.ndim - len(shape) :] != shape or len(shape) > input.ndim:
        raise ShapeError(
            f"layer_norm: Given normalized_shape={list(shape)}, expected input with shape [*, "
            f"{', '.join(str(s) for s in shape)}], but got input of size {shape_str(input.shape)}; "
            "normalized_shape names the trailing dimensions of the input"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != shape:
            raise ShapeError(
                f"layer_norm: Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                f"{shape_str(value.shape)} and normalized_shape = {list(shape)}"
            )
    features = math.prod(shape)
    rows = math.prod(input.shape[: input.ndim - len(shape)])
    out = LayerNorm.apply(
        input.reshape(rows, features),
        None if weight is None else weight.reshape(features),
        None if bias is None else bias.reshape(features),
        float(eps),
    )
    return out.reshape(input.shape)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Split the channels of ``(N, C, *)`` input into ``num_groups`` groups and normalise each group per sample.

    ``weight`` and ``bias`` have one entry per channel.
    """
    require_float("group_norm", input)
    if input.ndim < 2:
        raise ShapeError(
            f"group_norm: Expected at least 2 dimensions for input tensor but received {input.ndim} "
            f"(shape {shape_str(input.shape)}); pass (N, C, *) input"
        )
    batch, channels = input.shape[:2]
    if num_groups <= 0 or channels % num_groups:
        raise ShapeError(
            f"group_norm: Expected number of channels in input to be divisible by num_groups, but got input of shape "
            f"{shape_str(input.shape)} and num_groups={num_groups}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != (channels,):
            raise ShapeError(
                f"group_norm: Expected {name} to be a vector of size equal to the number of channels in input, but "
                f"got {name} of shape {shape_str(value.shape)} and input of shape {shape_str(input.shape)}"
            )
    _verify_batch_size("group_norm", (batch * channels // num_groups, num_groups, *input.shape[2:]))
    group_size = input.numel() // max(batch * num_groups, 1)
    # Each (sample, group) is a row of layer norm without affine: the fused primitives.
    rows = input.reshape(batch * num_groups, group_size)
    out = LayerNorm.apply(rows, None, None, float(eps)).reshape(input.shape)
    return _affine(out, weight, bias, (-1,) + (1,) * (input.ndim - 2))


__all__ = ["batch_norm", "layer_norm", "group_norm"]
