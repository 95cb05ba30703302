"""Matrix products: matmul (1-D, 2-D and batched with broadcasting), mm, bmm, dot, outer."""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.grad_mode import _state as _grad_state
from ..errors import ArgumentTypeError, ShapeError, shape_str
from ..tensor import Tensor
from ._operands import promote_operands


class MatMul(Function):
    """Product of two tensors of at least two dimensions (batch dimensions broadcast)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.device.backend.xp.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        needs_a, needs_b = ctx.needs_input_grad
        # The engine sums broadcast batch dimensions back to each input's shape.
        grad_a = grad.matmul(b.mT) if needs_a else None
        grad_b = a.mT.matmul(grad) if needs_b else None
        return grad_a, grad_b


def _shape_text(shape) -> str:
    return "x".join(str(s) for s in shape)


def _cannot_multiply(op: str, a: Tensor, b: Tensor):
    return ShapeError(
        f"{op}: mat1 and mat2 shapes cannot be multiplied ({_shape_text(a.shape)} and {_shape_text(b.shape)}); "
        "the last dimension of the first must equal the first matrix dimension of the second (transpose one?)"
    )


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands act as vectors, leading dimensions broadcast."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise ArgumentTypeError("matmul: both operands must be tensors")
    (a, b), _ = promote_operands("matmul", input, other)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"matmul: both arguments need at least 1 dimension, got shapes {shape_str(a.shape)} and "
            f"{shape_str(b.shape)}; use * for scaling"
        )
    a_matrix = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b_matrix = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    if a_matrix.shape[-1] != b_matrix.shape[-2]:
        raise _cannot_multiply("matmul", a, b)
    try:
        out = MatMul.apply(a_matrix, b_matrix)
    except ValueError:
        raise ShapeError(
            f"matmul: batch dimensions of {shape_str(a.shape)} and {shape_str(b.shape)} cannot be broadcast together"
        ) from None
    if a.ndim == 1 and b.ndim == 1:
        return out.reshape(())
    if a.ndim == 1:
        return out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        return out.reshape(out.shape[:-1])
    return out


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(
            f"mm: expected two 2-D tensors, got shapes {shape_str(input.shape)} and {shape_str(mat2.shape)}; "
            "use matmul for vectors and batches"
        )
    if input.shape[1] != mat2.shape[0]:
        raise _cannot_multiply("mm", input, mat2)
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of two 3-D tensors with the same batch size (no broadcasting)."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(
            f"bmm: expected two 3-D tensors, got shapes {shape_str(input.shape)} and {shape_str(mat2.shape)}"
        )
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(
            f"bmm: batch sizes differ ({input.shape[0]} and {mat2.shape[0]}) for shapes {shape_str(input.shape)} "
            f"and {shape_str(mat2.shape)}; bmm does not broadcast, use matmul"
        )
    if input.shape[2] != mat2.shape[1]:
        raise _cannot_multiply("bmm", input, mat2)
    return matmul(input, mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors of the same length."""
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(
            f"dot: expected two 1-D tensors, got shapes {shape_str(input.shape)} and {shape_str(other.shape)}"
        )
    if input.shape[0] != other.shape[0]:
        raise ShapeError(
            f"dot: inconsistent tensor size, expected tensors of the same length but got {input.shape[0]} "
            f"and {other.shape[0]}"
        )
    return matmul(input, other)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-D tensors: ``out[i, j] = input[i] * vec2[j]``."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise ShapeError(
            f"outer: expected two 1-D tensors, got shapes {shape_str(input.shape)} and {shape_str(vec2.shape)}"
        )
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


ger = outer

# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = ("matmul", "mm", "bmm", "dot", "outer", "ger")

__all__ = [*TENSOR_METHODS]


class Linear(Function):
    """``x @ weight.T + bias`` in one node: one matmul forward, two for backward."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        xp = ctx.device.backend.xp
        out = xp.matmul(x, weight.T)
        if bias is not None:
            out += bias
        ctx.bias_shape = None if bias is None else bias.shape
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        if not _grad_state.enabled and grad.ndim == 2:
            return _linear_backward_arrays(ctx, grad, x, weight)
        grad_x = grad.matmul(weight) if needs_x else None
        grad_weight = None
        if needs_weight:
            # Fold leading dimensions so one matrix product covers every batch dimension.
            grad_weight = grad.reshape(-1, grad.shape[-1]).t().matmul(x.reshape(-1, x.shape[-1]))
        # The bias was broadcast over the leading dimensions: the engine sums its gradient back.
        return grad_x, grad_weight, grad if needs_bias else None


def _linear_backward_arrays(ctx, grad: Tensor, x: Tensor, weight: Tensor) -> tuple:
    """Linear's first-order backward for a 2-D input, computed on the arrays.

    With grad mode off nothing is recorded, so the products and the bias sum run on the
    arrays directly: the same array calls the Tensor ops (matmul, t, sum_to_size) would make,
    without their per-op bookkeeping (this is every training step's backward).
    """
    needs_x, needs_weight, needs_bias = ctx.needs_input_grad
    xp, device = ctx.device.backend.xp, ctx.device
    grad_array = grad._data
    grad_x = Tensor._wrap(xp.matmul(grad_array, weight._data), device) if needs_x else None
    grad_weight = Tensor._wrap(xp.matmul(grad_array.T, x._data), device) if needs_weight else None
    grad_bias = None
    if needs_bias:
        # A (C,) bias: the column sum the engine's sum_to_size would take; a 0-d bias is left to the engine.
        grad_bias = grad
        if len(ctx.bias_shape) == 1:
            summed = xp.sum(grad_array, axis=(0,), keepdims=True).reshape(ctx.bias_shape)
            grad_bias = Tensor._wrap(summed, device)
    return grad_x, grad_weight, grad_bias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` (``weight`` is ``(out_features, in_features)``, as in PyTorch)."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    for name, value in zip(("input", "weight", "bias"), tensors):
        if not isinstance(value, Tensor):
            raise ArgumentTypeError(f"linear: {name} must be a Tensor, got {type(value).__name__}")
    if weight.ndim not in (1, 2) or input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise ShapeError(
            f"linear: input of shape {shape_str(input.shape)} and weight of shape {shape_str(weight.shape)} cannot be "
            "multiplied; the last dimension of the input must equal weight's in_features (weight is out x in)"
        )
    if weight.ndim == 1 or input.ndim == 1:  # vector cases: leave them to matmul's rules
        out = matmul(input, weight.t() if weight.ndim == 2 else weight)
        return out if bias is None else out + bias
    promoted, _ = promote_operands("linear", *tensors)
    if bias is None:
        return Linear.apply(promoted[0], promoted[1], None)
    expected = (weight.shape[0],)
    if bias.shape not in (expected, ()):
        raise ShapeError(f"linear: bias of shape {shape_str(bias.shape)} does not match out_features {weight.shape[0]}")
    return Linear.apply(*promoted)
