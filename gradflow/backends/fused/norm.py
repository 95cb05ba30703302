"""Layer norm over the last axis of a ``(rows, cols)`` array: the NumPy reference and the CUDA launchers.

Forward returns ``(y, mean, rstd)``: ``y`` in x's dtype, ``mean`` and ``rstd`` of shape
``(rows,)`` in the accumulation dtype (float32, or float64 for float64 input), with
``rstd = 1 / sqrt(var + eps)`` and the biased variance. Backward, with
``xhat = (x - mean) * rstd`` and ``gw = grad * weight`` (or ``grad``)::

    grad_x      = rstd * (gw - mean(gw) - xhat * mean(gw * xhat))   per row
    grad_weight = sum over rows of grad * xhat
    grad_bias   = sum over rows of grad

The weight and bias gradients come back in the accumulation dtype (the autograd
engine casts them to the parameters' dtype). A row of length 0 has mean 0 and
rstd NaN, as in PyTorch.

Squared deviations overflow float32 past |x - mean| ~ 1.8e19 (var = inf, rstd = 0, y = 0):
``reciprocal_std`` then scales the deviations down by a power of two before squaring (exact, so
rows that do not overflow give the same bits either way); kernels/norm.cu does the same.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import kernels

_SUFFIXES = ("float", "double", "gf_half")
_VECTOR_WIDTHS = {"float": 4, "double": 2, "gf_half": 8}  # elements per 16-byte load

# Rows are normalised by the row-cached kernels (gf_norm_forward_cached, gf_norm_backward_fused:
# each input read once, held in registers) wherever the row fits in a block's registers; longer
# rows go to the long-row kernels (gf_norm_forward: Welford, then a second read;
# gf_norm_backward + gf_norm_param_grad), which take rows of any length.

# Packs (of one vector width) a thread may hold in registers, and the largest blocks. The forward
# holds x only, under __launch_bounds__(1024) (64 registers); the fused backward holds g, x and
# two column sums per element, under __launch_bounds__(512, 1) (128 registers). The element caps
# keep every instantiation free of spills (nvcc --resource-usage, sm_80 and sm_90).
_HELD_PACKS = (1, 2, 4, 8)
_FORWARD_MAX_BLOCK = 1024
_BACKWARD_MAX_BLOCK = 512
_FORWARD_MAX_ELEMENTS = {"float": 16, "gf_half": 32, "double": 8}
_BACKWARD_MAX_ELEMENTS = {"float": 16, "gf_half": 16, "double": 8}


def _forward_packs(suffix: str, width: int) -> tuple[int, ...]:
    """The PACKS instantiations of ``gf_norm_forward_cached<suffix, width, PACKS>``."""
    return tuple(p for p in _HELD_PACKS if p * width <= _FORWARD_MAX_ELEMENTS[suffix])


def _backward_packs(suffix: str, width: int) -> tuple[int, ...]:
    """The PACKS instantiations of ``gf_norm_backward_fused<suffix, width, PACKS>``."""
    return tuple(p for p in _HELD_PACKS if p * width <= _BACKWARD_MAX_ELEMENTS[suffix])


KERNELS = (
    tuple(
        f"gf_norm_{op}<{suffix}, {width}>"
        for op in ("forward", "backward")
        for suffix in _SUFFIXES
        for width in (1, _VECTOR_WIDTHS[suffix])
    )
    + tuple(f"gf_norm_param_grad<{suffix}>" for suffix in _SUFFIXES)
    + tuple(
        f"gf_norm_{op}<{suffix}, {width}, {packs}>"
        for op, packs_of in (("forward_cached", _forward_packs), ("backward_fused", _backward_packs))
        for suffix in _SUFFIXES
        for width in (1, _VECTOR_WIDTHS[suffix])
        for packs in packs_of(suffix, width)
    )
    + ("gf_norm_column_sum<float>", "gf_norm_column_sum<double>")
)

# Rows of the weight/bias-gradient kernel handled by one block at a time (its blockDim.x / 32).
_PARAM_ROW_LANES = 8


def accumulation_dtype(dtype) -> np.dtype:
    """float64 for float64 data, float32 otherwise (float16 statistics accumulate in float32)."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _empty_statistics(xp, rows: int, acc):
    """Mean 0 and rstd NaN for rows of length 0 (PyTorch's values)."""
    return xp.zeros(rows, dtype=acc), xp.full(rows, np.nan, dtype=acc)


def reciprocal_std(xp, centred, axis, eps: float):
    """``1 / sqrt(mean(centred**2) + eps)`` over ``axis`` (kept), without overflowing the squares.

    The deviations are divided by ``2**k`` (k >= 0: the exponent of the largest one, so they stay
    at most 1) before squaring and the result is scaled back: exact for finite rows, and rows of
    huge values get their true rstd rather than 0. Rows holding inf or NaN keep their inf/NaN statistics.
    """
    if centred.size == 0:
        return 1.0 / xp.sqrt(xp.mean(centred * centred, axis=axis, keepdims=True) + eps)
    exponent = xp.maximum(xp.frexp(xp.max(xp.abs(centred), axis=axis, keepdims=True))[1], 0)
    scaled = xp.ldexp(centred, -exponent)
    variance = xp.mean(scaled * scaled, axis=axis, keepdims=True)
    tiny_eps = xp.ldexp(xp.full(variance.shape, eps, variance.dtype), -2 * exponent)
    return xp.ldexp((1.0 / xp.sqrt(variance + tiny_eps)).astype(variance.dtype, copy=False), -exponent)


# -- NumPy reference -------------------------------------------------------------------------
def numpy_layer_norm_forward(x, weight, bias, eps):
    """``(y, mean, rstd)`` of layer norm over the last axis of 2-D ``x``; weight/bias are ``(cols,)`` or None."""
    acc = accumulation_dtype(x.dtype)
    rows, cols = x.shape
    if cols == 0:
        return x.copy(), *_empty_statistics(np, rows, acc)
    values = x.astype(acc, copy=False)
    mean = values.mean(axis=1)
    out = values - mean[:, None]
    with np.errstate(over="ignore"):  # an overflow is caught below
        var = np.mean(out * out, axis=1)
    rstd = 1.0 / np.sqrt(var + eps)
    if np.isinf(var).any():  # squares overflowed (|x - mean| > ~1.8e19 in float32): scale them down
        rstd = reciprocal_std(np, out, 1, eps)[:, 0]
    out *= rstd[:, None]
    if weight is not None:
        out *= weight
    if bias is not None:
        out += bias
    return out.astype(x.dtype, copy=False), mean, rstd


def numpy_layer_norm_backward(grad, x, mean, rstd, weight, need_weight_grad, need_bias_grad):
    """``(grad_x, grad_weight or None, grad_bias or None)`` of ``numpy_layer_norm_forward``."""
    acc = accumulation_dtype(x.dtype)
    rows, cols = x.shape
    grad_values = grad.astype(acc, copy=False)
    grad_weight = np.zeros(cols, dtype=acc) if need_weight_grad else None
    grad_bias = grad_values.sum(axis=0) if need_bias_grad else None
    if cols == 0 or rows == 0:
        return np.zeros(x.shape, dtype=x.dtype), grad_weight, grad_bias
    rstd_column = rstd.astype(acc, copy=False)[:, None]
    xhat = (x.astype(acc, copy=False) - mean.astype(acc, copy=False)[:, None]) * rstd_column
    if need_weight_grad:
        grad_weight = (grad_values * xhat).sum(axis=0)
    scaled = grad_values if weight is None else grad_values * weight.astype(acc, copy=False)
    mean_scaled = scaled.mean(axis=1, keepdims=True)
    mean_projection = (scaled * xhat).mean(axis=1, keepdims=True)
    grad_x = rstd_column * (scaled - mean_scaled - xhat * mean_projection)
    return grad_x.astype(x.dtype, copy=False), grad_weight, grad_bias


# -- CUDA launchers --------------------------------------------------------------------------
def _output(cupy, given, shape, dtype, name: str):
    """``given`` after checking it can take the result, or a new empty array."""
    return kernels.output_buffer(cupy, given, shape, dtype, "layer_norm", name)


def _parameter(cupy, value, dtype):
    """weight/bias as a contiguous array of x's dtype (the kernels read them as x's type)."""
    if value is None:
        return None
    return cupy.ascontiguousarray(value.reshape(-1).astype(dtype, copy=False))


def _block_size(packs: int) -> int:
    """Threads per row: a multiple of 32 covering the row's loads, more for very long rows."""
    if packs > 4096:
        return 1024
    if packs > 1024:
        return 512
    return min(256, max(32, (packs + 31) // 32 * 32))


def _row_grid(rows: int, block: int, device_index: int) -> int:
    return kernels.grid_size(rows, 1, device_index, blocks_per_sm=max(1, 2048 // block))


def _warp_multiple(threads: int) -> int:
    """``threads`` rounded up to a whole number of warps (the block reductions need whole warps)."""
    return (threads + 31) // 32 * 32


def _cached_config(packs: int, held_packs: tuple[int, ...], max_block: int) -> tuple[int, int] | None:
    """``(threads, packs per thread)`` holding a row of ``packs`` packs in registers, or None.

    Few packs per thread and blocks of 128 to 512 threads come first (several resident blocks
    per multiprocessor hide one row's load latency); 8 packs per thread only where the largest
    block needs them. None when the row does not fit: the caller uses the long-row kernels.
    """
    for limit in (128, 256, 512, 1024):
        if limit > max_block:
            break
        for held in held_packs:
            if held <= 4 and packs <= limit * held:
                return _warp_multiple(-(-packs // held)), held
    for held in held_packs:
        if held > 4 and packs <= max_block * held:
            return _warp_multiple(-(-packs // held)), held
    return None


@functools.cache
def _registers(name: str, device_index: int) -> int:
    """Registers per thread of a compiled kernel, or 0 where CuPy cannot tell (then only threads bound it)."""
    try:
        return int(kernels.get_kernel("norm", name, device_index).num_regs)
    except (AttributeError, RuntimeError):  # only a tuning hint: the launch itself reports real errors
        return 0


def _resident_grid(name: str, block: int, rows: int, device_index: int) -> int:
    """Blocks for a grid-stride loop over rows: at most one wave of resident blocks, rows spread evenly.

    A block past the resident wave would start only when a whole block's rows are done, leaving
    the multiprocessors half idle at the end; and fewer blocks keep the partial sums small.
    """
    per_sm = max(1, min(32, 2048 // block))
    registers = _registers(name, device_index)
    if registers > 0:
        per_warp = -(-registers * 32 // 256) * 256  # registers are allocated per warp in units of 256
        per_sm = max(1, min(per_sm, 65536 // (per_warp * (block // 32))))
    capacity = kernels.multiprocessor_count(device_index) * per_sm
    rows_per_block = -(-rows // capacity)
    return -(-rows // rows_per_block)


def _column_sum(partial, out, device_index: int) -> None:
    """``out[:] = partial.sum(axis=0)`` for a C-contiguous ``(parts, cols)`` partial buffer."""
    parts, cols = partial.shape
    grid = kernels.grid_size((cols + 31) // 32, 1, device_index, blocks_per_sm=4)
    args = (partial, out, np.int64(parts), np.int64(cols))
    kernels.launch("norm", f"gf_norm_column_sum<{kernels.dtype_suffix(partial.dtype)}>", partial, grid, 512, args)


def cuda_layer_norm_forward(x, weight, bias, eps, out=None, mean_out=None, rstd_out=None):
    """``(y, mean, rstd)`` like ``numpy_layer_norm_forward``.

    ``gf_norm_forward_cached`` (the row held in registers) where the row fits, else the
    long-row ``gf_norm_forward`` (Welford, then a second read).
    """
    # Outputs and temporaries belong on x's GPU, whichever GPU is current for the caller.
    with x.device:
        return _forward(x, weight, bias, eps, out, mean_out, rstd_out)


def _forward(x, weight, bias, eps, out, mean_out, rstd_out):
    import cupy

    x = cupy.ascontiguousarray(x)
    rows, cols = x.shape
    suffix = kernels.dtype_suffix(x.dtype)
    acc = accumulation_dtype(x.dtype)
    y = _output(cupy, out, x.shape, x.dtype, "out")
    mean = _output(cupy, mean_out, (rows,), acc, "mean_out")
    rstd = _output(cupy, rstd_out, (rows,), acc, "rstd_out")
    if rows == 0:
        return y, mean, rstd
    if cols == 0:
        mean.fill(0)
        rstd.fill(np.nan)
        return y, mean, rstd
    weight, bias = _parameter(cupy, weight, x.dtype), _parameter(cupy, bias, x.dtype)
    width = kernels.pack_width(x.dtype, cols, x, y, weight, bias)
    config = _cached_config(cols // width, _forward_packs(suffix, width), _FORWARD_MAX_BLOCK)
    if config is None:
        name = f"gf_norm_forward<{suffix}, {width}>"
        block = _block_size(cols // width)
        grid = _row_grid(rows, block, x.device.id)
    else:
        block, held = config
        name = f"gf_norm_forward_cached<{suffix}, {width}, {held}>"
        grid = _resident_grid(name, block, rows, x.device.id)
    args = (
        x,
        x if weight is None else weight,  # never read without the flag
        x if bias is None else bias,
        y,
        mean,
        rstd,
        np.int64(rows),
        np.int64(cols),
        np.float64(eps),
        np.int64(weight is not None),
        np.int64(bias is not None),
    )
    kernels.launch("norm", name, x, grid, block, args)
    return y, mean, rstd


def _param_chunks(rows: int, cols: int, device_index: int) -> tuple[int, int]:
    """``(rows_per_chunk, chunks)``: enough (column tile, row chunk) tiles to fill the GPU."""
    column_tiles = (cols + 31) // 32
    wanted = kernels.multiprocessor_count(device_index) * 8
    chunks = max(1, min((rows + _PARAM_ROW_LANES - 1) // _PARAM_ROW_LANES, -(-wanted // column_tiles)))
    rows_per_chunk = -(-rows // chunks)
    return rows_per_chunk, -(-rows // rows_per_chunk)


def cuda_layer_norm_backward(
    grad,
    x,
    mean,
    rstd,
    weight,
    need_weight_grad,
    need_bias_grad,
    grad_input_out=None,
    weight_grad_out=None,
    bias_grad_out=None,
):
    """``(grad_x, grad_weight or None, grad_bias or None)`` like ``numpy_layer_norm_backward``.

    Where the row fits, ``gf_norm_backward_fused`` reads g and x once, writes grad_x and
    per-block column sums that ``gf_norm_column_sum`` adds up. Longer rows go to
    ``gf_norm_backward`` (grad_x, one block per row) and ``gf_norm_param_grad`` (per-chunk
    column sums that one CuPy sum over chunks turns into the weight/bias gradients).
    """
    # The engine runs backward without making x's GPU current: allocate and launch on x's GPU.
    with x.device:
        outputs = (grad_input_out, weight_grad_out, bias_grad_out)
        return _backward(grad, x, mean, rstd, weight, need_weight_grad, need_bias_grad, *outputs)


def _backward(
    grad, x, mean, rstd, weight, need_weight_grad, need_bias_grad, grad_input_out, weight_grad_out, bias_grad_out
):
    import cupy

    x = cupy.ascontiguousarray(x)
    rows, cols = x.shape
    suffix = kernels.dtype_suffix(x.dtype)
    acc = accumulation_dtype(x.dtype)
    grad = cupy.ascontiguousarray(grad.astype(x.dtype, copy=False))
    mean = cupy.ascontiguousarray(mean.astype(acc, copy=False))
    rstd = cupy.ascontiguousarray(rstd.astype(acc, copy=False))
    grad_x = _output(cupy, grad_input_out, x.shape, x.dtype, "grad_input_out")
    grad_weight = _output(cupy, weight_grad_out, (cols,), acc, "weight_grad_out") if need_weight_grad else None
    grad_bias = _output(cupy, bias_grad_out, (cols,), acc, "bias_grad_out") if need_bias_grad else None
    if rows == 0 or cols == 0:
        grad_x.fill(0)
        for result in (grad_weight, grad_bias):
            if result is not None:
                result.fill(0)
        return grad_x, grad_weight, grad_bias
    weight = _parameter(cupy, weight, x.dtype)
    width = kernels.pack_width(x.dtype, cols, grad, x, grad_x, weight)
    # The first arguments of both input-gradient kernels; the weight is never read without its flag.
    row_args = (grad, x, mean, rstd, x if weight is None else weight, grad_x)
    config = _cached_config(cols // width, _backward_packs(suffix, width), _BACKWARD_MAX_BLOCK)
    if config is not None:
        block, held = config
        name = f"gf_norm_backward_fused<{suffix}, {width}, {held}>"
        grid = _resident_grid(name, block, rows, x.device.id)
        partial_weight = cupy.empty((grid, cols), dtype=acc) if need_weight_grad else None
        partial_bias = cupy.empty((grid, cols), dtype=acc) if need_bias_grad else None
        args = (
            *row_args,
            mean if partial_weight is None else partial_weight,  # never written without the flag
            mean if partial_bias is None else partial_bias,
            np.int64(rows),
            np.int64(cols),
            np.int64(weight is not None),
            np.int64(need_weight_grad),
            np.int64(need_bias_grad),
        )
        kernels.launch("norm", name, x, grid, block, args)
        for partial, result in ((partial_weight, grad_weight), (partial_bias, grad_bias)):
            if partial is not None:
                _column_sum(partial, result, x.device.id)
        return grad_x, grad_weight, grad_bias
    block = _block_size(cols // width)
    args = (*row_args, np.int64(rows), np.int64(cols), np.int64(weight is not None))
    grid = _row_grid(rows, block, x.device.id)
    kernels.launch("norm", f"gf_norm_backward<{suffix}, {width}>", x, grid, block, args)
    if need_weight_grad or need_bias_grad:
        rows_per_chunk, chunks = _param_chunks(rows, cols, x.device.id)
        partial_weight = cupy.empty((chunks, cols), dtype=acc) if need_weight_grad else mean
        partial_bias = cupy.empty((chunks, cols), dtype=acc) if need_bias_grad else mean
        tiles = chunks * ((cols + 31) // 32)
        args = (
            grad,
            x,
            mean,
            rstd,
            partial_weight,  # ``mean`` stands in where not needed: never written without the flag
            partial_bias,
            np.int64(rows),
            np.int64(cols),
            np.int64(rows_per_chunk),
            np.int64(chunks),
            np.int64(need_weight_grad),
            np.int64(need_bias_grad),
        )
        grid = kernels.grid_size(tiles, 1, x.device.id)
        kernels.launch("norm", f"gf_norm_param_grad<{suffix}>", x, grid, 32 * _PARAM_ROW_LANES, args)
        if need_weight_grad:
            cupy.sum(partial_weight, axis=0, out=grad_weight)
        if need_bias_grad:
            cupy.sum(partial_bias, axis=0, out=grad_bias)
    return grad_x, grad_weight, grad_bias
