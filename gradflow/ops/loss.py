"""Losses: regression (mse, l1, smooth_l1, huber), binary cross-entropy and KL divergence.

Every loss takes PyTorch's ``reduction`` ('mean' | 'sum' | 'none') and, where PyTorch
still has them, the deprecated ``size_average`` / ``reduce`` flags at the same
positions (they override ``reduction`` with a warning, as in PyTorch). The class-index
losses (nll_loss, cross_entropy) live in ``loss_classification.py``.

Broadcasting: PyTorch broadcasts the target of the regression losses against the input
with a warning. gradflow does the same, explicitly: a target shape that differs warns
with PyTorch's message, a shape that cannot broadcast raises ShapeError naming both,
and the unreduced loss has the broadcast shape.
"""

from __future__ import annotations

import warnings

from ..autograd.function import Function
from ..dtypes import result_type
from ..errors import ArgumentTypeError, ArgumentValueError, DtypeError, ShapeError, shape_str
from ..tensor import Tensor
from ._checks import broadcast_shapes_or_raise
from .activation import sigmoid
from .compare import clamp, where

_REDUCTIONS = ("none", "mean", "sum")


# -- shared by every loss ---------------------------------------------------------------------------


def resolve_reduction(op: str, size_average, reduce, reduction: str, extra: tuple = ()) -> str:
    """The reduction to apply: the legacy flags win when given (with PyTorch's warning).

    ``extra`` lists reductions beyond PyTorch's three that this loss accepts ('batchmean').
    """
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn(
            f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
            stacklevel=3,
        )
    if reduction == "elementwise_mean":  # PyTorch's deprecated spelling of 'mean'
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.", stacklevel=3)
        reduction = "mean"
    if reduction not in _REDUCTIONS + extra:
        allowed = ", ".join(repr(r) for r in _REDUCTIONS + extra)
        raise ArgumentValueError(f"{op}: {reduction!r} is not a valid value for reduction; use one of {allowed}")
    return reduction


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Apply 'none' | 'sum' | 'mean' to an elementwise loss (the mean of nothing is NaN)."""
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def require_tensor(op: str, name: str, value) -> None:
    """Losses take tensors only: a list or a number is a TypeError that says what to pass."""
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(
            f"{op}: {name} must be a Tensor, got {type(value).__name__}; wrap it with gradflow.tensor()"
        )


def require_float_input(op: str, input: Tensor) -> None:
    """Raise DtypeError for an integer or bool input (losses are defined on floating point inputs)."""
    if not input._dtype.is_floating_point:
        raise DtypeError(
            f"{op}: expected a floating point input but got {input._dtype.name} of shape {shape_str(input.shape)}; "
            "convert it with .float() or .double()"
        )


def _pointwise_operands(op: str, input, target) -> tuple:
    """Check and promote (input, target) of a regression loss; warn when the target will broadcast."""
    require_tensor(op, "input", input)
    require_tensor(op, "target", target)
    dtype = result_type(input, target)
    if not dtype.is_floating_point:
        raise DtypeError(
            f"{op}: expected floating point input and target, got {input._dtype.name} and {target._dtype.name}; "
            "convert them with .float() or .double()"
        )
    if input.shape != target.shape:
        broadcast_shapes_or_raise(op, input.shape, target.shape)
        warnings.warn(
            f"Using a target size ({shape_str(target.shape)}) that is different to the input size "
            f"({shape_str(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=3,
        )
    return input.to(dtype), target.to(dtype)


def _check_same_shape(op: str, name: str, tensor: Tensor, input: Tensor) -> None:
    if tensor.shape != input.shape:
        raise ShapeError(
            f"{op}: {name} of shape {shape_str(tensor.shape)} must have the input's shape {shape_str(input.shape)}; "
            f"pass a {name} of the same size"
        )


def _weighted(op: str, loss: Tensor, input: Tensor, weight, reduction: str, mean_by_weight: bool) -> Tensor:
    """PyTorch 2.x's elementwise ``weight`` of mse/l1/huber: same shape as input; 'mean' as PyTorch defines it."""
    if weight is None:
        return reduce_loss(loss, reduction)
    require_tensor(op, "weight", weight)
    _check_same_shape(op, "weight", weight, input)
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:  # mse and l1 divide by the total weight, huber by the count
        return loss.sum() / weight.sum()
    return reduce_loss(loss, reduction)


# -- regression ------------------------------------------------------------------------------------


def _inside(near: Tensor, difference: Tensor) -> Tensor:
    """``difference`` where ``near``, else 0: the quadratic branch of huber/smooth_l1 must not see an
    infinite difference, or its masked-out gradient (0 * inf) would be NaN instead of +-delta."""
    return where(near, difference, 0.0)


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    """Mean squared error: (input - target)^2, reduced.

    ``weight`` (input's shape) scales each element; with it, 'mean' is sum(w * se) / sum(w).

    >>> import gradflow as gf
    >>> mse_loss(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 4.0])).item()
    2.0
    """
    reduction = resolve_reduction("mse_loss", size_average, reduce, reduction)
    input, target = _pointwise_operands("mse_loss", input, target)
    difference = input - target
    return _weighted("mse_loss", difference * difference, input, weight, reduction, True)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    """Mean absolute error: |input - target|, reduced (gradient 0 where they are equal, as in PyTorch)."""
    reduction = resolve_reduction("l1_loss", size_average, reduce, reduction)
    input, target = _pointwise_operands("l1_loss", input, target)
    return _weighted("l1_loss", (input - target).abs(), input, weight, reduction, True)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta=0 is l1_loss."""
    reduction = resolve_reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise ArgumentValueError(f"smooth_l1_loss: beta must be >= 0 (0 gives l1_loss), got {beta}")
    input, target = _pointwise_operands("smooth_l1_loss", input, target)
    difference = input - target
    distance = difference.abs()
    if beta == 0:
        return reduce_loss(distance, reduction)
    inner = _inside(distance < beta, difference)
    loss = where(distance < beta, 0.5 * inner * inner / beta, distance - 0.5 * beta)
    return reduce_loss(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); equals delta * smooth_l1_loss(beta=delta).

    ``weight`` (input's shape) scales each element; with it, 'mean' is mean(w * loss), as in PyTorch.
    """
    reduction = resolve_reduction("huber_loss", None, None, reduction)
    if not delta > 0:
        raise ArgumentValueError(f"huber_loss: delta must be > 0, got {delta}; use l1_loss for the delta -> 0 limit")
    input, target = _pointwise_operands("huber_loss", input, target)
    difference = input - target
    distance = difference.abs()
    inner = _inside(distance < delta, difference)
    loss = where(distance < delta, 0.5 * inner * inner, delta * (distance - 0.5 * delta))
    return _weighted("huber_loss", loss, input, weight, reduction, False)


# -- binary cross-entropy --------------------------------------------------------------------------


class BinaryCrossEntropy(Function):
    """-(t log x + (1 - t) log(1 - x)) elementwise, each log clamped at -100 as in PyTorch."""

    @staticmethod
    def forward(ctx, x, t):
        xp = ctx.device.backend.xp
        # log of a where-guarded argument: log(0) would be -inf (and a warning) before the clamp.
        log_x = xp.where(x > 0, xp.maximum(xp.log(xp.where(x > 0, x, 1)), -100), -100)
        log_rest = xp.where(x < 1, xp.maximum(xp.log1p(-xp.where(x < 1, x, 0)), -100), -100)
        ctx.save_for_backward(x, t)
        return (-(t * log_x + (1 - t) * log_rest)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        needs_x, needs_t = ctx.needs_input_grad
        # PyTorch's derivative: the product is clamped at 1e-12, so saturated inputs get large, finite gradients.
        grad_x = grad * (x - t) / clamp(x * (1 - x), min=1e-12) if needs_x else None
        grad_t = grad * (clamp((-x).log1p(), min=-100) - clamp(x.log(), min=-100)) if needs_t else None
        return grad_x, grad_t


def _binary_operands(op: str, input, target, weight) -> tuple:
    require_tensor(op, "input", input)
    require_tensor(op, "target", target)
    require_float_input(op, input)
    if target.shape != input.shape:
        raise ShapeError(
            f"{op}: target of shape {shape_str(target.shape)} must have the input's shape {shape_str(input.shape)} "
            "(PyTorch no longer broadcasts here); reshape the target"
        )
    if weight is not None:
        require_tensor(op, "weight", weight)
        if broadcast_shapes_or_raise(op, target.shape, weight.shape) != tuple(target.shape):
            raise ShapeError(
                f"{op}: weight of shape {shape_str(weight.shape)} must broadcast to the target's shape "
                f"{shape_str(target.shape)}; give it that shape or fewer dimensions"
            )
    return input, target.to(input._dtype)


def _check_unit_interval(op: str, name: str, tensor: Tensor) -> None:
    """PyTorch refuses probabilities outside [0, 1] (NaN included); so do we, naming the first bad value."""
    data = tensor._data
    outside = ~((data >= 0) & (data <= 1))  # the negated test also catches NaN
    if data.size and bool(outside.any()):
        bad = float(data[outside].ravel()[0])
        fix = (
            "apply sigmoid first, or pass the raw scores to binary_cross_entropy_with_logits"
            if name == "input"
            else "targets are probabilities: clamp or rescale them"
        )
        raise ArgumentValueError(
            f"{op}: all elements of {name} should be between 0 and 1, got {bad} in {name} of shape "
            f"{shape_str(tensor.shape)}; {fix}"
        )


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
    """Binary cross-entropy between probabilities ``input`` in [0, 1] and ``target`` in [0, 1].

    Each log is clamped at -100 (PyTorch's convention), so the loss stays finite at 0 and 1.
    ``weight`` broadcasts to the target's shape. Inputs or targets outside [0, 1] raise ValueError.
    """
    reduction = resolve_reduction("binary_cross_entropy", size_average, reduce, reduction)
    input, target = _binary_operands("binary_cross_entropy", input, target, weight)
    _check_unit_interval("binary_cross_entropy", "input", input)
    _check_unit_interval("binary_cross_entropy", "target", target)
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction)


class SoftplusOfNegative(Function):
    """softplus(-x) = -log(sigmoid(x)) = max(-x, 0) + log1p(exp(-|x|)): exact and finite for any x."""

    @staticmethod
    def forward(ctx, x):
        xp = ctx.device.backend.xp
        ctx.save_for_backward(x)
        return (xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (sigmoid(x) - 1)


def binary_cross_entropy_with_logits(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None
) -> Tensor:
    """Sigmoid plus binary cross-entropy in one stable formula: (1 - t) x + lw softplus(-x).

    lw = 1 + (pos_weight - 1) t weighs the positive term (PyTorch's ``pos_weight``, broadcast
    along the last dimension). Finite values and gradients for any magnitude of logits.
    """
    op = "binary_cross_entropy_with_logits"
    reduction = resolve_reduction(op, size_average, reduce, reduction)
    input, target = _binary_operands(op, input, target, weight)
    softplus_negative = SoftplusOfNegative.apply(input)
    if pos_weight is not None:
        require_tensor(op, "pos_weight", pos_weight)
        broadcast_shapes_or_raise(op, target.shape, pos_weight.shape)
        softplus_negative = (1 + (pos_weight - 1) * target) * softplus_negative
    loss = (1 - target) * input + softplus_negative
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction)


# -- divergence ------------------------------------------------------------------------------------


def _xlogx(target: Tensor) -> Tensor:
    """target * log(target), 0 where target is 0 (xlogy); the inner where keeps log(0) out of the gradient."""
    is_zero = target == 0
    return where(is_zero, 0.0, target * where(is_zero, 1.0, target).log())


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence with ``input`` as log-probabilities: target (log target - input).

    With ``log_target`` the target is given as log-probabilities too. 'batchmean' divides
    the sum by the batch size (input.size(0)), which is the mathematical KL divergence;
    'mean' divides by the number of elements and warns, as in PyTorch.
    """
    legacy = size_average is not None or reduce is not None
    reduction = resolve_reduction("kl_div", size_average, reduce, reduction, extra=("batchmean",))
    if reduction == "mean" and not legacy:
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support size."
            "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
            "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
            stacklevel=2,
        )
    require_tensor("kl_div", "input", input)
    require_tensor("kl_div", "target", target)
    if not (input._dtype.is_floating_point and target._dtype.is_floating_point):
        raise DtypeError(
            f"kl_div: integral inputs are not supported, got {input._dtype.name} and {target._dtype.name}; "
            "convert them with .float() or .double()"
        )
    broadcast_shapes_or_raise("kl_div", input.shape, target.shape)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = _xlogx(target) - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return reduce_loss(loss, reduction)


__all__ = [
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]
