"""How windows slide over the last two axes (``Geometry``), and im2col/col2im written against xp.

Shared by the convolutions and the pooling ops. ``im2col`` copies every window into the columns
of a matrix through one strided view, and ``col2im`` adds columns back with one strided slice per
kernel offset (no scatter, so NumPy and CuPy run the same code).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Geometry:
    """How windows slide over the last two axes: ``out_size[i]`` windows of ``kernel[i]`` taps each.

    Window ``o`` along an axis reads padded positions ``o * stride + k * dilation`` for ``k`` in
    ``range(kernel)``; the input sits at ``padding`` (the leading pad) in that padded frame. Trailing
    padding is implied by ``out_size``: the frame is as long as the last window needs.
    """

    in_size: tuple
    out_size: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int = 1

    @property
    def frame(self) -> tuple:
        """Size of the padded frame: the input plus padding, or up to the end of the last window."""
        return tuple(
            max(pad + size, (out - 1) * step + dil * (k - 1) + 1)
            for size, out, k, step, pad, dil in zip(
                self.in_size, self.out_size, self.kernel, self.stride, self.padding, self.dilation
            )
        )

    def tap(self, kh: int, kw: int) -> tuple:
        """The slices of the frame that kernel offset (kh, kw) reads, one element per window."""
        return tuple(
            slice(k * dil, k * dil + (out - 1) * step + 1, step)
            for k, out, step, dil in zip((kh, kw), self.out_size, self.stride, self.dilation)
        )

    def taps(self):
        """Every kernel offset, row by row (the order PyTorch scans a window in)."""
        return [(kh, kw) for kh in range(self.kernel[0]) for kw in range(self.kernel[1])]

    def inside(self) -> tuple:
        """The slices of the frame where the input lies."""
        return tuple(slice(pad, pad + size) for pad, size in zip(self.padding, self.in_size))


def frame_input(xp, x, geometry: Geometry, fill=0):
    """``x`` placed in its padded frame (filled with ``fill``); ``x`` itself when no padding is needed."""
    frame = geometry.frame
    if frame == tuple(x.shape[-2:]) and geometry.padding == (0, 0):
        return x
    framed = xp.full(x.shape[:-2] + frame, fill, dtype=x.dtype)
    framed[(..., *geometry.inside())] = x
    return framed


def crop_frame(xp, framed, geometry: Geometry):
    """The input-sized part of a frame (copied only when padding made the frame larger)."""
    if framed.shape[-2:] == tuple(geometry.in_size):
        return framed
    return xp.ascontiguousarray(framed[(..., *geometry.inside())])


def im2col(xp, x, geometry: Geometry):
    """Windows of ``x`` (N, C, H, W) as columns: (groups, C/groups * kh * kw, N * out_h * out_w)."""
    framed = frame_input(xp, x, geometry)
    batch, channels = x.shape[:2]
    groups = geometry.groups
    s_n, s_c, s_h, s_w = framed.strides
    (kh, kw), (oh, ow) = geometry.kernel, geometry.out_size
    (st_h, st_w), (d_h, d_w) = geometry.stride, geometry.dilation
    # One strided view, already in the order the matrix wants; reshape makes the single copy.
    windows = xp.lib.stride_tricks.as_strided(
        framed,
        shape=(groups, channels // groups, kh, kw, batch, oh, ow),
        strides=(s_c * (channels // groups), s_c, s_h * d_h, s_w * d_w, s_n, s_h * st_h, s_w * st_w),
    )
    return windows.reshape(groups, channels // groups * kh * kw, batch * oh * ow)


def col2im(xp, columns, geometry: Geometry, batch: int, channels: int):
    """Add columns (groups, C/groups * kh * kw, N * out_h * out_w) back into an (N, C, H, W) array."""
    groups = geometry.groups
    kh, kw = geometry.kernel
    framed = xp.zeros((batch, groups, channels // groups) + geometry.frame, dtype=columns.dtype)
    patches = columns.reshape((groups, channels // groups, kh, kw, batch) + geometry.out_size)
    # One strided add per kernel offset: each hits distinct positions, so no scatter-add is needed.
    for i, j in geometry.taps():
        framed[(..., *geometry.tap(i, j))] += patches[:, :, i, j].transpose(2, 0, 1, 3, 4)
    framed = framed.reshape((batch, channels) + geometry.frame)
    return crop_frame(xp, framed, geometry)
