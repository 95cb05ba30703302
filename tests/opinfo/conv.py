"""Op table entries for convolutions: conv1d, conv2d and conv_transpose2d.

The references are written from the definitions, not from gradflow's im2col: a convolution
sums, per kernel offset, the strided slice of the zero-padded input times that offset's
weights (one einsum per offset and group); a transposed convolution scatters every input
element times the kernel into an enlarged output and crops the padding off.
Samples draw batched and unbatched inputs, groups, stride, padding (ints, pairs, 'same',
'valid'), dilation, output_padding and with/without bias, on small sizes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow.nn.functional as F

from . import OpInfo, Sample, values


def _pair(value, dims: int) -> tuple:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def _conv_ref(dims: int):
    def ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        unbatched = x.ndim == dims + 1
        x = x[None] if unbatched else x
        if dims == 1:  # conv1d is conv2d over a height-1 plane
            x, weight = x[:, :, None], weight[:, :, None]
        kernel = weight.shape[2:]
        stride, dilation = _pair(stride, dims), _pair(dilation, dims)
        if dims == 1:
            stride, dilation = (1, *stride), (1, *dilation)
        if padding == "valid":
            pads = [(0, 0), (0, 0)]
        elif padding == "same":  # PyTorch puts the odd element of an even total at the end
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            pads = [(t // 2, t - t // 2) for t in totals]
        else:
            pads = [(p, p) for p in ((0, *_pair(padding, 1)) if dims == 1 else _pair(padding, 2))]
        x = np.pad(x, [(0, 0), (0, 0), *pads])
        out_size = [(x.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1 for a in range(2)]
        batch, out_channels = x.shape[0], weight.shape[0]
        in_group, out_group = weight.shape[1], out_channels // groups
        out = np.zeros((batch, out_channels, *out_size), dtype=x.dtype)
        for g in range(groups):
            xs = x[:, g * in_group : (g + 1) * in_group]
            ws = weight[g * out_group : (g + 1) * out_group]
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    rows = slice(i * dilation[0], i * dilation[0] + (out_size[0] - 1) * stride[0] + 1, stride[0])
                    cols = slice(j * dilation[1], j * dilation[1] + (out_size[1] - 1) * stride[1] + 1, stride[1])
                    out[:, g * out_group : (g + 1) * out_group] += np.einsum(
                        "ncij,oc->noij", xs[:, :, rows, cols], ws[:, :, i, j]
                    )
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        out = out[:, :, 0] if dims == 1 else out
        return out[0] if unbatched else out

    return ref


def _conv_transpose2d_ref(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    unbatched = x.ndim == 3
    x = x[None] if unbatched else x
    stride, padding, output_padding, dilation = (_pair(v, 2) for v in (stride, padding, output_padding, dilation))
    batch, channels, height, width = x.shape
    in_group, out_group = channels // groups, weight.shape[1]
    kernel = weight.shape[2:]
    full = [
        (size - 1) * s + d * (k - 1) + 1 + o
        for size, s, d, k, o in zip((height, width), stride, dilation, kernel, output_padding)
    ]
    out = np.zeros((batch, out_group * groups, *full), dtype=x.dtype)
    for g in range(groups):
        xs = x[:, g * in_group : (g + 1) * in_group]
        ws = weight[g * in_group : (g + 1) * in_group]
        for h in range(height):
            for w in range(width):
                # Input element (h, w) adds x * kernel at rows h * s + ki * d, columns w * s + kj * d.
                rows = slice(h * stride[0], h * stride[0] + dilation[0] * (kernel[0] - 1) + 1, dilation[0])
                cols = slice(w * stride[1], w * stride[1] + dilation[1] * (kernel[1] - 1) + 1, dilation[1])
                out[:, g * out_group : (g + 1) * out_group, rows, cols] += np.einsum(
                    "nc,coij->noij", xs[:, :, h, w], ws
                )
    out = out[:, :, padding[0] : full[0] - padding[0], padding[1] : full[1] - padding[1]]
    if bias is not None:
        out = out + bias.reshape(-1, 1, 1)
    return out[0] if unbatched else out


def _batch(draw):
    """None for an unbatched input, else the batch size."""
    return draw(st.sampled_from([None, 1, 2]))


def _conv_sample(dims: int):
    def sample(draw):
        groups = draw(st.sampled_from([1, 2]))
        in_group, out_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
        padding_kind = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
        stride = (1,) * dims if padding_kind == "same" else tuple(draw(st.integers(1, 2)) for _ in range(dims))
        if padding_kind == "int":
            padding = draw(st.integers(0, 2))
        elif padding_kind == "tuple":
            padding = tuple(draw(st.integers(0, 2)) for _ in range(dims))
        else:
            padding = padding_kind
        pads = _pair(padding, dims) if not isinstance(padding, str) else (0,) * dims
        reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        # The padded input must hold one dilated kernel; sizes stay small for the finite differences.
        size = tuple(max(1, r - 2 * p) + draw(st.integers(0, 2)) for r, p in zip(reach, pads))
        batch = _batch(draw)
        shape = (groups * in_group, *size) if batch is None else (batch, groups * in_group, *size)
        x = values(draw, shape)
        weight = values(draw, (groups * out_group, in_group, *kernel))
        bias = values(draw, (groups * out_group,)) if draw(st.booleans()) else None
        kwargs = {"stride": stride if draw(st.booleans()) else stride[0], "padding": padding}
        kwargs.update(dilation=dilation, groups=groups)
        return Sample((x, weight, bias), kwargs)

    return sample


def _conv_transpose2d_sample(draw):
    groups = draw(st.sampled_from([1, 2]))
    in_group, out_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    # output_padding must be smaller than the stride or the dilation.
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = tuple(draw(st.integers(1, 3)) for _ in range(2))
    full = [(n - 1) * s + d * (k - 1) + 1 + o for n, s, d, k, o in zip(size, stride, dilation, kernel, output_padding)]
    padding = tuple(draw(st.integers(0, (f - 1) // 2)) for f in full)  # leaves at least one output element
    batch = _batch(draw)
    shape = (groups * in_group, *size) if batch is None else (batch, groups * in_group, *size)
    x = values(draw, shape)
    weight = values(draw, (groups * in_group, out_group, *kernel))
    bias = values(draw, (groups * out_group,)) if draw(st.booleans()) else None
    kwargs = {"stride": stride, "padding": padding, "output_padding": output_padding, "groups": groups}
    kwargs["dilation"] = dilation
    return Sample((x, weight, bias), kwargs)


OPS = [
    OpInfo("conv1d", F.conv1d, _conv_ref(1), _conv_sample(1), max_examples=16),
    OpInfo("conv2d", F.conv2d, _conv_ref(2), _conv_sample(2), max_examples=16),
    OpInfo("conv_transpose2d", F.conv_transpose2d, _conv_transpose2d_ref, _conv_transpose2d_sample, max_examples=16),
]
