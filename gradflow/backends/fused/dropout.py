"""Dropout in one pass: ``(x * mask / (1 - p), mask)`` with ``mask`` a uint8 array of 0/1.

The CPU backend draws the mask from its NumPy generator (``backend.rand(shape) < 1 - p``).
The CUDA kernel ``gf_dropout_forward`` draws it from Philox4x32-10, a counter-based
generator, keyed by the CuPy backend's ``(seed, draws)`` state:

- key = the seed as 64 bits (``seed mod 2**64``), split ``(low word, high word)``;
- counter = ``(group low word, group high word, offset low word, offset high word)``, where
  ``group = element_index // 4`` (elements in C order) and ``offset`` = the draw number;
- one Philox call gives the four 32-bit words of elements ``4*group .. 4*group + 3``;
  word ``u`` becomes the uniform ``(u >> 8) * 2**-24`` in [0, 1), and the element is kept
  when that uniform is below ``1 - p``.

``philox_reference`` computes the same uniforms in NumPy bit for bit, so the CUDA tests
check masks exactly. With ``p == 1`` the scale is 0 (no 0/0) and every element is dropped;
dropped inf/NaN inputs give NaN, as PyTorch's ``x * mask * scale`` does.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels

KERNELS = tuple(f"gf_dropout_forward<{suffix}, {vec4}>" for suffix in ("float", "double", "gf_half") for vec4 in (0, 1))

_PHILOX_M0, _PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
_PHILOX_W0, _PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
_WORD = 0xFFFFFFFF
_BLOCK = 256


def _scale(p: float) -> float:
    """1 / (1 - p), and 0 for p == 1 (everything is dropped)."""
    return 0.0 if p == 1 else 1.0 / (1.0 - p)


def keep_threshold(p: float) -> int:
    """The integer ``t`` with ``(u >> 8) < t`` exactly when ``(u >> 8) * 2**-24 < 1 - p``.

    Scaling by a power of two is exact in float64, and for an integer m, m < v iff m < ceil(v).
    """
    return math.ceil((1.0 - p) * 2.0**24)


# -- NumPy reference -------------------------------------------------------------------------
@np.errstate(divide="ignore", invalid="ignore", over="ignore")  # PyTorch computes inf/NaN here silently
def numpy_dropout_forward(backend, x, p):
    """``(x * mask / (1 - p), mask)`` with ``mask = backend.rand(x.shape) < 1 - p`` as uint8 (0 <= p <= 1)."""
    keep = np.asarray(backend.rand(x.shape, x.dtype) < (1.0 - p))
    # The same products as before the fused primitive existed, so CPU results are unchanged.
    scaled_mask = keep.astype(x.dtype) * x.dtype.type(_scale(p))
    return x * scaled_mask, keep.view(np.uint8)


def philox4x32_10(counters, key) -> np.ndarray:
    """Philox4x32-10 of ``counters`` (``(m, 4)`` uint32) under ``key`` (two uint32 words): ``(m, 4)`` uint32."""
    c0, c1, c2, c3 = (np.asarray(counters, dtype=np.uint32)[:, k].copy() for k in range(4))
    k0, k1 = int(key[0]) & _WORD, int(key[1]) & _WORD
    for _ in range(10):
        product0 = c0.astype(np.uint64) * np.uint64(_PHILOX_M0)
        product1 = c2.astype(np.uint64) * np.uint64(_PHILOX_M1)
        hi0, lo0 = (product0 >> np.uint64(32)).astype(np.uint32), product0.astype(np.uint32)
        hi1, lo1 = (product1 >> np.uint64(32)).astype(np.uint32), product1.astype(np.uint32)
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint32(k0), lo1, hi0 ^ c3 ^ np.uint32(k1), lo0
        k0, k1 = (k0 + _PHILOX_W0) & _WORD, (k1 + _PHILOX_W1) & _WORD
    return np.stack([c0, c1, c2, c3], axis=1)


def philox_words(seed: int, offset: int, n: int) -> np.ndarray:
    """The kernel's 32-bit random word for each of elements ``0 .. n-1`` (uint32, shape ``(n,)``)."""
    seed, offset = int(seed) % 2**64, int(offset) % 2**64
    groups = np.arange((n + 3) // 4, dtype=np.uint64)
    counters = np.stack(
        [
            (groups & np.uint64(_WORD)).astype(np.uint32),
            (groups >> np.uint64(32)).astype(np.uint32),
            np.full(groups.shape, offset & _WORD, dtype=np.uint32),
            np.full(groups.shape, offset >> 32, dtype=np.uint32),
        ],
        axis=1,
    )
    return philox4x32_10(counters, (seed & _WORD, seed >> 32)).reshape(-1)[:n]


def philox_reference(seed: int, offset: int, n: int) -> np.ndarray:
    """The uniforms in [0, 1) (float64, exact) that ``gf_dropout_forward`` draws for ``n`` elements."""
    return (philox_words(seed, offset, n) >> np.uint32(8)).astype(np.float64) * 2.0**-24


def dropout_mask_reference(seed: int, offset: int, shape, p: float) -> np.ndarray:
    """The uint8 keep-mask the CUDA kernel writes for an input of ``shape``."""
    n = math.prod(shape)
    return (philox_reference(seed, offset, n) < 1.0 - p).astype(np.uint8).reshape(shape)


# -- CUDA launcher ---------------------------------------------------------------------------
def cuda_dropout_forward(x, p, seed, offset, out=None, mask_out=None):
    """``(y, mask)`` like ``numpy_dropout_forward``, with the mask from Philox keyed by ``(seed, offset)``."""
    # Outputs belong on x's GPU, whichever GPU is current for the caller.
    with x.device:
        return _forward(x, p, seed, offset, out, mask_out)


def _forward(x, p, seed, offset, out, mask_out):
    import cupy

    shape = x.shape  # ascontiguousarray turns a 0-d array 1-d; the outputs keep x's shape (the kernel reads flat)
    x = cupy.ascontiguousarray(x)
    suffix = kernels.dtype_suffix(x.dtype)
    y = kernels.output_buffer(cupy, out, shape, x.dtype, "dropout", "out")
    mask = kernels.output_buffer(cupy, mask_out, shape, np.uint8, "dropout", "mask_out")
    n = x.size
    if n == 0:
        return y, mask
    seed, offset = int(seed) % 2**64, int(offset) % 2**64
    group_bytes = 4 * x.itemsize
    vec4 = int(x.data.ptr % group_bytes == 0 and y.data.ptr % group_bytes == 0 and mask.data.ptr % 4 == 0)
    groups = (n + 3) // 4
    args = (
        x,
        y,
        mask,
        np.int64(n),
        np.int64(seed & _WORD),
        np.int64(seed >> 32),
        np.int64(offset & _WORD),
        np.int64(offset >> 32),
        np.int64(keep_threshold(p)),
        np.float64(_scale(p)),
    )
    grid = kernels.grid_size(groups, _BLOCK, x.device.id)
    kernels.launch("dropout", f"gf_dropout_forward<{suffix}, {vec4}>", x, grid, _BLOCK, args)
    return y, mask
