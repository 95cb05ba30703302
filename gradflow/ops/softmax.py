"""softmax and log_softmax over one dimension, stable for any magnitude of input.

Both subtract the row maximum before exponentiating, so float32 logits of
+-1e4 give finite values and gradients. Forward and first-order backward are the
backend's fused primitives over the last axis (``softmax_forward`` /
``softmax_backward``: NumPy on the CPU, kernels/softmax.cu on CUDA); another
dimension is moved last around the call. Under ``create_graph`` the backward is
written with gradflow ops on the saved output, so second derivatives work.
"""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor
from ._checks import normalize_dim, require_float


def _along_last(xp, primitive, arrays, axis, *args):
    """``primitive(*arrays, *args)`` over ``axis`` of same-shaped arrays: the fused primitives work on the last axis.

    Another axis is moved last first (the CUDA launcher then makes one contiguous copy, which
    costs less than the several passes of an unfused softmax) and the result moved back; a 0-d
    input (``axis`` None) is one row of one element.
    """
    shape = arrays[0].shape
    if axis is None:
        return primitive(*(array.reshape(1) for array in arrays), *args).reshape(shape)
    last = len(shape) - 1
    if axis == last:
        return primitive(*arrays, *args)
    moved = primitive(*(xp.moveaxis(array, axis, last) for array in arrays), *args)
    return xp.moveaxis(moved, last, axis)


def _fused_backward(ctx, grad, out, log: bool):
    """The input gradient as one fused backend call on arrays (first-order backward: nothing is recorded)."""
    backend = ctx.device.backend
    with backend.context():
        grad_array = backend.xp.broadcast_to(grad._data, out._data.shape)
        result = _along_last(backend.xp, backend.softmax_backward, (grad_array, out._data), ctx.axis, log)
    return Tensor._wrap(result, ctx.device)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        backend = ctx.device.backend
        out = _along_last(backend.xp, backend.softmax_forward, (x,), axis, False)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        if not is_grad_enabled():
            return _fused_backward(ctx, grad, out, False)
        # Recorded (create_graph): d softmax = y * (g - sum(g * y)) along the row, in gradflow ops.
        return out * (grad - (grad * out).sum(ctx.axis, keepdim=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        backend = ctx.device.backend
        out = _along_last(backend.xp, backend.softmax_forward, (x,), axis, True)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        if not is_grad_enabled():
            return _fused_backward(ctx, grad, out, True)
        # Recorded (create_graph): d log_softmax = g - softmax * sum(g) along the row, in gradflow ops.
        return grad - out.exp() * grad.sum(ctx.axis, keepdim=True)


def _prepare(op: str, input, dim, dtype):
    if dim is None:
        raise TypeError(f"{op}: pass dim= (the dimension to normalise over), e.g. {op}(x, dim=-1)")
    if dtype is not None:
        input = input.to(dtype)
    require_float(op, input)
    return input, normalize_dim(dim, input.ndim, op)


def softmax(input, dim=None, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim``; ``dtype`` casts the input first (as in PyTorch)."""
    input, axis = _prepare("softmax", input, dim, dtype)
    return Softmax.apply(input, axis if input.ndim else None)


def log_softmax(input, dim=None, dtype=None):
    """log(softmax(x)) along ``dim``, computed as x - max - log(sum(exp(x - max)))."""
    input, axis = _prepare("log_softmax", input, dim, dtype)
    return LogSoftmax.apply(input, axis if input.ndim else None)


TENSOR_METHODS = ("softmax", "log_softmax")
__all__ = list(TENSOR_METHODS)
