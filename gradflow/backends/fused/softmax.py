"""Row softmax / log-softmax over the last axis: NumPy references and the launchers of kernels/softmax.cu.

Primitives (both backends expose them as methods):

- ``softmax_forward(x, log)``: softmax (``log=False``) or log-softmax of every row of the last
  axis; the result has x's shape and dtype.
- ``softmax_backward(grad, out, log)``: the input gradient from the saved output ``out``:
  ``out * (grad - sum(grad * out))`` for softmax, ``grad - exp(out) * sum(grad)`` for log-softmax,
  sums along the last axis; the result has ``out``'s dtype.

Both subtract the row maximum first. A row whose maximum is not finite (all -inf, holding +inf,
or NaN) is left unshifted (gradflow's rule; torch turns a row holding +inf all NaN): an all -inf row gives NaN.
float16 is computed in float32 and rounded once; a 0-d input is one row of one element.
"""

from __future__ import annotations

import numpy as np

from .. import kernels

# Registers per thread in the kernels (GF_SM_ITEMS): a warp caches rows of up to 32 * 8
# elements, a block of 1024 threads rows of up to 8192; longer rows take the online pass.
_ITEMS = 8
_WARP_LIMIT = 32 * _ITEMS
_WARPS_PER_BLOCK = 4
_MAX_BLOCK = 1024

_DTYPES = ("float", "double", "gf_half")
KERNELS = tuple(
    f"gf_softmax_{direction}<{dtype}, {vector}, {warp}>"
    for direction in ("forward", "backward")
    for dtype in _DTYPES
    for vector in ("false", "true")
    for warp in ("false", "true")
)


def _compute_dtype(dtype) -> np.dtype:
    """float16 is computed in float32; float32 and float64 in themselves."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


# -- NumPy references (the CPU backend's implementation) -------------------------------------------


@np.errstate(divide="ignore", invalid="ignore", over="ignore")  # PyTorch computes inf/NaN here silently
def numpy_softmax_forward(x: np.ndarray, log: bool) -> np.ndarray:
    """softmax (or log-softmax when ``log``) of ``x`` along its last axis."""
    if x.size == 0:
        return np.empty(x.shape, x.dtype)
    rows = x.reshape(1) if x.ndim == 0 else x
    work = rows.astype(_compute_dtype(x.dtype))  # a fresh array: every step below is in place
    peak = np.max(work, axis=-1, keepdims=True)
    work -= np.where(np.isfinite(peak), peak, 0).astype(work.dtype, copy=False)
    if log:
        work -= np.log(np.sum(np.exp(work), axis=-1, keepdims=True))
    else:
        np.exp(work, out=work)
        work /= np.sum(work, axis=-1, keepdims=True)
    return work.reshape(x.shape).astype(x.dtype, copy=False)


@np.errstate(divide="ignore", invalid="ignore", over="ignore")  # PyTorch computes inf/NaN here silently
def numpy_softmax_backward(grad: np.ndarray, out: np.ndarray, log: bool) -> np.ndarray:
    """Input gradient of softmax (or log-softmax) along the last axis, from its output ``out``."""
    if out.size == 0:
        return np.empty(out.shape, out.dtype)
    compute = _compute_dtype(out.dtype)
    grad = np.broadcast_to(grad, out.shape).astype(compute)
    saved = out.astype(compute, copy=False)
    if log:
        total = np.sum(grad, axis=-1, keepdims=True)
        grad -= np.exp(saved) * total
    else:
        total = np.sum(grad * saved, axis=-1, keepdims=True)
        grad -= total
        grad *= saved
    return grad.astype(out.dtype, copy=False)


# -- CuPy launchers ----------------------------------------------------------------------------------


def _launch_rows(name: str, dtype, rows: int, cols: int, vector: bool, anchor, args: tuple) -> None:
    """Launch a row kernel: a warp per row for short rows, else a block per row sized to cache it."""
    device_index = anchor.device.id
    items = _ITEMS
    if cols <= _WARP_LIMIT:
        block = 32 * _WARPS_PER_BLOCK
        grid = kernels.grid_size(rows, _WARPS_PER_BLOCK, device_index, blocks_per_sm=16)
        warp = "true"
    else:
        pack = 16 // np.dtype(dtype).itemsize if vector else 1
        threads = -(-(cols // pack) // (items // pack))  # enough threads to hold the row in registers
        block = min(_MAX_BLOCK, max(32, -(-threads // 32) * 32))
        grid = kernels.grid_size(rows, 1, device_index, blocks_per_sm=max(1, 2048 // block))
        warp = "false"
    kernel = f"{name}<{kernels.dtype_suffix(dtype)}, {'true' if vector else 'false'}, {warp}>"
    kernels.launch("softmax", kernel, anchor, grid, block, args)


def cuda_softmax_forward(x, log: bool, out=None):
    """softmax (or log-softmax) of a CuPy array along its last axis with kernels/softmax.cu.

    ``out``, when given, is a C-contiguous array of x's shape and dtype to write into (tests fill
    it with NaN first so unwritten elements show).
    """
    import cupy

    with x.device:
        shape = x.shape  # ascontiguousarray makes a 0-d array 1-d; the result keeps the input's shape
        cols = shape[-1] if shape else 1
        x = cupy.ascontiguousarray(x)
        if out is None:
            out = cupy.empty(shape, x.dtype)
        if x.size == 0:
            return out
        rows = x.size // cols
        vector = kernels.pack_width(x.dtype, cols, x, out) > 1
        args = (x, out, np.int64(rows), np.int64(cols), np.int64(1 if log else 0))
        _launch_rows("gf_softmax_forward", x.dtype, rows, cols, vector, x, args)
    return out


def cuda_softmax_backward(grad, out, log: bool, grad_input=None):
    """Input gradient of softmax (or log-softmax) along the last axis from its output, with kernels/softmax.cu.

    ``grad`` is cast to ``out``'s dtype and broadcast to its shape; ``grad_input``, when given, is a
    C-contiguous array of out's shape and dtype to write into.
    """
    import cupy

    with out.device:
        shape = out.shape
        cols = shape[-1] if shape else 1
        grad = cupy.ascontiguousarray(cupy.broadcast_to(grad.astype(out.dtype, copy=False), shape))
        out = cupy.ascontiguousarray(out)
        if grad_input is None:
            grad_input = cupy.empty(shape, out.dtype)
        if out.size == 0:
            return grad_input
        rows = out.size // cols
        vector = kernels.pack_width(out.dtype, cols, grad, out, grad_input) > 1
        args = (grad, out, grad_input, np.int64(rows), np.int64(cols), np.int64(1 if log else 0))
        _launch_rows("gf_softmax_backward", out.dtype, rows, cols, vector, out, args)
    return grad_input
