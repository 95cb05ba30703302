"""softmax and log_softmax over one dimension, stable for any magnitude of input.

Both subtract the row maximum before exponentiating, so float32 logits of
+-1e4 give finite values and gradients. Forward and first-order backward are the
backend's fused primitives over the last axis (``softmax_forward`` /
``softmax_backward``: NumPy on the CPU, kernels/softmax.cu on CUDA); another
dimension is moved last around the call. The backward is ``SoftmaxBackward``, a
differentiable Function whose forward is the fused primitive and whose own backward
is written once in gradflow ops, so first- and higher-order gradients go through
the same formulas (attention's safe softmax and cross_entropy's second derivative
use it too).
"""

from __future__ import annotations

from ..autograd.function import Function
from ..errors import ArgumentTypeError
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


class SoftmaxBackward(Function):
    """The input gradient of softmax (``log=False``) or log-softmax from its output ``out``, along ``axis``.

    Forward: the backend's fused ``softmax_backward``: ``out * (grad - sum(grad * out))`` for
    softmax, ``grad - exp(out) * sum(grad)`` for log-softmax (sums along ``axis``; ``axis`` None
    for a 0-d input). Backward, with ``gg`` the incoming gradient and ``s = sum(grad * out)``:

    - softmax: along ``grad`` the map is symmetric, so it is this Function on ``gg``; along
      ``out`` it is ``gg * (grad - s) - grad * sum(gg * out)``;
    - log-softmax: along ``grad`` ``gg - sum(gg * p)``, along ``out`` ``-gg * p * sum(grad)``,
      with ``p = exp(out)``.
    """

    @staticmethod
    def forward(ctx, grad, out, axis, log):
        backend = ctx.device.backend
        ctx.axis, ctx.log = axis, log
        ctx.save_for_backward(grad, out)
        grad = backend.xp.broadcast_to(grad, out.shape)
        return _along_last(backend.xp, backend.softmax_backward, (grad, out), axis, log)

    @staticmethod
    def backward(ctx, gg):
        grad, out = ctx.saved_tensors
        axis = ctx.axis
        need_grad, need_out = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_grad = grad_out = None
        if ctx.log:
            p = out.exp()
            if need_grad:
                grad_grad = gg - (gg * p).sum(axis, keepdim=True)
            if need_out:
                grad_out = -gg * p * grad.sum(axis, keepdim=True)
        else:
            if need_grad:
                grad_grad = SoftmaxBackward.apply(gg, out, axis, False)
            if need_out:
                row_dot = (grad * out).sum(axis, keepdim=True)
                grad_out = gg * (grad - row_dot) - grad * (gg * out).sum(axis, keepdim=True)
        return grad_grad, grad_out, None, None


def softmax_backward(grad: Tensor, out: Tensor, dim: int | None, log: bool = False) -> Tensor:
    """The input gradient of softmax (or log-softmax) along ``dim`` from its output: one differentiable op."""
    return SoftmaxBackward.apply(grad, out, dim, log)


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
        return SoftmaxBackward.apply(grad, out, ctx.axis, False)


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
        return SoftmaxBackward.apply(grad, out, ctx.axis, True)


def _prepare(op: str, input, dim, dtype):
    if dim is None:
        raise ArgumentTypeError(f"{op}: pass dim= (the dimension to normalise over), e.g. {op}(x, dim=-1)")
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
