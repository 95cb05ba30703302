"""Statistics over dimensions: var, std, logsumexp and norm (floating point only).

A ``dim`` of None or ``()`` reduces every dimension, as in ``reduce.py``. float16 var, std and norm
are computed in float32 and rounded once, as PyTorch does (their squares pass 65504 long before
the results do). std scales the deviations by a power of two before squaring, so it is finite
wherever the result is (std([3e19, -3e19]) in float32), and its gradient is 0 where it is 0.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..autograd.function import Function
from ..dtypes import float16, float32, get_default_dtype
from ..errors import ArgumentTypeError, ArgumentValueError
from ._checks import require_float
from .compare import where
from .reduce import Sum, _count, _kept_shape, amax, amin, keep_reduced, mean, reduction_axes


def _correction(op: str, dim, unbiased, correction):
    """Resolve PyTorch's two spellings: ``correction=`` and the legacy ``unbiased`` bool."""
    if isinstance(dim, bool):  # var(x, True): the legacy positional unbiased
        dim, unbiased = None, dim
    if unbiased is not None:
        if correction is not None:
            raise ArgumentTypeError(
                f"{op}: pass either unbiased or correction, not both (unbiased=True is correction=1)"
            )
        return dim, 1 if unbiased else 0
    return dim, 1 if correction is None else correction


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """Variance over ``dim``: sum((x - mean)^2) / (N - correction).

    ``correction`` defaults to 1 (Bessel's correction); PyTorch's legacy ``unbiased`` bool
    (also as the second positional argument) means correction=1 (True) or 0 (False).
    """
    require_float("var", input)
    if input._dtype is float16:
        return var(input.to(float32), dim, unbiased, keepdim, correction=correction).to(float16)
    dim, correction = _correction("var", dim, unbiased, correction)
    axes = reduction_axes(dim, input.ndim, "var")
    count = _count(input.shape, axes)
    # Two passes (subtract the mean first): no cancellation when the mean dwarfs the spread.
    centered = input - mean(input, axes, keepdim=True)
    # PyTorch divides by max(0, N - correction): inf, or NaN when nothing varies.
    return Sum.apply(centered * centered, axes, keepdim, None) / builtins.max(count - correction, 0)


class Std(Function):
    """sqrt(sum((x - mean)^2) / (N - correction)) over ``axes``; the gradient is 0 where the result is 0."""

    @staticmethod
    def forward(ctx, x, axes, keepdim, correction):
        xp = ctx.device.backend.xp
        ctx.input_shape, ctx.axes, ctx.keepdim, ctx.correction = x.shape, axes, keepdim, correction
        divisor = builtins.max(_count(x.shape, axes) - correction, 0)
        with np.errstate(invalid="ignore", divide="ignore"):  # nothing to average: NaN (or inf), as PyTorch
            centred = x - xp.mean(x, axis=axes, keepdims=True) if x.size else x
            # Deviations divided by 2**k (k: the largest one's exponent) square without overflow or underflow.
            peak = xp.max(xp.abs(centred), axis=axes, keepdims=True) if x.size else xp.zeros(_kept_shape(x.shape, axes))
            exponent = xp.frexp(peak)[1]
            scaled = xp.ldexp(centred, -exponent)
            out = xp.ldexp(xp.sqrt(xp.sum(scaled * scaled, axis=axes, keepdims=True) / divisor), exponent)
        out = out.astype(x.dtype, copy=False)
        if not keepdim:
            out = out.reshape(tuple(size for axis, size in enumerate(x.shape) if axis not in axes))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        kept = keep_reduced(out, ctx.input_shape, ctx.axes, ctx.keepdim)
        divisor = _count(ctx.input_shape, ctx.axes) - ctx.correction
        # d std / dx = (x - mean) / ((N - correction) std); PyTorch's gradient is 0 where std is 0
        # (a constant slice), which the textbook form makes 0 * inf = NaN.
        scale = where(kept == 0, 0.0, keep_reduced(grad, ctx.input_shape, ctx.axes, ctx.keepdim))
        centred = x - x.mean(ctx.axes, keepdim=True)
        return scale * centred / (where(kept == 0, 1.0, kept) * divisor)


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """Standard deviation over ``dim``: the square root of ``var`` (same arguments)."""
    require_float("std", input)
    if input._dtype is float16:
        return std(input.to(float32), dim, unbiased, keepdim, correction=correction).to(float16)
    dim, correction = _correction("std", dim, unbiased, correction)
    return Std.apply(input, reduction_axes(dim, input.ndim, "std"), keepdim, correction)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        xp = ctx.device.backend.xp
        ctx.input_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        # amax refuses empty rows; their log-sum-exp is log(0) = -inf.
        peak = xp.amax(x, axis=axes, keepdims=True) if x.size else xp.full(_kept_shape(x.shape, axes), -xp.inf, x.dtype)
        # Shift by the row maximum so exp never overflows; rows of +-inf are left unshifted
        # (inf - inf would be NaN).
        shift = xp.where(xp.isfinite(peak), peak, 0).astype(x.dtype, copy=False)
        total = xp.sum(xp.exp(x - shift), axis=axes, keepdims=True)
        # An all -inf row sums to 0: its result is -inf, taken from the peak without log(0).
        out = xp.log(xp.where(total > 0, total, 1)) + xp.where(total > 0, shift, peak)
        out = out.astype(x.dtype, copy=False)
        if not keepdim:
            out = out.reshape(tuple(size for axis, size in enumerate(x.shape) if axis not in axes))
        ctx.save_for_backward(x, shift)
        return out

    @staticmethod
    def backward(ctx, grad):
        # The gradient is softmax(x). exp(x - out) would be its textbook form, but out is rounded
        # (in float32 at 1e4 by ~1e-3): normalising the shifted exponentials keeps it exact.
        # The shift is a constant: the softmax does not depend on it.
        x, shift = ctx.saved_tensors
        exps = (x - shift).exp()
        softmax = exps / Sum.apply(exps, ctx.axes, True, None)
        return keep_reduced(grad, ctx.input_shape, ctx.axes, ctx.keepdim) * softmax


def logsumexp(input, dim, keepdim: bool = False):
    """log(sum(exp(input))) over ``dim`` (int or tuple), computed without overflow; integers become float."""
    if not input._dtype.is_floating_point:
        input = input.to(get_default_dtype())
    return LogSumExp.apply(input, reduction_axes(dim, input.ndim, "logsumexp"), keepdim)


class Norm(Function):
    """The vector p-norm (sum |x|^p)^(1/p) for a finite p > 0; the gradient is 0 where the norm or x is 0."""

    @staticmethod
    def forward(ctx, x, p, axes, keepdim):
        xp = ctx.device.backend.xp
        ctx.p, ctx.input_shape, ctx.axes, ctx.keepdim = p, x.shape, axes, keepdim
        if p == 2:
            out = xp.sqrt(xp.sum(x * x, axis=axes, keepdims=keepdim))
        elif p == 1:
            out = xp.sum(xp.abs(x), axis=axes, keepdims=keepdim)
        else:
            out = xp.sum(xp.abs(x) ** p, axis=axes, keepdims=keepdim) ** (1.0 / p)
        out = out.astype(x.dtype, copy=False)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        p = ctx.p
        grad = keep_reduced(grad, ctx.input_shape, ctx.axes, ctx.keepdim)
        if p == 1:
            return grad * x.sign()
        kept = keep_reduced(out, ctx.input_shape, ctx.axes, ctx.keepdim)
        # A zero norm means x is all zero there: divide by 1 instead, and the gradient is 0 (PyTorch's choice).
        safe_norm = where(kept == 0, 1.0, kept)
        if p == 2:
            return grad * x / safe_norm
        # d/dx_i = sign(x_i) (|x_i| / norm)^(p-1); the ratio is replaced where x_i == 0 so that
        # p < 1 gives 0 there instead of 0 * inf, in this and in the next derivative.
        zero = x == 0
        ratio = where(zero, 1.0, x.abs() / safe_norm)
        return grad * where(zero, 0.0, x.sign() * ratio ** (p - 1))


def norm(input, p="fro", dim=None, keepdim: bool = False):
    """The vector norm of ``input`` over ``dim`` (None: all elements, as one vector).

    ``p``: 'fro', None or 2 (Euclidean), 1, inf (max |x|), -inf (min |x|), 0 (the number of
    non-zero elements, no gradient) or another positive number. At x = 0 the gradient is 0.
    """
    require_float("norm", input)
    if input._dtype is float16:
        return norm(input.to(float32), p, dim, keepdim).to(float16)
    if p is None:
        p = 2
    if isinstance(p, str):
        if p != "fro":
            raise ArgumentValueError(
                f"norm: p={p!r} is not supported; use 'fro' or a number (matrix norms such as 'nuc' "
                "are not implemented)"
            )
        p = 2
    axes = reduction_axes(dim, input.ndim, "norm")
    if p == math.inf:
        return amax(input.abs(), axes, keepdim)
    if p == -math.inf:
        return amin(input.abs(), axes, keepdim)
    if p == 0:
        return Sum.apply((input != 0).to(input.dtype), axes, keepdim, None)
    if p < 0:
        raise ArgumentValueError(f"norm: p must be positive, 0, inf or -inf, got {p}")
    return Norm.apply(input, float(p), axes, keepdim)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("var", "std", "logsumexp", "norm")

__all__ = list(TENSOR_METHODS)
