"""Pooling: max_pool2d, avg_pool2d and adaptive_avg_pool2d.

max_pool2d and avg_pool2d slide the windows of the convolutions' ``Geometry`` over the last two
axes and loop over the kernel offsets only: each offset is one strided slice of the padded input,
covering every window at once. Max pooling remembers which offset won in each window; its
gradient adds the output gradient back at that offset (and the gradient of that is a gather at
the same offsets), so no scatter-add is needed on either backend. Average pooling is a window
sum divided by PyTorch's per-window divisor; its adjoint spreads the gradient back over the
windows. adaptive_avg_pool2d averages bins along one axis, then the other (``BinMean``), with
gathers and masks rather than products with averaging matrices: a NaN or inf reaches only the
output windows that contain it, as in PyTorch. float16 windows are summed in float32.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.function import Function
from ..errors import ArgumentTypeError, ArgumentValueError, DtypeError, ShapeError, shape_str
from ..tensor import Tensor
from ._checks import int_tuple
from .im2col import Geometry, crop_frame, frame_input


def _accumulation(xp, dtype):
    """The dtype window sums are taken in: float32 for float16 (as PyTorch does), else ``dtype``."""
    return xp.float32 if dtype == xp.float16 else dtype


def _lowest(dtype):
    """The fill that never wins a max: -inf for floats, the smallest value for integers."""
    return -math.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _first_inside(geometry: Geometry) -> np.ndarray:
    """Per window, the first kernel offset that lands inside the input (PyTorch's starting argmax)."""
    firsts = []
    for out, step, pad, dil in zip(geometry.out_size, geometry.stride, geometry.padding, geometry.dilation):
        start = np.arange(out) * step - pad
        firsts.append(np.maximum(-(start // dil), 0))  # ceil(-start / dilation): taps before the input are skipped
    return firsts[0][:, None] * geometry.kernel[1] + firsts[1][None, :]


class MaxPool(Function):
    @staticmethod
    def forward(ctx, x, geometry):
        backend = ctx.device.backend
        xp = backend.xp
        framed = frame_input(xp, x, geometry, fill=_lowest(x.dtype))
        out_shape = x.shape[:-2] + geometry.out_size
        best = xp.full(out_shape, _lowest(x.dtype), dtype=x.dtype)
        # Start from the first offset inside the input, so windows of equal -inf (or minimal)
        # values point at a real element, as in PyTorch.
        choice = xp.broadcast_to(backend.asarray(_first_inside(geometry).astype(np.int32)), out_shape).copy()
        floating = x.dtype.kind == "f"
        for offset, (i, j) in enumerate(geometry.taps()):
            window = framed[(..., *geometry.tap(i, j))]
            # Strictly greater keeps the first maximum; a NaN always takes over (it propagates, as in PyTorch).
            take = window > best
            if floating:
                take |= xp.isnan(window)
            xp.copyto(choice, offset, where=take)
            xp.maximum(best, window, out=best)  # maximum propagates NaN too, and beats a masked copy
        ctx.geometry = geometry
        ctx.save_for_backward(choice)
        return best, choice

    @staticmethod
    def backward(ctx, grad, _grad_choice):
        (choice,) = ctx.saved_tensors
        return TapScatter.apply(grad, choice._data, ctx.geometry), None


class TapScatter(Function):
    """Adds each window's value at the position its chosen offset reads (max pooling's gradient)."""

    @staticmethod
    def forward(ctx, values, choice, geometry):
        xp = ctx.device.backend.xp
        framed = xp.zeros(values.shape[:-2] + geometry.frame, dtype=values.dtype)
        zero = xp.zeros((), dtype=values.dtype)
        for offset, (i, j) in enumerate(geometry.taps()):
            framed[(..., *geometry.tap(i, j))] += xp.where(choice == offset, values, zero)
        ctx.geometry, ctx.choice = geometry, choice
        return crop_frame(xp, framed, geometry)

    @staticmethod
    def backward(ctx, grad):
        return TapGather.apply(grad, ctx.choice, ctx.geometry), None, None


class TapGather(Function):
    """Reads, in each window, the value at its chosen offset (the adjoint of TapScatter)."""

    @staticmethod
    def forward(ctx, x, choice, geometry):
        xp = ctx.device.backend.xp
        framed = frame_input(xp, x, geometry)
        out = xp.zeros(choice.shape, dtype=x.dtype)
        for offset, (i, j) in enumerate(geometry.taps()):
            xp.copyto(out, framed[(..., *geometry.tap(i, j))], where=choice == offset)
        ctx.geometry, ctx.choice = geometry, choice
        return out

    @staticmethod
    def backward(ctx, grad):
        return TapScatter.apply(grad, ctx.choice, ctx.geometry), None, None


class WindowMean(Function):
    """Sum over each window divided by ``divisor`` (an array broadcasting against the output)."""

    @staticmethod
    def forward(ctx, x, geometry, divisor):
        xp = ctx.device.backend.xp
        framed = frame_input(xp, x, geometry)
        taps = geometry.taps()
        total = framed[(..., *geometry.tap(*taps[0]))].astype(_accumulation(xp, x.dtype))
        for i, j in taps[1:]:
            total += framed[(..., *geometry.tap(i, j))]
        ctx.geometry, ctx.divisor = geometry, divisor
        if x.dtype.kind != "f":  # integer pooling truncates toward zero, like C++ division
            return (xp.sign(total) * (xp.abs(total) // divisor)).astype(x.dtype)
        return (total / divisor).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return WindowSpread.apply(grad, ctx.geometry, ctx.divisor), None, None


class WindowSpread(Function):
    """Adds grad / divisor to every position of each window (the adjoint of WindowMean)."""

    @staticmethod
    def forward(ctx, grad, geometry, divisor):
        xp = ctx.device.backend.xp
        accumulation = _accumulation(xp, grad.dtype)
        share = (grad / divisor).astype(accumulation, copy=False)
        framed = xp.zeros(grad.shape[:-2] + geometry.frame, dtype=accumulation)
        for i, j in geometry.taps():
            framed[(..., *geometry.tap(i, j))] += share
        ctx.geometry, ctx.divisor = geometry, divisor
        return crop_frame(xp, framed, geometry).astype(grad.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return WindowMean.apply(grad, ctx.geometry, ctx.divisor), None, None


# -- arguments -----------------------------------------------------------------------------------


def _check_input(op: str, input) -> None:
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4) or 0 in input.shape[-3:]:
        raise ShapeError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input with non-zero C, H and W (N may be 0), but "
            f"got input of shape {shape_str(input.shape)}"
        )


def _window_geometry(op: str, input, kernel_size, stride, padding, dilation, ceil_mode) -> Geometry:
    """The Geometry of a pooling call, checked as PyTorch checks it."""
    _check_input(op, input)
    # PyTorch's pooling accepts an int or a sequence of one or two ints for each size.
    kernel = int_tuple(op, "kernel_size", kernel_size, 2, repeat_single=True)
    if stride is None or stride == () or stride == []:
        stride = kernel
    else:
        stride = int_tuple(op, "stride", stride, 2, repeat_single=True)
    padding = int_tuple(op, "padding", padding, 2, repeat_single=True)
    dilation = int_tuple(op, "dilation", dilation, 2, repeat_single=True)
    for name, values in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(values) <= 0:
            raise ShapeError(f"{op}: {name} should be greater than zero, but got {name}={list(values)}")
    if min(padding) < 0:
        raise ShapeError(f"{op}: pad must be non-negative, but got padding={list(padding)}")
    reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(p > r // 2 for p, r in zip(padding, reach)):
        raise ShapeError(
            f"{op}: pad should be at most half of effective kernel size, but got padding={list(padding)}, "
            f"kernel_size={list(kernel)} and dilation={list(dilation)}; reduce the padding"
        )
    if any(p > k // 2 for p, k in zip(padding, kernel)):  # PyTorch checks the undilated kernel too
        raise ShapeError(
            f"{op}: pad should be smaller than or equal to half of kernel size, but got padding={list(padding)} "
            f"and kernel_size={list(kernel)}; reduce the padding"
        )
    in_size = tuple(input.shape[-2:])
    out_size = []
    for size, s, p, r in zip(in_size, stride, padding, reach):
        span = size + 2 * p - r
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + p:  # a window may not start in the right padding
            out -= 1
        out_size.append(out)
    if min(out_size) <= 0:
        raise ShapeError(
            f"{op}: given input of shape {shape_str(input.shape)}, the calculated output size "
            f"{out_size[0]}x{out_size[1]} is too small (kernel_size={list(kernel)}, stride={list(stride)}, "
            f"padding={list(padding)}, dilation={list(dilation)}); use a smaller kernel or a larger input"
        )
    return Geometry(in_size, tuple(out_size), kernel, stride, padding, dilation)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum of each (kH, kW) window of ``input`` (N, C, H, W) or (C, H, W).

    ``stride`` defaults to ``kernel_size``; ``padding`` (implicit -inf, at most half the window)
    and ``ceil_mode`` (keep a last partial window) follow PyTorch. With ``return_indices`` also
    returns, per output, the flat position ``h * W + w`` of the maximum in the input's H x W plane.

    >>> import gradflow as gf
    >>> import gradflow.nn.functional as F
    >>> F.max_pool2d(gf.arange(16.0).reshape(1, 4, 4), 2).tolist()
    [[[5.0, 7.0], [13.0, 15.0]]]
    """
    geometry = _window_geometry("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    out, choice = MaxPool.apply(input, geometry)
    if not return_indices:
        return out
    backend = input._device.backend
    kernel_w = geometry.kernel[1]
    (step_h, step_w), (pad_h, pad_w), (dil_h, dil_w) = geometry.stride, geometry.padding, geometry.dilation
    out_h, out_w = geometry.out_size
    with backend.context():  # new arrays on the input's GPU
        rows = backend.xp.arange(out_h).reshape(-1, 1) * step_h - pad_h + (choice._data // kernel_w) * dil_h
        cols = backend.xp.arange(out_w).reshape(1, -1) * step_w - pad_w + (choice._data % kernel_w) * dil_w
        indices = (rows * geometry.in_size[1] + cols).astype(backend.xp.int64)
    return out, Tensor._wrap(indices, input._device)


def avg_pool2d(
    input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
) -> Tensor:
    """The mean of each (kH, kW) window of ``input`` (N, C, H, W) or (C, H, W), with PyTorch's divisors.

    ``count_include_pad`` counts the zero padding in the divisor (but never the part of a
    ``ceil_mode`` window past the padding); ``divisor_override`` replaces the divisor outright.

    >>> import gradflow as gf
    >>> import gradflow.nn.functional as F
    >>> F.avg_pool2d(gf.ones(1, 2, 2), 2, padding=1, count_include_pad=False).tolist()
    [[[1.0, 1.0], [1.0, 1.0]]]
    """
    geometry = _window_geometry("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise ArgumentValueError("avg_pool2d: divisor must be not zero; pass divisor_override=None for the window size")
    if input._dtype.name == "bool":
        raise DtypeError("avg_pool2d: bool tensors cannot be averaged; convert them with .float() first")
    if divisor_override is not None:
        divisor = np.asarray(divisor_override)
    else:
        sizes = []
        g = geometry
        for size, out, k, step, pad in zip(g.in_size, g.out_size, g.kernel, g.stride, g.padding):
            start = np.arange(out) * step - pad
            end = np.minimum(start + k, size + pad)  # a ceil_mode window stops at the end of the padding
            sizes.append(end - start if count_include_pad else np.minimum(end, size) - np.maximum(start, 0))
        divisor = sizes[0][:, None] * sizes[1][None, :]
    divisor = input._device.backend.asarray(divisor.astype(input._dtype.np))
    return WindowMean.apply(input, geometry, divisor)


def _bins(size: int, out: int) -> tuple:
    """(starts, ends) of the ``out`` bins over ``size`` positions, and (starts, ends) of the bins that
    contain each position (the transposed ranges, for the adjoint). Bin i is
    ``[floor(i * size / out), ceil((i + 1) * size / out))``; the bins holding a position are contiguous."""
    index = np.arange(out)
    starts, ends = (index * size) // out, -(-((index + 1) * size) // out)
    positions = np.arange(size)
    inside = (positions[None, :] >= starts[:, None]) & (positions[None, :] < ends[:, None])  # (out, size)
    if out == 0:  # no bins: no position is in any
        return (starts, ends), (np.zeros(size, np.int64), np.zeros(size, np.int64))
    held = inside.any(axis=0)
    first = np.where(held, np.argmax(inside, axis=0), 0)
    last = np.where(held, out - np.argmax(inside[::-1], axis=0), 0)
    return (starts, ends), (first, last)


class BinMean(Function):
    """``out_i = sum(x_k / pre_k for k in [starts_i, ends_i)) / post_i`` along ``axis`` (``pre``/``post``: 1-D
    divisors or None). Summed with gathers and masks, never with products by zero, so a NaN or inf stays in
    the bins that hold it. The adjoint is the same op over the transposed ranges with pre and post swapped.
    """

    @staticmethod
    def forward(ctx, x, axis, ranges, transposed, pre, post):
        xp = ctx.device.backend.xp
        starts, ends = ranges
        shape = [1] * x.ndim
        shape[axis] = len(starts)
        values = x.astype(_accumulation(xp, x.dtype))
        if pre is not None:
            values = values / pre.astype(values.dtype).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
        total = xp.zeros(x.shape[:axis] + (len(starts),) + x.shape[axis + 1 :], dtype=values.dtype)
        width = int((ends - starts).max(initial=0))
        for k in range(width):
            position = starts + k
            present = position < ends
            taken = xp.take(values, ctx.device.backend.asarray(np.minimum(position, x.shape[axis] - 1)), axis=axis)
            total += xp.where(ctx.device.backend.asarray(present.reshape(shape)), taken, 0)
        if post is not None:
            total /= post.astype(total.dtype).reshape(shape)
        ctx.axis, ctx.ranges, ctx.transposed, ctx.pre, ctx.post = axis, ranges, transposed, pre, post
        return total.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return (
            BinMean.apply(grad, ctx.axis, ctx.transposed, ctx.ranges, ctx.post, ctx.pre),
            None,
            None,
            None,
            None,
            None,
        )


def _bin_mean(input: Tensor, axis: int, out: int) -> Tensor:
    """The mean of each adaptive pooling bin along ``axis`` (``out`` bins)."""
    size = input.shape[axis]
    if size == out:
        return input
    ranges, transposed = _bins(size, out)
    counts = input._device.backend.asarray(np.maximum(ranges[1] - ranges[0], 1).astype(np.float64))
    return BinMean.apply(input, axis, ranges, transposed, None, counts)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed (out_h, out_w): bin i along an axis of size n covers
    ``[floor(i * n / out), ceil((i + 1) * n / out))``. A None in ``output_size`` keeps that size.

    >>> import gradflow as gf
    >>> import gradflow.nn.functional as F
    >>> F.adaptive_avg_pool2d(gf.arange(6.0).reshape(1, 2, 3), (1, 2)).tolist()
    [[[2.0, 3.0]]]
    """
    op = "adaptive_avg_pool2d"
    _check_input(op, input)
    if not input._dtype.is_floating_point:
        raise DtypeError(f"{op}: expected a floating point input, got {input._dtype.name}; convert it with .float()")
    sizes = (output_size, output_size) if isinstance(output_size, int) or output_size is None else output_size
    sizes = tuple(sizes)
    if len(sizes) != 2:
        raise ShapeError(f"{op}: output_size must be an int or a pair (None keeps a size), got {output_size!r}")
    sizes = tuple(size if out is None else out for out, size in zip(sizes, input.shape[-2:]))
    if not all(isinstance(out, int) and out >= 0 for out in sizes):
        raise ShapeError(f"{op}: elements of output_size must be ints greater than or equal to 0, got {sizes}")
    return _bin_mean(_bin_mean(input, input.ndim - 2, sizes[0]), input.ndim - 1, sizes[1])


__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]
