"""Convolution layers: Conv1d, Conv2d and ConvTranspose2d, with PyTorch's arguments, init and repr."""

from __future__ import annotations

import math

from ...errors import ArgumentValueError, ShapeError
from ...ops._checks import int_tuple
from ...ops.conv import conv1d, conv2d, conv_transpose2d
from ...ops.creation import empty
from ...ops.padding import pad
from .. import init
from ..module import Module
from ..parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What Conv1d, Conv2d and ConvTranspose2d share: argument checks, parameters, init and repr."""

    _dims = 2
    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner, dims = type(self).__name__, self._dims
        if not isinstance(groups, int) or groups <= 0:
            raise ArgumentValueError(f"{owner}: groups must be a positive integer, got {groups!r}")
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ShapeError(f"{owner}: {name} must be divisible by groups ({name}={channels}, groups={groups})")
        if padding_mode not in _PADDING_MODES:
            raise ArgumentValueError(
                f"{owner}: padding_mode must be one of {list(_PADDING_MODES)}, but got padding_mode={padding_mode!r}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = int_tuple(owner, "kernel_size", kernel_size, dims, repeat_single=True)
        self.stride = int_tuple(owner, "stride", stride, dims, repeat_single=True)
        self.dilation = int_tuple(owner, "dilation", dilation, dims, repeat_single=True)
        self.output_padding = (0,) * dims  # ConvTranspose2d sets its own
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ArgumentValueError(
                    f"{owner}: invalid padding string {padding!r}, should be one of 'same' or 'valid'"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ArgumentValueError(f"{owner}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = int_tuple(owner, "padding", padding, dims, repeat_single=True)
        self._reversed_padding_repeated_twice = self._reversed_padding()
        if self.transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _reversed_padding(self) -> list:
        """F.pad's widths, last dim first, for the non-zero padding modes ('same' may be uneven)."""
        widths = []
        for index in reversed(range(self._dims)):
            if self.padding == "same":
                total = self.dilation[index] * (self.kernel_size[index] - 1)
                widths += [total // 2, total - total // 2]
            elif self.padding == "valid":
                widths += [0, 0]
            else:
                widths += [self.padding[index]] * 2
        return widths

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        """The convolution; the non-zero padding modes pad with F.pad first, then convolve unpadded."""
        padding = self.padding
        if self.padding_mode != "zeros":
            input, padding = pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode), 0
        return type(self)._convolution(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._dims:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._dims:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) or (C_in, L) inputs; weight (out_channels, in_channels/groups, k).

    Arguments as ``Conv2d``'s. ``padding_mode`` 'reflect', 'replicate' or 'circular' pads with
    F.pad before a zero-padding conv.
    """

    _dims = 1
    _convolution = staticmethod(conv1d)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W); weight (out_channels, in_channels/groups, kH, kW).

    ``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
    padding_mode='zeros', device=None, dtype=None)``, as in PyTorch.

    >>> import gradflow as gf
    >>> from gradflow.nn.modules.conv import Conv2d
    >>> Conv2d(3, 8, 3, padding=1)(gf.randn(2, 3, 5, 5)).shape
    (2, 8, 5, 5)
    """

    _dims = 2
    _convolution = staticmethod(conv2d)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution; weight (in_channels, out_channels/groups, kH, kW).

    ``forward(input, output_size=None)``: an ``output_size`` picks the output_padding that gives
    that size, as in PyTorch. Only padding_mode='zeros' exists for transposed convolutions.
    """

    _dims = 2
    transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        if padding_mode != "zeros":
            raise ArgumentValueError(
                f'Only "zeros" padding mode is supported for {type(self).__name__}, got {padding_mode!r}'
            )
        if isinstance(padding, str):
            raise ArgumentValueError(
                f"{type(self).__name__}: padding must be an int or a tuple of ints, got {padding!r}"
            )
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype
        )
        owner = type(self).__name__
        self.output_padding = int_tuple(owner, "output_padding", output_padding, self._dims, repeat_single=True)

    def _output_padding(self, input, output_size) -> tuple:
        """The output_padding that makes the output ``output_size`` (spatial, or with batch/channel dims)."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)
        leading = input.ndim - self._dims
        if len(output_size) == leading + self._dims:
            output_size = output_size[leading:]
        if len(output_size) != self._dims:
            raise ArgumentValueError(
                f"{type(self).__name__}: for {input.ndim}D input, output_size must have {self._dims} or "
                f"{leading + self._dims} elements (got {len(output_size)})"
            )
        smallest = [
            (input.shape[leading + d] - 1) * self.stride[d]
            - 2 * self.padding[d]
            + self.dilation[d] * (self.kernel_size[d] - 1)
            + 1
            for d in range(self._dims)
        ]
        largest = [size + step - 1 for size, step in zip(smallest, self.stride)]
        if any(not low <= size <= high for size, low, high in zip(output_size, smallest, largest)):
            raise ShapeError(
                f"{type(self).__name__}: requested an output size of {list(output_size)}, but valid sizes range from "
                f"{smallest} to {largest} (for an input of {list(input.shape[leading:])})"
            )
        return tuple(size - low for size, low in zip(output_size, smallest))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return conv_transpose2d(
            input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )
