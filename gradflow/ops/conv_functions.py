"""The three bilinear maps of a convolution as Functions, on im2col/col2im.

With B(x, w, g) = <conv(x, w), g>, the derivative of each map is built from the other two, so
gradients of any order come out of the same code:

    Convolution(x, w)           = dB/dg      (conv2d)
    ConvolutionTranspose(g, w)  = dB/dx      (conv_transpose2d and conv2d's input gradient)
    ConvolutionWeightGrad(x, g) = dB/dw      (conv2d's weight gradient)
"""

from __future__ import annotations

import math

from ..autograd.function import Function
from .im2col import Geometry, col2im, im2col


def _grouped_grad(xp, grad_output, groups: int):
    """(N, O, oh, ow) as (groups, O/groups, N * oh * ow), the layout the matrix products use."""
    batch, out_channels, height, width = grad_output.shape
    grouped = grad_output.reshape(batch, groups, out_channels // groups, height * width).transpose(1, 2, 0, 3)
    return grouped.reshape(groups, out_channels // groups, batch * height * width)


def _grouped_weight(weight, groups: int):
    """(O, C/groups, kh, kw) as (groups, O/groups, C/groups * kh * kw)."""
    return weight.reshape(groups, weight.shape[0] // groups, math.prod(weight.shape[1:]))


def _add_bias(out, bias):
    if bias is not None:
        out += bias.reshape(-1, 1, 1)
    return out


def convolve(xp, x, weight, geometry: Geometry):
    """conv2d on arrays; returns the output and the columns (kept for the weight gradient)."""
    groups, batch, out_channels = geometry.groups, x.shape[0], weight.shape[0]
    columns = im2col(xp, x, geometry)
    out = xp.matmul(_grouped_weight(weight, groups), columns)
    out = out.reshape((groups, out_channels // groups, batch) + geometry.out_size).transpose(2, 0, 1, 3, 4)
    return xp.ascontiguousarray(out).reshape((batch, out_channels) + geometry.out_size), columns


def convolve_transpose(xp, grad_output, weight, geometry: Geometry):
    """The adjoint of ``convolve`` in its input: (N, O, oh, ow) -> (N, C, H, W)."""
    groups = geometry.groups
    columns = xp.matmul(_grouped_weight(weight, groups).transpose(0, 2, 1), _grouped_grad(xp, grad_output, groups))
    return col2im(xp, columns, geometry, grad_output.shape[0], weight.shape[1] * groups)


def convolve_weight_grad(xp, x, grad_output, geometry: Geometry, columns=None):
    """The adjoint of ``convolve`` in its weight: sum over batch and windows of grad * window."""
    if columns is None:
        columns = im2col(xp, x, geometry)
    grad = xp.matmul(_grouped_grad(xp, grad_output, geometry.groups), columns.transpose(0, 2, 1))
    return grad.reshape((grad_output.shape[1], x.shape[1] // geometry.groups) + geometry.kernel)


class Convolution(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, geometry):
        out, columns = convolve(ctx.device.backend.xp, x, weight, geometry)
        ctx.geometry = geometry
        ctx.save_for_backward(x, weight, columns)
        return _add_bias(out, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight, columns = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        geometry = ctx.geometry
        grad_x = ConvolutionTranspose.apply(grad, weight, None, geometry) if needs_x else None
        grad_weight = ConvolutionWeightGrad.apply(x, grad, geometry, columns._data) if needs_weight else None
        grad_bias = grad.sum((0, 2, 3)) if needs_bias else None
        return grad_x, grad_weight, grad_bias, None


class ConvolutionTranspose(Function):
    @staticmethod
    def forward(ctx, grad_output, weight, bias, geometry):
        ctx.geometry = geometry
        ctx.save_for_backward(grad_output, weight)
        return _add_bias(convolve_transpose(ctx.device.backend.xp, grad_output, weight, geometry), bias)

    @staticmethod
    def backward(ctx, grad):
        grad_output, weight = ctx.saved_tensors
        needs_grad_output, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        geometry = ctx.geometry
        grad_grad_output = Convolution.apply(grad, weight, None, geometry) if needs_grad_output else None
        grad_weight = ConvolutionWeightGrad.apply(grad, grad_output, geometry, None) if needs_weight else None
        grad_bias = grad.sum((0, 2, 3)) if needs_bias else None
        return grad_grad_output, grad_weight, grad_bias, None


class ConvolutionWeightGrad(Function):
    @staticmethod
    def forward(ctx, x, grad_output, geometry, columns):
        ctx.geometry = geometry
        ctx.save_for_backward(x, grad_output)
        return convolve_weight_grad(ctx.device.backend.xp, x, grad_output, geometry, columns)

    @staticmethod
    def backward(ctx, grad):
        x, grad_output = ctx.saved_tensors
        needs_x, needs_grad_output = ctx.needs_input_grad[:2]
        geometry = ctx.geometry
        grad_x = ConvolutionTranspose.apply(grad_output, grad, None, geometry) if needs_x else None
        grad_grad_output = Convolution.apply(x, grad, None, geometry) if needs_grad_output else None
        return grad_x, grad_grad_output, None, None
