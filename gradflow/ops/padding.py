"""Padding: ``pad`` in constant, reflect, replicate and circular modes."""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import ArgumentValueError, ShapeError, shape_str
from ..ops.creation import tensor
from ..ops.scatter import index_select
from ..tensor import Tensor

PAD_MODES = ("constant", "reflect", "replicate", "circular")


class ConstantPad(Function):
    """Pad (or, with negative widths, crop) every dimension by ``widths[d] = (before, after)``."""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        out_shape = tuple(size + before + after for size, (before, after) in zip(x.shape, widths))
        out = ctx.device.backend.xp.full(out_shape, value, dtype=x.dtype)
        source, target = [], []
        for size, (before, after) in zip(x.shape, widths):
            start = max(-before, 0)
            # Clamp so that a crop larger than what is left copies nothing (a negative stop would wrap).
            stop = max(size - max(-after, 0), start)
            source.append(slice(start, stop))
            target.append(slice(max(before, 0), max(before, 0) + stop - start))
        out[tuple(target)] = x[tuple(source)]
        return out

    @staticmethod
    def backward(ctx, grad):
        # Padding and cropping undo each other: the gradient is the output gradient with the widths negated.
        return ConstantPad.apply(grad, tuple((-before, -after) for before, after in ctx.widths), 0), None, None


def _source_positions(mode: str, size: int, before: int, after: int) -> np.ndarray:
    """For each output position along one dim, the input position it copies (reflect/replicate/circular)."""
    positions = np.arange(-before, size + after)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "circular":
        # PyTorch crops first and wraps around what is left.
        first, kept = max(-before, 0), size - max(-before, 0) - max(-after, 0)
        return first + (np.arange(-max(before, 0), kept + max(after, 0)) % kept)
    period = 2 * (size - 1)  # reflect: mirror about the edges without repeating them
    folded = positions % period if period else np.zeros_like(positions)
    return np.where(folded < size, folded, period - folded)


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """Pad ``input`` with PyTorch's pad tuple: ``(left, right)`` for the last dim, then the one before, ...

    Negative widths crop. ``mode`` is 'constant' (filled with ``value``, default 0), 'reflect'
    (mirrored, edge not repeated), 'replicate' (edge repeated) or 'circular' (wrapped around).
    Unlike PyTorch, the non-constant modes accept any number of padded trailing dims.

    >>> import gradflow as gf
    >>> import gradflow.nn.functional as F
    >>> F.pad(gf.tensor([1.0, 2.0, 3.0]), (1, 2), value=9.0).tolist()
    [9.0, 1.0, 2.0, 3.0, 9.0, 9.0]
    >>> F.pad(gf.tensor([1.0, 2.0, 3.0]), (2, -1), mode="reflect").tolist()
    [3.0, 2.0, 1.0, 2.0]
    """
    if mode not in PAD_MODES:
        raise ArgumentValueError(f"pad: unsupported padding mode {mode!r}; supported modes are {', '.join(PAD_MODES)}")
    pad = tuple(int(width) for width in pad)
    if len(pad) % 2:
        raise ArgumentValueError(f"pad: padding length must be divisible by 2 (pairs of before, after), got {len(pad)}")
    if len(pad) // 2 > input.ndim:
        raise ShapeError(
            f"pad: padding length {len(pad)} pads {len(pad) // 2} dimensions, but the input of shape "
            f"{shape_str(input.shape)} has only {input.ndim}"
        )
    widths = [(0, 0)] * input.ndim
    for pair in range(len(pad) // 2):
        widths[input.ndim - 1 - pair] = (pad[2 * pair], pad[2 * pair + 1])
    for axis, (size, (before, after)) in enumerate(zip(input.shape, widths)):
        if size + before + after < 0:
            raise ShapeError(
                f"pad: padding ({before}, {after}) of dimension {axis} of the input of shape {shape_str(input.shape)}"
                f" would give a negative size {size + before + after}; crop less"
            )
    if mode == "constant":
        return ConstantPad.apply(input, tuple(widths), 0 if value is None else value)
    if value is not None and value != 0:
        raise ArgumentValueError(f"pad: padding mode {mode!r} doesn't take a value (only 'constant' does)")
    return _index_pad(input, mode, widths)


def _index_pad(input: Tensor, mode: str, widths: list) -> Tensor:
    """Reflect/replicate/circular padding as one index_select per padded dim (its gradient adds up the copies)."""
    result = input
    for axis, (size, (before, after)) in enumerate(zip(input.shape, widths)):
        if before == 0 and after == 0:
            continue
        # PyTorch's limits: reflect pads < size, circular pads <= the size left after cropping, replicate any.
        kept = size - max(-before, 0) - max(-after, 0)
        limit = {"reflect": size - 1, "circular": kept}.get(mode, max(before, after))
        if size == 0 or max(before, after) > limit:
            raise ShapeError(
                f"pad: {mode} padding ({before}, {after}) of dimension {axis} must be at most {limit} and the "
                f"dimension non-empty (input of shape {shape_str(input.shape)}); use mode='constant' for wider pads"
            )
        positions = tensor(_source_positions(mode, size, before, after), device=input.device)
        result = index_select(result, axis, positions)
    return result


__all__ = ["pad"]
