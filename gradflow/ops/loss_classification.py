"""Multi-class losses: nll_loss and cross_entropy (class indices or class probabilities).

Inputs are (N, C), (N, C, d1, d2, ...) or unbatched (C,); class-index targets are
int64 (or uint8) of shape (N,), (N, d1, d2, ...) or (). ``ignore_index`` marks
targets that contribute nothing; with 'mean' the sum is divided by the total weight
of the targets that are not ignored (so all-ignored gives NaN, as in PyTorch).

cross_entropy with class indices is one Function (``SoftmaxCrossEntropy``) over the
backend's fused log-softmax + NLL primitives (NumPy reference on the CPU,
kernels/loss.cu on CUDA): the forward returns each row's loss and logsumexp, the
backward (``CrossEntropyBackward``, itself a differentiable Function) recomputes the
softmax from the logsumexp and subtracts the (smoothed, weighted) one-hot target in one
pass; its own backward gives second derivatives through softmax's backward.
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..dtypes import int64, uint8
from ..errors import ArgumentValueError, DtypeError, IndexOutOfRangeError, ShapeError, device_mismatch, shape_str
from ..tensor import Tensor
from ._checks import index_bounds, out_of_range_value
from .loss import require_float_input, require_tensor, resolve_reduction
from .softmax import SoftmaxBackward, log_softmax, softmax

# -- argument checks -------------------------------------------------------------------------------


def _check_weight(op: str, weight, input: Tensor):
    """``weight`` as a (C,) tensor of the input's dtype, or None."""
    if weight is None:
        return None
    require_tensor(op, "weight", weight)
    classes = input.shape[1]
    if weight.shape != (classes,):
        raise ShapeError(
            f"{op}: weight tensor should be defined either for all {classes} classes or no classes but got weight "
            f"tensor of shape {shape_str(weight.shape)}; pass a weight of shape [{classes}]"
        )
    if weight._device is not input._device:
        raise device_mismatch(op, input._device, weight._device, "weight")
    return weight.to(input._dtype)


def _check_index_target(op: str, input: Tensor, target: Tensor, ignore_index: int) -> tuple:
    """Check the dtype, shape and range of class indices against a (N, C, ...) input.

    Returns ``(target as int64, none_ignored)``: ``none_ignored`` is True when no target can
    equal ``ignore_index`` (it lies outside the targets' [min, max], read for the range check
    anyway), so the 'mean' divisor is the number of targets, known without reading the device.
    """
    if target._dtype not in (int64, uint8):
        hint = "; class probabilities must have the input's shape" if target._dtype.is_floating_point else ""
        raise DtypeError(
            f"{op}: expected target dtype to be int64 (Long) or uint8 (Byte) class indices, but got "
            f"{target._dtype.name} of shape {shape_str(target.shape)}{hint}; convert class indices with .long()"
        )
    if target._device is not input._device:
        raise device_mismatch(op, input._device, target._device, "target")
    batch = input.shape[0]
    if target.ndim == 0 or target.shape[0] != batch:
        got = 1 if target.ndim == 0 else target.shape[0]
        raise ShapeError(
            f"{op}: expected input batch_size ({batch}) to match target batch_size ({got}) (input of shape "
            f"{shape_str(input.shape)}, target of shape {shape_str(target.shape)})"
        )
    expected = (batch,) + tuple(input.shape[2:])
    if target.shape != expected:
        raise ShapeError(
            f"{op}: expected target of shape {shape_str(expected)} for input of shape {shape_str(input.shape)}, "
            f"got {shape_str(target.shape)}; the target drops the class dimension (dim 1) of the input"
        )
    target = target.to(int64)
    data = target._data
    classes = input.shape[1]
    if data.size == 0:
        return target, True
    bounds = index_bounds(data)
    value = out_of_range_value(data, 0, classes, exempt=ignore_index, bounds=bounds)
    if value is not None:
        raise IndexOutOfRangeError(
            f"{op}: target {value} is out of bounds: class indices must lie in [0, {classes - 1}] for an input "
            f"with {classes} classes (shape {shape_str(input.shape)}), or equal ignore_index={ignore_index}"
        )
    return target, not bounds[0] <= ignore_index <= bounds[1]


def _batched(op: str, input, target) -> tuple:
    """(input, target, unbatched): an unbatched (C,) input becomes (1, C) and its target (1,)."""
    require_tensor(op, "input", input)
    require_tensor(op, "target", target)
    require_float_input(op, input)
    if input.ndim == 0:
        raise ShapeError(f"{op}: expected 1 or more dimensions (got 0); the input is (C,), (N, C) or (N, C, d1, ...)")
    if input.ndim > 1:
        return input, target, False
    if target.shape == input.shape:  # class probabilities of one sample
        return input.unsqueeze(0), target.unsqueeze(0), True
    if target.numel() != 1:
        raise ShapeError(
            f"{op}: expected input batch_size (1) to match target batch_size ({target.numel()}) (input of shape "
            f"{shape_str(input.shape)}, target of shape {shape_str(target.shape)}); an unbatched input takes one "
            "class index"
        )
    return input.unsqueeze(0), target.reshape(1), True


def _unbatch(loss: Tensor, unbatched: bool, reduction: str) -> Tensor:
    return loss.reshape(()) if unbatched and reduction == "none" else loss


# -- the shared forward and backward pieces --------------------------------------------------------


def _kept_targets(xp, target, weight, ignore_index: int, dtype) -> tuple:
    """(keep, safe_target, target_weight): k_n = t_n != ignore_index, ignored targets read class 0, and
    target_weight = k_n w[t_n] (k_n without class weights) in ``dtype``."""
    keep = target != ignore_index
    safe_target = xp.where(keep, target, 0)
    return keep, safe_target, keep.astype(dtype) if weight is None else weight[safe_target] * keep


def _class_loss(xp, log_probs, target, weight, ignore_index, reduction, smoothing) -> tuple:
    """The reduced loss from log-probabilities, and what backward needs: (out, safe_target, target_weight, keep,
    denominator). loss_n = -k_n [(1 - eps) w[t] logp[n, t] + eps / C sum_c w[c] logp[n, c]], k_n = t != ignore_index.
    """
    keep, safe_target, target_weight = _kept_targets(xp, target, weight, ignore_index, log_probs.dtype)
    picked = xp.take_along_axis(log_probs, xp.expand_dims(safe_target, 1), axis=1).squeeze(1)
    loss = -(1 - smoothing) * target_weight * picked
    if smoothing > 0:
        weighted = log_probs if weight is None else log_probs * _class_view(weight, log_probs.ndim)
        loss = loss - (smoothing / log_probs.shape[1]) * xp.sum(weighted, axis=1)
    # where, not a product: an ignored row with a -inf log-probability must still give 0, not NaN.
    loss = xp.where(keep, loss, 0)
    denominator = xp.asarray(xp.sum(target_weight))  # a 0-d array on every backend (NumPy returns a scalar)
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = xp.sum(loss)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: 0 / 0 = NaN, as in PyTorch
            out = xp.sum(loss) / denominator
    return xp.asarray(out, dtype=log_probs.dtype), safe_target, target_weight, keep, denominator


def _class_view(weight, ndim: int):
    """A (C,) class weight shaped (1, C, 1, ...) to broadcast against an ndim-dimensional input."""
    return weight.reshape((1, weight.shape[0]) + (1,) * (ndim - 2))


def _row_totals(xp, target_weight, keep, weight, smoothing: float, classes: int):
    """A_n = sum_c a[n, c] with a kept class axis, where a[n, c] = k_n [(1 - eps) w[t] [c == t] + eps / C w[c]]
    is the smoothed, weighted one-hot target: the gradient of cross_entropy's loss_n is A_n p[n, :] - a[n, :]."""
    row_total = (1 - smoothing) * target_weight
    if smoothing > 0:
        weight_sum = classes if weight is None else xp.sum(weight)
        row_total = row_total + (smoothing / classes) * weight_sum * keep.astype(target_weight.dtype)
    return xp.expand_dims(row_total, 1)


def _axis_shape(axis: int, size: int, ndim: int) -> tuple:
    return tuple(size if position == axis else 1 for position in range(ndim))


def _subtract_targets(xp, array, safe_target, target_weight) -> None:
    """``array[n, t_n, ...] -= target_weight[n, ...]`` in place: the weighted one-hot of nll_loss's gradient."""
    # logits[n, t_n, i, j, ...]: aranges along the batch and spatial axes, the targets along the classes.
    positions = [
        xp.arange(size).reshape(_axis_shape(axis, size, safe_target.ndim))
        for axis, size in enumerate(safe_target.shape)
    ]
    positions.insert(1, safe_target)
    array[tuple(positions)] -= target_weight  # one entry per position: no repeats to add up


def _reduction_scale(ctx, grad: Tensor, denominator) -> Tensor:
    """The incoming gradient shaped to multiply per-class terms: per sample ('none'), or scalar.

    ``denominator`` is the 'mean' divisor: a 0-d tensor of summed weights, or a positive
    Python int (the number of targets) when the forward knew it on the host.
    """
    if ctx.reduction == "none":
        return grad.unsqueeze(1)
    if ctx.reduction == "sum":
        return grad
    if isinstance(denominator, int):
        return grad / denominator
    backend = ctx.device.backend
    with backend.context():
        total = denominator._data
        # Nothing kept: every coefficient is 0, so any finite divisor gives PyTorch's zero gradient (not 0 * inf).
        divisor = backend.xp.where(total == 0, 1, total)
    return grad / Tensor._wrap(divisor, ctx.device)


# -- nll_loss --------------------------------------------------------------------------------------


class NegativeLogLikelihood(Function):
    """-w[t] logp[n, t] with ignore_index; its gradient is the weighted one-hot, negated and scaled."""

    @staticmethod
    def forward(ctx, log_probs, target, weight, ignore_index, reduction):
        xp = ctx.device.backend.xp
        out, safe_target, target_weight, keep, denominator = _class_loss(
            xp, log_probs, target, weight, ignore_index, reduction, 0.0
        )
        ctx.reduction, ctx.input_shape = reduction, log_probs.shape
        ctx.save_for_backward(safe_target, target_weight, keep, denominator)
        return out

    @staticmethod
    def backward(ctx, grad):
        safe_target, target_weight, keep, denominator = ctx.saved_tensors
        backend = ctx.device.backend
        with backend.context():
            negated_targets = backend.xp.zeros(ctx.input_shape, target_weight._data.dtype)
            _subtract_targets(backend.xp, negated_targets, safe_target._data, target_weight._data)
        scale = _reduction_scale(ctx, grad, denominator)
        return Tensor._wrap(negated_targets, ctx.device) * scale, None, None, None, None


def nll_loss(
    input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood: -weight[t] * input[n, t] for log-probabilities ``input`` and class indices t.

    'mean' divides by the summed weight of the targets that are not ``ignore_index``.

    >>> import gradflow as gf
    >>> nll_loss(gf.tensor([[-1.0, -2.0], [-3.0, -0.5]]), gf.tensor([0, 1])).item()
    0.75
    """
    reduction = resolve_reduction("nll_loss", size_average, reduce, reduction)
    input, target, unbatched = _batched("nll_loss", input, target)
    target, _ = _check_index_target("nll_loss", input, target, ignore_index)
    weight = _check_weight("nll_loss", weight, input)
    loss = NegativeLogLikelihood.apply(input, target, weight, ignore_index, reduction)
    return _unbatch(loss, unbatched, reduction)


# -- cross_entropy ---------------------------------------------------------------------------------


def _class_rows(xp, logits):
    """(N, C, d1, ...) logits as (N * d1 * ..., C) rows, class axis last, in the targets' flattened order."""
    if logits.ndim == 2:
        return logits
    return xp.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])


def _from_class_rows(xp, rows, shape):
    """The inverse of ``_class_rows`` for an array of (N * d1 * ..., C) rows and the logits' ``shape``."""
    if len(shape) == 2:
        return rows
    return xp.moveaxis(rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1)


class CrossEntropyBackward(Function):
    """d(sum_n scale[n] loss[n]) / d logits by the backend's fused ``cross_entropy_backward``.

    ``scale`` is one gradient per row of targets (the targets' shape, 'none') or a 0-d one
    shared by all. The result is ``scale[n] (A_n p[n, :] - a[n, :])`` (see ``_row_totals``;
    0 on ignored rows) with ``p = softmax(logits)``, recomputed from the saved row ``shift``/``total``.
    Its own backward, for an incoming ``gg``: along ``scale`` it is ``sum_c gg (A p - a)``, the
    fused primitive again with a unit scale; along the logits it is softmax's backward of
    ``gg * scale * A`` at ``p`` (``SoftmaxBackward``, differentiable again). The target, the class
    weights and ``shift``/``total`` (functions of the logits, accounted for through ``p``) get no gradient.
    """

    @staticmethod
    def forward(ctx, scale, logits, target, weight, shift, total, ignore_index, label_smoothing):
        backend = ctx.device.backend
        xp = backend.xp
        ctx.ignore_index, ctx.label_smoothing = ignore_index, label_smoothing
        ctx.save_for_backward(scale, logits, target, weight, shift, total)
        per_row = scale.reshape(-1) if scale.ndim else scale
        rows = backend.cross_entropy_backward(
            per_row, _class_rows(xp, logits), target.reshape(-1), weight, shift, total, ignore_index, label_smoothing
        )
        return _from_class_rows(xp, rows, logits.shape)

    @staticmethod
    def backward(ctx, gg):
        scale, logits, target, weight, shift, total = ctx.saved_tensors
        grad_scale = grad_logits = None
        if ctx.needs_input_grad[0]:
            unit = Tensor._wrap(ctx.device.backend.xp.ones((), scale._data.dtype), ctx.device)
            per_class = CrossEntropyBackward.apply(
                unit, logits, target, weight, shift, total, ctx.ignore_index, ctx.label_smoothing
            )
            grad_scale = (gg * per_class).sum(1) if scale.ndim else (gg * per_class).sum()
        if ctx.needs_input_grad[1]:
            backend, xp = ctx.device.backend, ctx.device.backend.xp
            with backend.context():
                weight_array = None if weight is None else weight._data
                keep, _, target_weight = _kept_targets(
                    xp, target._data, weight_array, ctx.ignore_index, logits._data.dtype
                )
                row_total = _row_totals(xp, target_weight, keep, weight_array, ctx.label_smoothing, logits.shape[1])
            row_scale = scale.unsqueeze(1) if scale.ndim else scale
            coefficient = gg * (row_scale * Tensor._wrap(row_total, ctx.device))
            grad_logits = SoftmaxBackward.apply(coefficient, softmax(logits, dim=1), 1, False)
        return grad_scale, grad_logits, None, None, None, None, None, None


class SoftmaxCrossEntropy(Function):
    """Fused log-softmax + NLL over dim 1 with class weights, ignore_index and label smoothing.

    Forward is the backend's fused primitive over (rows, C) (``cross_entropy_forward``: NumPy on
    the CPU, kernels/loss.cu on CUDA); (N, C, d1, ...) logits are moved class-last into
    N * d1 * ... rows around it. The backward is ``CrossEntropyBackward`` on the incoming
    gradient times the reduction's scale.
    """

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction, label_smoothing, count=None):
        """``count``: the number of targets when it is known to be the 'mean' divisor (no weights, none ignored)."""
        backend = ctx.device.backend
        xp = backend.xp
        losses, shift, total = backend.cross_entropy_forward(
            _class_rows(xp, logits), target.reshape(-1), weight, ignore_index, label_smoothing
        )
        # The summed weights of the kept targets: needed by 'mean' only, and computed on the device only
        # when the host does not know it (each array op here is a kernel launch on a GPU).
        denominator = count
        if reduction == "mean" and count is None:
            target_weight = _kept_targets(xp, target, weight, ignore_index, logits.dtype)[2]
            denominator = xp.asarray(xp.sum(target_weight))  # a 0-d array on every backend (NumPy returns a scalar)
        if reduction == "none":
            out = losses.reshape(target.shape)
        elif reduction == "sum":
            out = xp.sum(losses)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: 0 / 0 = NaN, as in PyTorch
                out = xp.sum(losses) / denominator
        ctx.reduction, ctx.label_smoothing, ctx.ignore_index = reduction, label_smoothing, ignore_index
        ctx.save_for_backward(logits, target, weight, shift, total, denominator)
        return xp.asarray(out, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        logits, target, weight, shift, total, denominator = ctx.saved_tensors
        # One gradient per target ('none', the targets' shape) or one for all.
        scale = grad if ctx.reduction == "none" else _reduction_scale(ctx, grad, denominator)
        gradient = CrossEntropyBackward.apply(
            scale, logits, target, weight, shift, total, ctx.ignore_index, ctx.label_smoothing
        )
        return gradient, None, None, None, None, None, None


def _probability_cross_entropy(input: Tensor, target: Tensor, weight, reduction: str, label_smoothing: float):
    """Cross-entropy against class probabilities (PyTorch's formula; 'mean' divides by N * d1 * ...)."""
    if not target._dtype.is_floating_point:
        raise DtypeError(
            f"cross_entropy: expected a floating point target for class probabilities, got {target._dtype.name} of "
            f"shape {shape_str(target.shape)}; class indices drop the class dimension, probabilities keep it"
        )
    classes = input.shape[1]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    product = log_softmax(input, dim=1) * target
    if weight is not None:
        product = product * _class_view(weight, input.ndim)
    if reduction == "none":
        return -product.sum(1)
    total = -product.sum()
    if reduction == "sum":
        return total
    samples = input.numel() // classes
    return total / samples if samples else total * float("nan")


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits ``input`` against class indices or class probabilities.

    A ``target`` with the input's shape holds class probabilities (floating point); any other
    shape holds class indices (int64). ``label_smoothing`` in [0, 1] mixes the target with the
    uniform distribution: (1 - eps) target + eps / C. Stable for logits of any magnitude.

    >>> import gradflow as gf
    >>> round(cross_entropy(gf.tensor([[2.0, 0.0]]), gf.tensor([0])).item(), 4)
    0.1269
    """
    op = "cross_entropy"
    reduction = resolve_reduction(op, size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    input, target, unbatched = _batched(op, input, target)
    weight = _check_weight(op, weight, input)
    if target.shape == input.shape:
        if ignore_index >= 0:
            raise ArgumentValueError(
                f"{op}: ignore_index is not supported for class-probability targets (got {ignore_index}); "
                "give ignored samples zero probability mass or pass class indices instead"
            )
        loss = _probability_cross_entropy(input, target, weight, reduction, label_smoothing)
    else:
        target, none_ignored = _check_index_target(op, input, target, ignore_index)
        # Without weights or ignored targets the 'mean' divisor is the target count: a host number.
        count = target.numel() if weight is None and none_ignored and reduction == "mean" else None
        count = count or None  # no targets: the summed weights (0) give NaN as before
        loss = SoftmaxCrossEntropy.apply(input, target, weight, ignore_index, reduction, float(label_smoothing), count)
    return _unbatch(loss, unbatched, reduction)


__all__ = ["nll_loss", "cross_entropy"]
