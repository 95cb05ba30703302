"""Normalisation: batch_norm, layer_norm and group_norm.

Group norm and training-mode batch norm are one Function, ``Normalize``, with the
classic closed-form backward: one pass over the normalised input ``xhat`` and the
inverse standard deviation ``rstd``. Forward saves the input, its mean and ``rstd``
(two small arrays) and rebuilds ``xhat`` in backward. Under ``create_graph=True``
the backward recomputes mean and ``rstd`` with differentiable gradflow ops instead,
so second derivatives are exact. Group norm reshapes into groups, normalises each,
then applies its per-channel affine; eval-mode batch norm is an affine map built
from plain ops.

Layer norm views its input as ``(rows, D)`` and calls the backend's fused
primitives (``layer_norm_forward``/``layer_norm_backward``: NumPy on the CPU,
``kernels/norm.cu`` on the GPU); under ``create_graph=True`` its backward is the
same differentiable closed form.
"""

from __future__ import annotations

import math
import numbers

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..errors import ShapeError, shape_str
from ..tensor import Tensor
from ._checks import require_float


def _accumulation_array(xp, x):
    """Half-precision inputs accumulate their statistics in float32, as PyTorch does."""
    return x.astype(xp.float32) if x.dtype.itemsize < 4 else x


def _moments(xp, x, axes, eps):
    """Mean, centred input and inverse standard deviation (biased variance) over ``axes``, as arrays."""
    values = _accumulation_array(xp, x)
    mean = values.mean(axis=axes, keepdims=True)
    centred = values - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    return mean, centred, var, 1.0 / xp.sqrt(var + eps)


def _normalized(x: Tensor, mean: Tensor, rstd: Tensor, axes: tuple, eps: float):
    """``(xhat, rstd)`` as Tensors for backward.

    Without grad mode (a plain backward) the saved statistics are reused; with it
    (``create_graph=True``) they are recomputed from ``x`` so they carry x's graph.
    """
    if not is_grad_enabled():
        return (x - mean) * rstd, rstd
    centred = x - x.mean(axes, keepdim=True)
    rstd = ((centred * centred).mean(axes, keepdim=True) + eps).rsqrt()
    return centred * rstd, rstd


def _input_grad(grad_xhat: Tensor, xhat: Tensor, rstd: Tensor, axes: tuple) -> Tensor:
    """d/dx of ``xhat = (x - mean(x)) * rstd(x)`` applied to ``grad_xhat``: the closed form."""
    mean_grad = grad_xhat.mean(axes, keepdim=True)
    mean_projection = (grad_xhat * xhat).mean(axes, keepdim=True)
    return rstd * (grad_xhat - mean_grad - xhat * mean_projection)


class Normalize(Function):
    """``(x - mean) * rstd`` over ``axes``, then ``* weight + bias`` (each broadcasting against x, or None).

    Layer norm and training-mode batch norm are both this op; they differ in ``axes`` and in the
    shape their affine parameters are given in. With ``running_mean``/``running_var`` (arrays
    or None) the batch mean and unbiased batch variance also update them in place, as
    PyTorch's batch norm does. Backward returns the affine gradients at x's shape and leaves
    summing them back to the parameters' shapes to the engine.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, axes, eps, running_mean=None, running_var=None, momentum=0.0):
        xp = ctx.device.backend.xp
        mean, centred, var, rstd = _moments(xp, x, axes, eps)
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
        ctx.axes, ctx.eps = axes, eps
        ctx.save_for_backward(x, weight, mean, rstd)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        xhat, rstd = _normalized(x, mean, rstd, ctx.axes, ctx.eps)
        grad_x = None
        if needs_x:
            grad_xhat = grad if weight is None else grad * weight
            grad_x = _input_grad(grad_xhat, xhat, rstd, ctx.axes)
        grad_weight = grad * xhat if needs_weight else None
        grad_bias = grad if needs_bias else None
        return grad_x, grad_weight, grad_bias  # the engine fills None for the non-tensor arguments


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
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        if not is_grad_enabled():
            # A plain backward: one fused primitive on arrays, nothing recorded.
            grads = ctx.device.backend.layer_norm_backward(
                grad._data,
                x._data,
                mean._data,
                rstd._data,
                None if weight is None else weight._data,
                needs_weight,
                needs_bias,
            )
            grad_x, grad_weight, grad_bias = (
                None if array is None else Tensor._wrap(array, grad._device) for array in grads
            )
            return (grad_x if needs_x else None), grad_weight, grad_bias
        # create_graph=True: the closed form from differentiable ops, with statistics recomputed from x.
        xhat, rstd = _normalized(x, mean, rstd, (1,), ctx.eps)
        grad_x = None
        if needs_x:
            grad_xhat = grad if weight is None else grad * weight
            grad_x = _input_grad(grad_xhat, xhat, rstd, (1,))
        grad_weight = (grad * xhat).sum(0) if needs_weight else None
        grad_bias = grad.sum(0) if needs_bias else None
        return grad_x, grad_weight, grad_bias


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
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(value).__name__}")
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
        raise TypeError(f"batch_norm: momentum must be a float, got {type(momentum).__name__}")
    channels = input.shape[1]
    vectors = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    for name, value in vectors.items():
        _check_vector("batch_norm", name, value, channels, input)
    if training:
        _verify_batch_size("batch_norm", input.shape)
        if eps <= 0.0:
            raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
        axes = (0, *range(2, input.ndim))
        channel_shape = (-1,) + (1,) * (input.ndim - 2)
        result = Normalize.apply(
            input,
            None if weight is None else weight.reshape(channel_shape),
            None if bias is None else bias.reshape(channel_shape),
            axes,
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
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if running_mean is None or running_var is None:
        missing = "running_mean" if running_mean is None else "running_var"
        raise ValueError(
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
        raise TypeError(
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
    grouped = input.reshape(batch, num_groups, group_size)
    out = Normalize.apply(grouped, None, None, (2,), float(eps)).reshape(input.shape)
    return _affine(out, weight, bias, (-1,) + (1,) * (input.ndim - 2))


__all__ = ["batch_norm", "layer_norm", "group_norm"]
