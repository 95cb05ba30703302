"""Convolutions: conv1d, conv2d and conv_transpose2d, with PyTorch's arguments and checks.

Everything is 2-D underneath (conv1d adds a height-1 axis). This module checks the arguments,
works out the ``Geometry`` (``im2col.py``: how a window slides over the padded input) and
applies one of the three Functions of ``conv_functions.py`` (the bilinear maps of a convolution,
each differentiated by the other two, so gradients of any order come from the same code).
"""

from __future__ import annotations

from ..errors import ArgumentTypeError, ArgumentValueError, DtypeError, ShapeError, shape_str
from ..tensor import Tensor
from ._checks import int_tuple
from .conv_functions import Convolution, ConvolutionTranspose
from .im2col import Geometry


def _sizes(values) -> str:
    return "(" + " x ".join(str(v) for v in values) + ")"


def _check_positive(op: str, name: str, values: tuple, minimum: int) -> None:
    if any(v < minimum for v in values):
        adjective = "negative" if minimum == 0 else "non-positive"
        raise ShapeError(f"{op}: {adjective} {name} {list(values)} is not supported; use values >= {minimum}")


def _check_arguments(op: str, dims: int, input, weight, bias, stride, dilation, groups, role: str) -> tuple:
    """Checks shared by every convolution; returns stride, dilation and the input shape with a batch axis.

    ``role`` names the weight's dimension 0 ('out_channels', or 'in_channels' when transposed).
    """
    for name, value in (("input", input), ("weight", weight), ("bias", bias)):
        if not isinstance(value, Tensor) and not (name == "bias" and value is None):
            raise ArgumentTypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")
    if input.ndim not in (dims + 1, dims + 2):
        raise ShapeError(
            f"{op}: expected {dims + 1}-D (unbatched) or {dims + 2}-D (batched) input, but got input of shape "
            f"{shape_str(input.shape)}; reshape it to (N, C, {'L' if dims == 1 else 'H, W'}) or drop the batch axis"
        )
    if weight.ndim != dims + 2:
        other = "out_channels/groups" if role == "in_channels" else "in_channels/groups"
        raise ShapeError(
            f"{op}: expected a {dims + 2}-D weight ({role}, {other}, {'kW' if dims == 1 else 'kH, kW'}), but got "
            f"weight of shape {shape_str(weight.shape)}"
        )
    for name, other in (("weight", weight), ("bias", bias)):
        if other is not None and other._dtype is not input._dtype:
            raise DtypeError(
                f"{op}: input type ({input._dtype.name}) and {name} type ({other._dtype.name}) should be the same; "
                f"convert one, e.g. {name}.to({input._dtype.name})"
            )
    if input._dtype.name == "bool":
        raise DtypeError(f"{op}: bool tensors cannot be convolved; convert them with .float() first")
    stride, dilation = int_tuple(op, "stride", stride, dims), int_tuple(op, "dilation", dilation, dims)
    _check_positive(op, "stride", stride, 1)
    _check_positive(op, "dilation", dilation, 1)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0:
        raise ShapeError(f"{op}: non-positive groups ({groups!r}) is not supported; groups must be an int >= 1")
    if weight.shape[0] % groups:
        raise ShapeError(
            f"{op}: given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got "
            f"weight of shape {shape_str(weight.shape)}; {role} must be a multiple of groups"
        )
    return stride, dilation, tuple(input.shape) if input.ndim == dims + 2 else (1, *input.shape)


def _check_channels(op: str, input, weight, expected: int, got: int, groups: int, transposed: bool) -> None:
    if expected != got:
        rule = "dimension 0" if transposed else "dimension 1 times groups"
        raise ShapeError(
            f"{op}: given groups={groups}, {'transposed=1, ' if transposed else ''}weight of shape "
            f"{shape_str(weight.shape)}, expected input of shape {shape_str(input.shape)} to have {expected} "
            f"channels, but got {got} channels instead; the weight's {rule} must equal the input channels"
        )


def _check_bias(op: str, bias, channels: int, weight) -> None:
    if bias is not None and tuple(bias.shape) != (channels,):
        raise ShapeError(
            f"{op}: given weight of shape {shape_str(weight.shape)}, expected bias to be 1-dimensional with "
            f"{channels} elements, but got bias of shape {shape_str(bias.shape)}"
        )


def _resolve_padding(op: str, padding, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """(before, after) pads per spatial dim, from an int, a tuple, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * len(kernel), (0,) * len(kernel)
        if padding != "same":
            raise ArgumentValueError(
                f"{op}: invalid padding string {padding!r}; use 'valid', 'same', an int or a tuple"
            )
        if any(s != 1 for s in stride):
            raise ShapeError(
                f"{op}: padding='same' is not supported for strided convolutions (stride={list(stride)}); "
                "use stride=1 or explicit padding"
            )
        # PyTorch puts the odd pixel of an even total at the end.
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)
    pads = int_tuple(op, "padding", padding, len(kernel))
    _check_positive(op, "padding", pads, 0)
    return pads, pads


def _convolution(op: str, dims: int, input, weight, bias, stride, padding, dilation, groups) -> Tensor:
    stride, dilation, input_shape = _check_arguments(
        op, dims, input, weight, bias, stride, dilation, groups, "out_channels"
    )
    _check_channels(op, input, weight, weight.shape[1] * groups, input_shape[1], groups, transposed=False)
    _check_bias(op, bias, weight.shape[0], weight)
    kernel = tuple(weight.shape[2:])
    before, after = _resolve_padding(op, padding, kernel, stride, dilation)
    padded = [size + b + a for size, b, a in zip(input_shape[2:], before, after)]
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(p < r for p, r in zip(padded, reach)):
        raise ShapeError(
            f"{op}: calculated padded input size per channel: {_sizes(padded)}. Kernel size (dilated): "
            f"{_sizes(reach)}. Kernel size can't be greater than actual input size (input of shape "
            f"{shape_str(input.shape)}, weight of shape {shape_str(weight.shape)}); pad more or use a smaller kernel"
        )
    out_size = tuple((p - r) // s + 1 for p, r, s in zip(padded, reach, stride))
    lift = (lambda values, fill: (fill, *values)) if dims == 1 else (lambda values, fill: values)
    geometry = Geometry(
        lift(input_shape[2:], 1),
        lift(out_size, 1),
        lift(kernel, 1),
        lift(stride, 1),
        lift(before, 0),
        lift(dilation, 1),
        groups,
    )
    # Everything runs as a batched 2-D convolution: (C, ...) gets a batch axis, 1-D a height-1 axis.
    x = input if input.ndim == dims + 2 else input.unsqueeze(0)
    if dims == 1:
        x, weight = x.unsqueeze(2), weight.unsqueeze(2)
    out = Convolution.apply(x, weight, bias, geometry)
    out = out.squeeze(2) if dims == 1 else out
    return out if input.ndim == dims + 2 else out.squeeze(0)


def conv1d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D cross-correlation of ``input`` (N, C, L) or (C, L) with ``weight`` (out, C/groups, k).

    ``padding`` is an int, a 1-tuple, 'valid' (none) or 'same' (output length = input length, stride 1).

    >>> import gradflow as gf
    >>> import gradflow.nn.functional as F
    >>> F.conv1d(gf.tensor([[1.0, 2.0, 3.0, 4.0]]), gf.tensor([[[1.0, -1.0]]])).tolist()
    [[-1.0, -1.0, -1.0]]
    """
    return _convolution("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation of ``input`` (N, C, H, W) or (C, H, W) with ``weight`` (out, C/groups, kH, kW).

    ``stride``, ``padding`` and ``dilation`` are ints or pairs; ``padding`` may also be 'valid' or
    'same' (output size = input size; needs stride 1, an even kernel pads one more at the end).
    ``groups`` splits the channels into independent convolutions (``groups=C`` is depthwise).

    >>> import gradflow as gf
    >>> import gradflow.nn.functional as F
    >>> F.conv2d(gf.ones(1, 1, 3, 3), gf.ones(1, 1, 2, 2), padding=1)[0, 0].tolist()
    [[1.0, 2.0, 2.0, 1.0], [2.0, 4.0, 4.0, 2.0], [2.0, 4.0, 4.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
    """
    return _convolution("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(
    input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input), as in PyTorch.

    ``weight`` is (in_channels, out_channels/groups, kH, kW). The output size per spatial dim is
    ``(size - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``;
    ``output_padding`` (smaller than stride or dilation) picks among the sizes a strided conv2d
    maps to the same input size.
    """
    op = "conv_transpose2d"
    if isinstance(padding, str):
        raise ArgumentTypeError(
            f"{op}: padding must be an int or a tuple of ints, not {padding!r} ('same' is conv-only)"
        )
    stride, dilation, input_shape = _check_arguments(
        op, 2, input, weight, bias, stride, dilation, groups, "in_channels"
    )
    padding, output_padding = int_tuple(op, "padding", padding, 2), int_tuple(op, "output_padding", output_padding, 2)
    _check_positive(op, "padding", padding, 0)
    _check_positive(op, "output_padding", output_padding, 0)
    if any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation)):
        raise ShapeError(
            f"{op}: output padding must be smaller than either stride or dilation, but got output_padding="
            f"{list(output_padding)}, stride={list(stride)}, dilation={list(dilation)}"
        )
    _check_channels(op, input, weight, weight.shape[0], input_shape[1], groups, transposed=True)
    _check_bias(op, bias, weight.shape[1] * groups, weight)
    kernel = tuple(weight.shape[2:])
    out_size = tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + o + 1
        for size, s, p, d, k, o in zip(input_shape[2:], stride, padding, dilation, kernel, output_padding)
    )
    # An output size of 0 gives an empty output (PyTorch's float16 and batched float32 kernels; its float32
    # single-sample and float64 kernels refuse: docs/differences.md, conv-transpose-empty-output). A negative
    # size has no output, and a non-empty batch needs a non-empty input, as in PyTorch.
    if min(out_size) < 0 or (input_shape[0] != 0 and min(input_shape[2:]) <= 0):
        raise ShapeError(
            f"{op}: given input size per channel: {_sizes(input_shape[2:])}. Calculated output size per channel: "
            f"{_sizes(out_size)}. Output size is too small; reduce padding or use a larger input"
        )
    # The transposed convolution is conv2d's input gradient for a conv2d from out_size to the input size.
    geometry = Geometry(out_size, input_shape[2:], kernel, stride, padding, dilation, groups)
    batched = input.ndim == 4
    out = ConvolutionTranspose.apply(input if batched else input.unsqueeze(0), weight, bias, geometry)
    return out if batched else out.squeeze(0)


__all__ = ["conv1d", "conv2d", "conv_transpose2d"]
