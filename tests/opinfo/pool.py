"""Op table entries for pooling: max_pool2d (with and without indices), avg_pool2d, adaptive_avg_pool2d.

The references loop over output positions and read each window's input rows and columns
directly (PyTorch's window rules: padding at most half the dilated kernel, ceil_mode windows
that may not start in the right padding, avg_pool2d's divisors with and without the padding).
Max pooling draws distinct values a fixed spacing apart, so no finite difference flips the
argmax; its second derivative in the input is zero, and the one in the output gradient (the
gradient's routing) is still checked.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import gradflow.nn.functional as F

from . import OpInfo, Sample, values
from .reduce import _distinct


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # the last window may not start in the padding
        out -= 1
    return out


def _max_pool2d_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    height, width = x.shape[-2:]
    out_h, out_w = (_out_size(*args, ceil_mode) for args in zip((height, width), kernel, stride, padding, dilation))
    out = np.empty(x.shape[:-2] + (out_h, out_w), dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64)
    for i in range(out_h):
        for j in range(out_w):
            rows = np.array([i * stride[0] - padding[0] + a * dilation[0] for a in range(kernel[0])])
            cols = np.array([j * stride[1] - padding[1] + b * dilation[1] for b in range(kernel[1])])
            rows, cols = rows[(rows >= 0) & (rows < height)], cols[(cols >= 0) & (cols < width)]
            window = x[..., rows, :][..., cols].reshape(x.shape[:-2] + (-1,))
            best = window.argmax(-1)  # the first maximum, as PyTorch scans a window row by row
            out[..., i, j] = np.take_along_axis(window, best[..., None], -1)[..., 0]
            indices[..., i, j] = (rows[:, None] * width + cols[None, :]).ravel()[best]
    return (out, indices) if return_indices else out


def _avg_pool2d_ref(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding = _pair(padding)
    height, width = x.shape[-2:]
    out_h, out_w = (_out_size(*args, 1, ceil_mode) for args in zip((height, width), kernel, stride, padding))
    out = np.empty(x.shape[:-2] + (out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride[0] - padding[0], j * stride[1] - padding[1]
            # A window ends at the end of the padding (a ceil_mode window may reach past it).
            bottom, right = min(top + kernel[0], height + padding[0]), min(left + kernel[1], width + padding[1])
            padded_count = (bottom - top) * (right - left)
            top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, height), min(right, width)
            total = x[..., top:bottom, left:right].sum((-2, -1))
            if divisor_override is not None:
                divisor = divisor_override
            else:
                divisor = padded_count if count_include_pad else (bottom - top) * (right - left)
            out[..., i, j] = total / divisor
    return out


def _adaptive_avg_pool2d_ref(x, output_size):
    sizes = _pair(output_size) if isinstance(output_size, int) or output_size is None else output_size
    sizes = [size if out is None else out for out, size in zip(sizes, x.shape[-2:])]
    bins = [
        [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)] for size, out in zip(x.shape[-2:], sizes)
    ]
    out = np.empty(x.shape[:-2] + tuple(sizes), dtype=x.dtype)
    for i, (top, bottom) in enumerate(bins[0]):
        for j, (left, right) in enumerate(bins[1]):
            out[..., i, j] = x[..., top:bottom, left:right].mean((-2, -1))
    return out


def _leading(draw):
    """(C,) or (N, C): pooling takes 3-D and 4-D inputs."""
    return draw(st.sampled_from([(2,), (1, 2), (2, 1)]))


def _maybe_int(draw, pair: tuple):
    """A square pair, sometimes as the one int PyTorch also accepts."""
    return pair[0] if pair[0] == pair[1] and draw(st.booleans()) else pair


def _window_sample(max_pool: bool, return_indices: bool = False):
    def sample(draw):
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(2)) if max_pool else (1, 1)
        reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
        stride = draw(st.sampled_from([None, 1, 2, (1, 2), (2, 3)]))
        # Max pooling: at least one dilated kernel, so that every window has a tap inside the input.
        size = tuple((r if max_pool else max(1, r - 2 * p)) + draw(st.integers(0, 3)) for r, p in zip(reach, padding))
        shape = _leading(draw) + size
        x = _distinct(draw, shape) if max_pool else values(draw, shape)
        kwargs = {"stride": stride, "padding": _maybe_int(draw, padding)}
        kwargs["ceil_mode"] = draw(st.booleans())
        if max_pool:
            kwargs["dilation"] = dilation
            if return_indices:
                kwargs["return_indices"] = True
        else:
            kwargs["count_include_pad"] = draw(st.booleans())
            kwargs["divisor_override"] = draw(st.sampled_from([None, None, 3]))
        return Sample((x, _maybe_int(draw, kernel)), kwargs)

    return sample


def _adaptive_sample(draw):
    shape = _leading(draw) + tuple(draw(st.integers(1, 5)) for _ in range(2))
    # Outputs smaller, equal and larger than the input (overlapping bins); None keeps a size.
    sizes = tuple(draw(st.one_of(st.none(), st.integers(1, 6))) for _ in range(2))
    sizes = (1, None) if sizes == (None, None) else sizes  # a bare None is not an output_size in PyTorch
    return Sample((values(draw, shape), _maybe_int(draw, sizes)))


OPS = [
    OpInfo("max_pool2d", F.max_pool2d, _max_pool2d_ref, _window_sample(max_pool=True), max_examples=16),
    OpInfo(
        "max_pool2d_return_indices",
        F.max_pool2d,
        _max_pool2d_ref,
        _window_sample(max_pool=True, return_indices=True),
        max_examples=8,
    ),
    OpInfo("avg_pool2d", F.avg_pool2d, _avg_pool2d_ref, _window_sample(max_pool=False), max_examples=16),
    OpInfo("adaptive_avg_pool2d", F.adaptive_avg_pool2d, _adaptive_avg_pool2d_ref, _adaptive_sample, max_examples=12),
]
