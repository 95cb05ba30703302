"""Bias + activation: ``y = act(x + bias)`` and its backward (``kernels/elementwise.cu``).

The primitives, as both backends expose them:

- ``bias_act_forward(x, bias, activation) -> y``: ``bias`` has shape ``(C,)`` with
  ``C = x.shape[-1]`` and is added along the last axis, or is None. ``y`` has x's dtype.
- ``bias_act_backward(grad, x, bias, activation, need_bias_grad) -> (grad_x, grad_bias)``:
  recomputes ``z = x + bias`` and returns ``grad * act'(z)`` in x's dtype and, when
  ``need_bias_grad``, that gradient summed over every axis but the last (shape ``(C,)``,
  the bias's dtype, or x's without a bias); otherwise None.

Activations: ``identity``, ``relu``, ``gelu`` (exact, with erf), ``gelu_tanh`` (torch's
``approximate='tanh'``), ``silu``, ``tanh``, ``sigmoid``. float16 is computed in float32 and
rounded once at the end, in the references and in the kernels alike.

The CUDA side launches one elementwise kernel per call (16-byte packs where alignment and
the row length allow) or, when the bias gradient is wanted, a tiled kernel that writes
grad_x and per-chunk column sums into a small ``(chunks, C)`` buffer in the accumulation
dtype (float32, or float64 for float64), which one CuPy ``sum(axis=0)`` then reduces.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from ...errors import ShapeError, shape_str
from .. import kernels

# Position = the activation's code in kernels/elementwise.cu (GF_ACT_*).
ACTIVATIONS = ("identity", "relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid")

_FAMILY = "elementwise"
_SUFFIXES = ("float", "double", "gf_half")
# Elements per 16-byte pack, by template argument.
_PACK = {"float": 4, "double": 2, "gf_half": 8}
_BLOCK = 256

KERNELS = (
    *(f"gf_elementwise_bias_act_forward<{s}, {v}>" for s in _SUFFIXES for v in (1, _PACK[s])),
    *(f"gf_elementwise_bias_act_backward<{s}, {v}>" for s in _SUFFIXES for v in (1, _PACK[s])),
    *(f"gf_elementwise_bias_act_backward_bias<{s}>" for s in _SUFFIXES),
)

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_CUBIC = 0.044715


def activation_code(activation: str) -> int:
    """The kernel's code for ``activation``; an unknown name raises ValueError listing the known ones."""
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS.index(activation)
    raise ValueError(f"bias_act: unknown activation {activation!r}; the known ones are {', '.join(ACTIVATIONS)}")


def _check_operands(op: str, x, bias, need_bias_grad: bool = False, grad=None) -> None:
    if grad is not None and tuple(grad.shape) != tuple(x.shape):
        raise ShapeError(
            f"{op}: grad has shape {shape_str(grad.shape)} but x has shape {shape_str(x.shape)}; "
            "pass the gradient of the output, which has x's shape"
        )
    if bias is None and not need_bias_grad:
        return
    if x.ndim == 0:
        raise ShapeError(f"{op}: a bias needs x with at least one dimension, got a 0-d x; reshape x to (..., C)")
    if bias is not None and tuple(bias.shape) != (x.shape[-1],):
        raise ShapeError(
            f"{op}: bias has shape {shape_str(bias.shape)} but x has shape {shape_str(x.shape)}; "
            f"the bias must have shape [{x.shape[-1]}], one value per element of x's last dimension"
        )


def _compute_dtype(dtype) -> type:
    # float16 (and any narrower float) is computed in float32, as the kernels do.
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


# -- NumPy references --------------------------------------------------------------
def _gelu_tanh_inner(z):
    return _SQRT_2_OVER_PI * (z + _GELU_TANH_CUBIC * z * z * z)


_FORWARD = {
    "identity": lambda z: z.copy(),
    "relu": lambda z: np.maximum(z, 0),  # keeps NaN, as torch does
    # Phi(z) as erfc(-z / sqrt 2) / 2, which does not cancel for z << 0 (as the kernel computes it).
    "gelu": lambda z: 0.5 * z * scipy.special.erfc(z * -_INV_SQRT_2),
    # (1 + tanh(u)) / 2 = sigmoid(2u), which does not cancel for z << 0 either.
    "gelu_tanh": lambda z: z * scipy.special.expit(2 * _gelu_tanh_inner(z)),
    "silu": lambda z: z * scipy.special.expit(z),
    "tanh": np.tanh,
    "sigmoid": scipy.special.expit,  # stable for any |z|
}


def _gelu_backward(g, z):
    cdf = 0.5 * scipy.special.erfc(z * -_INV_SQRT_2)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return g * (cdf + z * pdf)


def _gelu_tanh_backward(g, z):
    # With s = sigmoid(2u) = (1 + tanh u) / 2: d/dz [z s] = s + z * 2 s (1 - s) * du/dz.
    s = scipy.special.expit(2 * _gelu_tanh_inner(z))
    d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_CUBIC * z * z)
    return g * (s + 2 * z * s * (1 - s) * d_inner)


def _silu_backward(g, z):
    s = scipy.special.expit(z)
    return g * (s * (1 + z * (1 - s)))


def _sigmoid_backward(g, z):
    s = scipy.special.expit(z)
    return g * (s * (1 - s))


def _tanh_backward(g, z):
    t = np.tanh(z)
    return g * (1 - t * t)


def _relu_backward(g, z):
    # torch selects (threshold_backward): 0 where z <= 0, even for an infinite gradient, and the
    # gradient itself elsewhere, NaN inputs included. np.where does that but is ~10x slower than
    # a multiply on unpredictable masks, so the select is a bitwise AND with an all-ones/zeros mask.
    ints = np.dtype(f"i{g.dtype.itemsize}")
    keep = ~(z <= 0)
    return (g.view(ints) & -keep.view(np.int8).astype(ints)).view(g.dtype)


_BACKWARD = {
    "identity": lambda g, z: g.copy(),
    "relu": _relu_backward,
    "gelu": _gelu_backward,
    "gelu_tanh": _gelu_tanh_backward,
    "silu": _silu_backward,
    "tanh": _tanh_backward,
    "sigmoid": _sigmoid_backward,
}


def _preactivation(x, bias):
    """x + bias in the compute dtype (x itself when nothing needs doing: callers must not write to it)."""
    compute = _compute_dtype(x.dtype)
    z = x.astype(compute, copy=False)
    if bias is not None:
        z = z + bias.astype(compute, copy=False)
    return z


def numpy_bias_act_forward(x, bias, activation):
    """``activation(x + bias)`` with ``bias`` (C,) over x's last axis, or None; x's dtype."""
    activation_code(activation)
    _check_operands("bias_act_forward", x, bias)
    out = _FORWARD[activation](_preactivation(x, bias))
    return np.asarray(out).astype(x.dtype, copy=False)


def numpy_bias_act_backward(grad, x, bias, activation, need_bias_grad):
    """``(grad * act'(x + bias), grad_bias or None)``; grad_bias sums over all axes but the last."""
    activation_code(activation)
    _check_operands("bias_act_backward", x, bias, need_bias_grad, grad)
    g = grad.astype(_compute_dtype(x.dtype), copy=False)
    grad_x = np.asarray(_BACKWARD[activation](g, _preactivation(x, bias)))
    grad_bias = None
    if need_bias_grad:
        columns = x.shape[-1]
        rows = math.prod(x.shape[:-1])
        bias_dtype = x.dtype if bias is None else bias.dtype
        grad_bias = grad_x.reshape(rows, columns).sum(axis=0).astype(bias_dtype, copy=False)
    return grad_x.astype(x.dtype, copy=False), grad_bias


# -- CUDA launchers ------------------------------------------------------------------
def _pack_width(dtype, columns: int, has_bias: bool, *arrays) -> int:
    """16-byte packs when every pointer is 16-byte aligned and, with a bias, rows hold whole packs."""
    # Without a bias the work is flat: a pack may span two rows (the tail loop takes the rest).
    return kernels.pack_width(dtype, columns if has_bias else None, *arrays)


def _output(out, shape, dtype, what: str):
    import cupy

    return kernels.output_buffer(cupy, out, shape, dtype, "bias_act", what)


def _contiguous_operands(x, bias):
    """C-contiguous x and bias (in x's dtype); the kernels read them as flat arrays."""
    import cupy

    # The shape is irrelevant to the kernels (outputs are allocated with x's own shape), and
    # ascontiguousarray may turn a 0-d array into a 1-d one.
    x_flat = cupy.ascontiguousarray(x).reshape(-1)
    if bias is not None:
        bias = cupy.ascontiguousarray(bias, dtype=x.dtype)
    return x_flat, bias


def cuda_bias_act_forward(x, bias, activation, out=None):
    """``activation(x + bias)`` by ``gf_elementwise_bias_act_forward``; ``out`` (x's shape and dtype) is optional."""
    code = activation_code(activation)
    _check_operands("bias_act_forward", x, bias)
    with x.device:
        suffix = kernels.dtype_suffix(x.dtype)
        out = _output(out, x.shape, x.dtype, "out")
        n = x.size
        if n == 0:
            return out
        columns = x.shape[-1] if x.ndim else 1
        x, bias = _contiguous_operands(x, bias)
        width = _pack_width(x.dtype, columns, bias is not None, x, out)
        grid = kernels.grid_size((n + width - 1) // width, _BLOCK, x.device.id)
        args = (x, x if bias is None else bias, out, np.int64(n), np.int64(columns), np.int64(bias is not None))
        name = f"gf_elementwise_bias_act_forward<{suffix}, {width}>"
        kernels.launch(_FAMILY, name, x, grid, _BLOCK, (*args, np.int64(code)))
    return out


def bias_grad_partial_shape(rows: int, columns: int, device_index: int) -> tuple[int, int]:
    """Shape ``(chunks, columns)`` of the partial-sum buffer the bias-gradient kernel fills."""
    return (_bias_grad_layout(rows, columns, device_index)[2], columns)


def _bias_grad_layout(rows: int, columns: int, device_index: int) -> tuple[int, int, int]:
    """(tile width, rows per chunk, chunks) for ``gf_elementwise_bias_act_backward_bias``.

    A tile is at most 32 columns wide (a power of two, narrower for short rows so a warp
    still reads contiguous memory); rows are cut into chunks so that the tiles fill the GPU
    about eight blocks per multiprocessor deep, and each chunk holds at least one row per lane.
    """
    tile_w = min(32, 1 << max(0, (columns - 1).bit_length()))
    lanes = _BLOCK // tile_w
    col_tiles = -(-columns // tile_w)
    wanted = kernels.multiprocessor_count(device_index) * 8
    chunks = max(1, min(-(-wanted // col_tiles), -(-rows // lanes)))
    rows_per_chunk = max(1, -(-rows // chunks))
    return tile_w, rows_per_chunk, -(-rows // rows_per_chunk)


def cuda_bias_act_backward(grad, x, bias, activation, need_bias_grad, grad_x_out=None, partial_out=None):
    """``(grad_x, grad_bias or None)`` by the backward kernels.

    ``grad_x_out`` (x's shape and dtype) and ``partial_out`` (``bias_grad_partial_shape(...)``,
    float32, or float64 for float64 x) are optional output buffers.
    """
    import cupy

    code = activation_code(activation)
    _check_operands("bias_act_backward", x, bias, need_bias_grad, grad)
    with x.device:
        suffix = kernels.dtype_suffix(x.dtype)
        bias_dtype = x.dtype if bias is None else bias.dtype
        grad_x = _output(grad_x_out, x.shape, x.dtype, "grad_x_out")
        n = x.size
        columns = x.shape[-1] if x.ndim else 1
        grad = cupy.ascontiguousarray(grad, dtype=x.dtype).reshape(-1)
        x, bias = _contiguous_operands(x, bias)
        flags = (np.int64(bias is not None), np.int64(code))
        bias_arg = x if bias is None else bias
        if not need_bias_grad:
            if n:
                width = _pack_width(x.dtype, columns, bias is not None, x, grad, grad_x)
                grid = kernels.grid_size((n + width - 1) // width, _BLOCK, x.device.id)
                name = f"gf_elementwise_bias_act_backward<{suffix}, {width}>"
                args = (grad, x, bias_arg, grad_x, np.int64(n), np.int64(columns), *flags)
                kernels.launch(_FAMILY, name, x, grid, _BLOCK, args)
            return grad_x, None
        if n == 0:
            return grad_x, cupy.zeros((columns,), dtype=bias_dtype)
        rows = n // columns
        tile_w, rows_per_chunk, chunks = _bias_grad_layout(rows, columns, x.device.id)
        accumulate = np.float64 if x.dtype == np.float64 else np.float32
        partial = _output(partial_out, (chunks, columns), np.dtype(accumulate), "partial_out")
        col_tiles = -(-columns // tile_w)
        grid = min(chunks * col_tiles, kernels.multiprocessor_count(x.device.id) * 8)
        args = (grad, x, bias_arg, grad_x, partial, np.int64(rows), np.int64(columns), *flags)
        name = f"gf_elementwise_bias_act_backward_bias<{suffix}>"
        shared = _BLOCK * np.dtype(accumulate).itemsize
        kernels.launch(_FAMILY, name, x, grid, _BLOCK, (*args, np.int64(tile_w), np.int64(rows_per_chunk)), shared)
        grad_bias = partial.sum(axis=0).astype(bias_dtype, copy=False)
    return grad_x, grad_bias
