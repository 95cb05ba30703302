"""Fused log-softmax + NLL (cross-entropy with class indices): NumPy references and the launchers of kernels/loss.cu.

Primitives (both backends expose them as methods), for (N, C) logits, int64 class indices
``target`` (N,) already checked to lie in [0, C) or equal ``ignore_index``, an optional class
``weight`` (C,) in the logits' dtype (None: all ones) and ``label_smoothing`` eps in [0, 1]:

- ``cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing)`` returns
  ``(losses, shift, total)``, each (N,) in the arithmetic dtype (float32 for float16 and float32
  logits, float64 for float64), so the reduction over rows in Python loses nothing to float16:
  ``losses[n] = -(1 - eps) w[t] lp[n, t] - eps / C * sum_c w[c] lp[n, c]`` with
  ``lp = (logits - shift[:, None]) - log(total[:, None])`` (PyTorch's formula), 0 for rows whose
  target is ``ignore_index``; ``shift[n]`` is the row max when it is finite, else 0 (as the softmax
  primitive does), and ``total[n] = sum_c exp(logits[n, c] - shift[n])``. The row's logsumexp is
  ``shift + log(total)``, but it is not kept as one number: rounded (1e8 + log 2 is 1e8 in float32),
  it would turn tied large logits' probabilities [0.5, 0.5] into [1, 1].
- ``cross_entropy_backward(grad, logits, target, weight, shift, total, ignore_index, label_smoothing)``
  returns d(sum_n grad[n] * losses[n]) / d logits in the logits' dtype; ``grad`` is (N,) or a
  0-d array shared by every row. With p = exp(logits - shift[:, None]) / total[:, None] it is
  ``grad[n] * (a[n] p[n, c] - b[n, c])``, ``a[n] = (1 - eps) w[t] + eps / C * sum(w)``,
  ``b[n, c] = (1 - eps) w[t] [c == t] + eps / C * w[c]``, and exactly 0 on ignored rows.
"""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError, shape_str
from .. import kernels

# Registers per thread in the forward kernel (GF_CE_ITEMS): a warp caches rows of up to 256
# classes, a block of 1024 threads rows of up to 8192; longer rows take an online pass.
_ITEMS = 8
_WARP_LIMIT = 32 * _ITEMS
_WARPS_PER_BLOCK = 4
_MAX_BLOCK = 1024
_BACKWARD_BLOCK = 256

_DTYPES = ("float", "double", "gf_half")
KERNELS = tuple(
    f"gf_loss_cross_entropy_forward<{dtype}, {vector}, {warp}>"
    for dtype in _DTYPES
    for vector in ("false", "true")
    for warp in ("false", "true")
) + tuple(f"gf_loss_cross_entropy_backward<{dtype}, {vector}>" for dtype in _DTYPES for vector in ("false", "true"))


def _compute_dtype(dtype) -> np.dtype:
    """float16 is computed in float32; float32 and float64 in themselves."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def _targets(target, weight, ignore_index: int, compute):
    """(keep, safe_target, target_weight): ignored rows read class 0, and keep masks them out."""
    keep = target != ignore_index
    safe_target = np.where(keep, target, 0)
    target_weight = np.ones(target.shape, compute) if weight is None else weight[safe_target].astype(compute)
    return keep, safe_target, target_weight


# -- NumPy references (the CPU backend's implementation) -------------------------------------------


@np.errstate(divide="ignore", invalid="ignore", over="ignore")  # PyTorch computes inf/NaN here silently
def numpy_cross_entropy_forward(logits, target, weight, ignore_index: int, label_smoothing: float) -> tuple:
    """(per-row losses, row shifts, row sums of exp(logits - shift)) of (N, C) logits (see the module docstring)."""
    compute = _compute_dtype(logits.dtype)
    rows, classes = logits.shape
    if logits.size == 0:  # no rows, or no classes (then every target is ignore_index)
        return np.zeros(rows, compute), np.zeros(rows, compute), np.zeros(rows, compute)
    work = logits.astype(compute)  # a fresh array: shifted in place, then turned into log-probabilities
    peak = np.max(work, axis=1, keepdims=True)
    shift = np.where(np.isfinite(peak), peak, 0).astype(compute, copy=False)
    work -= shift
    with np.errstate(over="ignore", invalid="ignore"):  # rows holding +inf or NaN: inf/NaN, as in PyTorch
        total = np.sum(np.exp(work), axis=1, keepdims=True)
    with np.errstate(divide="ignore"):  # an all -inf row: log(0) = -inf
        work -= np.log(total)
    keep, safe_target, target_weight = _targets(target, weight, ignore_index, compute)
    picked = np.take_along_axis(work, safe_target[:, None], axis=1)[:, 0]
    losses = -(1 - label_smoothing) * target_weight * picked
    if label_smoothing > 0:
        weighted = work if weight is None else work * weight.astype(compute)
        losses -= (label_smoothing / classes) * np.sum(weighted, axis=1)
    # where, not a product: an ignored row with a -inf log-probability still gives 0, not NaN.
    return np.where(keep, losses, 0).astype(compute, copy=False), shift[:, 0], total[:, 0]


@np.errstate(divide="ignore", invalid="ignore", over="ignore")  # PyTorch computes inf/NaN here silently
def numpy_cross_entropy_backward(
    grad, logits, target, weight, shift, total, ignore_index: int, label_smoothing: float
) -> np.ndarray:
    """Gradient of sum_n grad[n] * losses[n] with respect to the (N, C) logits (see the module docstring)."""
    compute = _compute_dtype(logits.dtype)
    rows, classes = logits.shape
    if logits.size == 0:
        return np.zeros(logits.shape, logits.dtype)
    keep, safe_target, target_weight = _targets(target, weight, ignore_index, compute)
    weight_sum = classes if weight is None else np.sum(weight, dtype=compute)
    row_total = (1 - label_smoothing) * target_weight + (label_smoothing / classes) * weight_sum
    gradient = logits.astype(compute)
    gradient -= shift.astype(compute, copy=False)[:, None]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # non-finite rows: NaN, as in PyTorch
        np.exp(gradient, out=gradient)
        gradient /= total.astype(compute, copy=False)[:, None]  # p = exp(x - max) / sum(exp(x - max))
    gradient *= row_total[:, None]
    gradient[np.arange(rows), safe_target] -= (1 - label_smoothing) * target_weight
    if label_smoothing > 0:
        uniform = np.ones(classes, compute) if weight is None else weight.astype(compute)
        gradient -= (label_smoothing / classes) * uniform
    gradient *= np.broadcast_to(np.asarray(grad, compute), (rows,))[:, None]
    return np.where(keep[:, None], gradient, 0).astype(logits.dtype, copy=False)


# -- CuPy launchers ----------------------------------------------------------------------------------


def _weight_args(cupy, weight, logits):
    """(weight pointer, has_weight): without a weight, a valid pointer the kernel never reads."""
    if weight is None:
        return logits, np.int64(0)
    return cupy.ascontiguousarray(weight.astype(logits.dtype, copy=False)), np.int64(1)


def cuda_cross_entropy_forward(
    logits, target, weight, ignore_index: int, label_smoothing: float, out=None, shift=None, total=None
):
    """(losses, shift, total) of (N, C) CuPy logits with kernels/loss.cu; ``out``/``shift``/``total``
    are optional (N,) output buffers."""
    import cupy

    with logits.device:
        compute = _compute_dtype(logits.dtype)
        rows, classes = logits.shape
        out = cupy.empty(rows, compute) if out is None else out
        shift = cupy.empty(rows, compute) if shift is None else shift
        total = cupy.empty(rows, compute) if total is None else total
        if rows == 0:
            return out, shift, total
        if classes == 0:  # every target is ignore_index: loss 0, and the sum of nothing
            out.fill(0)
            shift.fill(0)
            total.fill(0)
            return out, shift, total
        logits = cupy.ascontiguousarray(logits)
        target = cupy.ascontiguousarray(target.astype(cupy.int64, copy=False))
        weight_array, has_weight = _weight_args(cupy, weight, logits)
        vector = kernels.pack_width(logits.dtype, classes, logits) > 1
        device_index = logits.device.id
        if classes <= _WARP_LIMIT:
            block, warp = 32 * _WARPS_PER_BLOCK, "true"
            grid = kernels.grid_size(rows, _WARPS_PER_BLOCK, device_index, blocks_per_sm=16)
        else:
            pack = 16 // logits.itemsize if vector else 1
            threads = -(-(classes // pack) // (_ITEMS // pack))  # enough threads to hold a row in registers
            block, warp = min(_MAX_BLOCK, max(32, -(-threads // 32) * 32)), "false"
            grid = kernels.grid_size(rows, 1, device_index, blocks_per_sm=max(1, 2048 // block))
        name = f"gf_loss_cross_entropy_forward<{kernels.dtype_suffix(logits.dtype)}, {str(vector).lower()}, {warp}>"
        args = (
            logits,
            target,
            weight_array,
            has_weight,
            out,
            shift,
            total,
            np.int64(rows),
            np.int64(classes),
            np.int64(ignore_index),
            np.float64(label_smoothing),
        )
        kernels.launch("loss", name, logits, grid, block, args)
    return out, shift, total


def cuda_cross_entropy_backward(
    grad, logits, target, weight, shift, total, ignore_index: int, label_smoothing: float, grad_logits=None
):
    """Gradient with respect to (N, C) CuPy logits with kernels/loss.cu; ``grad_logits``: optional output buffer."""
    import cupy

    with logits.device:
        compute = _compute_dtype(logits.dtype)
        rows, classes = logits.shape
        grad_logits = cupy.empty(logits.shape, logits.dtype) if grad_logits is None else grad_logits
        if logits.size == 0:
            return grad_logits
        logits = cupy.ascontiguousarray(logits)
        target = cupy.ascontiguousarray(target.astype(cupy.int64, copy=False))
        shift = cupy.ascontiguousarray(shift.astype(compute, copy=False))
        total = cupy.ascontiguousarray(total.astype(compute, copy=False))
        grad = cupy.ascontiguousarray(cupy.asarray(grad).astype(compute, copy=False))
        if grad.size == 1:
            grad_stride = np.int64(0)  # one gradient for every row ('sum' and 'mean')
        elif grad.shape == (rows,):
            grad_stride = np.int64(1)
        else:
            raise ShapeError(
                f"cross_entropy_backward: grad must be a scalar or of shape ({rows},) (one per row of the "
                f"({rows}, C) logits), got {shape_str(grad.shape)}; reduce it or pass one gradient per row"
            )
        weight_array, has_weight = _weight_args(cupy, weight, logits)
        # sum(w) stays on the GPU: reading it on the host would wait for the device.
        weight_sum = cupy.sum(weight_array, dtype=compute).reshape(1) if weight is not None else total
        vector = kernels.pack_width(logits.dtype, classes, logits, grad_logits) > 1
        pack = 16 // logits.itemsize if vector else 1
        grid = kernels.grid_size(logits.size // pack, _BACKWARD_BLOCK, logits.device.id)
        name = f"gf_loss_cross_entropy_backward<{kernels.dtype_suffix(logits.dtype)}, {str(vector).lower()}>"
        args = (
            logits,
            target,
            weight_array,
            has_weight,
            weight_sum,
            shift,
            total,
            grad,
            grad_stride,
            grad_logits,
            np.int64(rows),
            np.int64(classes),
            np.int64(ignore_index),
            np.float64(label_smoothing),
        )
        kernels.launch("loss", name, logits, grid, _BACKWARD_BLOCK, args)
    return grad_logits
