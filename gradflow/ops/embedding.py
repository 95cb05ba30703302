"""Lookups: embedding and one_hot.

``embedding`` reads rows of a weight table. Its backward scatters the incoming
gradient back into a zero table with ``backend.add_at`` (repeated indices add
up); the ``padding_idx`` row gets no gradient and ``scale_grad_by_freq`` divides
each row's gradient by how often its index occurs in the batch. The two
Functions are each other's backward, so double backward comes free.
"""

from __future__ import annotations

import math

from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from ..dtypes import int32, int64
from ..errors import (
    ArgumentTypeError,
    ArgumentValueError,
    DtypeError,
    IndexOutOfRangeError,
    ShapeError,
    device_mismatch,
    shape_str,
)
from ..tensor import Tensor
from ._checks import out_of_range_value


class EmbeddingLookup(Function):
    """``weight[indices]``: rows of the table for each index."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx, scale_grad_by_freq):
        ctx.num_weights = weight.shape[0]
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        ctx.save_for_backward(indices)
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        grad_weight = EmbeddingScatter.apply(grad, indices, ctx.num_weights, ctx.padding_idx, ctx.scale_grad_by_freq)
        return grad_weight, None, None, None


def _row_factors(xp, flat_indices, num_weights, padding_idx, scale_grad_by_freq, dtype):
    """Per-index gradient factor: 0 at padding_idx, 1/count with scale_grad_by_freq, else 1 (None when all 1)."""
    if padding_idx is None and not scale_grad_by_freq:
        return None
    factors = xp.ones(flat_indices.shape, dtype=dtype)
    if scale_grad_by_freq:
        counts = xp.bincount(flat_indices, minlength=num_weights)
        factors = factors / counts[flat_indices].astype(dtype)
    if padding_idx is not None:
        factors = xp.where(flat_indices == padding_idx, dtype.type(0), factors)
    return factors


class EmbeddingScatter(Function):
    """The gradient of a lookup: rows of ``grad`` added into a zero table at ``indices``."""

    @staticmethod
    def forward(ctx, grad, indices, num_weights, padding_idx, scale_grad_by_freq):
        backend = ctx.device.backend
        xp = backend.xp
        width = grad.shape[-1]
        flat_indices = indices.reshape(-1)
        rows = grad.reshape(flat_indices.shape[0], width)  # not -1: an embedding of width 0 has 0 elements
        factors = _row_factors(xp, flat_indices, num_weights, padding_idx, scale_grad_by_freq, grad.dtype)
        if factors is not None:
            rows = rows * factors[:, None]
        out = xp.zeros((num_weights, width), dtype=grad.dtype)
        if rows.size:
            backend.add_at(out, flat_indices, rows)
        ctx.factors = factors
        ctx.save_for_backward(indices)
        return out

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        # The adjoint of "scale rows, then add at indices" is "look up, then scale rows".
        looked_up = EmbeddingLookup.apply(grad, indices, None, False)
        if ctx.factors is not None:
            factors = Tensor._wrap(ctx.factors.reshape(*indices.shape, 1), grad._device)
            looked_up = looked_up * factors
        return looked_up, None, None, None, None


def _check_indices(op: str, input, reference: Tensor) -> Tensor:
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(
            f"{op}: input must be an int64 Tensor of indices, got {type(input).__name__}; "
            "wrap it with gradflow.tensor(..., dtype=gradflow.int64)"
        )
    if input._dtype not in (int64, int32):
        raise DtypeError(
            f"{op}: expected the indices to be int64 or int32, got {input._dtype.name} of shape "
            f"{shape_str(input.shape)}; convert them with .long()"
        )
    if input._device is not reference._device:
        raise device_mismatch(op, reference._device, input._device, "input (indices)", "the weight")
    return input


def _check_range(input: Tensor, num_weights: int) -> None:
    bad = out_of_range_value(input._data, 0, num_weights)
    if bad is not None:
        raise IndexOutOfRangeError(
            f"embedding: index out of range: index {bad} is not in [0, {num_weights - 1}] for a weight table of "
            f"{num_weights} embeddings (shape [{num_weights}, ...]); check the vocabulary size or clamp the indices"
        )


def _renorm_rows(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    """Rescale in place the referenced rows whose ``norm_type``-norm exceeds ``max_norm`` (PyTorch's renorm)."""
    xp = weight._device.backend.xp
    rows = xp.unique(input._data.reshape(-1))
    values = weight._data[rows]
    magnitudes = xp.abs(values)
    if math.isinf(norm_type):
        norms = magnitudes.max(axis=1) if norm_type > 0 else magnitudes.min(axis=1)
    else:
        norms = (magnitudes**norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(values.dtype)
    weight._data[rows] = values * scale[:, None]
    weight._bump_version()


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` (``(num_embeddings, embedding_dim)``) for each index in ``input``: ``(*input.shape, dim)``.

    ``padding_idx``: that row gets no gradient. ``max_norm``: referenced rows with a
    larger ``norm_type``-norm are rescaled to it, in place in ``weight`` (no gradient).
    ``scale_grad_by_freq``: gradients are divided by each index's count in the batch.

    >>> import gradflow as gf
    >>> table = gf.randn(10, 3)
    >>> gf.nn.functional.embedding(gf.tensor([[1, 2], [4, 9]]), table).shape
    (2, 2, 3)
    """
    if not isinstance(weight, Tensor):
        raise ArgumentTypeError(
            f"embedding: weight must be a Tensor, got {type(weight).__name__}; pass a 2-D weight table"
        )
    if weight.ndim != 2:
        raise ShapeError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {shape_str(weight.shape)}"
        )
    if sparse:
        raise ArgumentValueError("embedding: sparse gradients are not supported by gradflow; pass sparse=False")
    input = _check_indices("embedding", input, weight)
    num_weights = weight.shape[0]
    if padding_idx is not None:
        if not -num_weights <= padding_idx < num_weights:
            raise IndexOutOfRangeError(
                f"embedding: Padding_idx must be within num_embeddings: got padding_idx={padding_idx} for "
                f"{num_weights} embeddings; use a value in [{-num_weights}, {num_weights - 1}]"
            )
        padding_idx = padding_idx + num_weights if padding_idx < 0 else int(padding_idx)
    _check_range(input, num_weights)
    if max_norm is not None:
        with no_grad():
            _renorm_rows(weight, input, float(max_norm), float(norm_type))
    return EmbeddingLookup.apply(weight, input, padding_idx, bool(scale_grad_by_freq))


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape ``(*tensor.shape, num_classes)`` with a 1 at each index (``-1``: max + 1).

    >>> import gradflow as gf
    >>> gf.nn.functional.one_hot(gf.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    if not isinstance(tensor, Tensor) or tensor._dtype is not int64:
        got = tensor._dtype.name if isinstance(tensor, Tensor) else type(tensor).__name__
        raise DtypeError(
            f"one_hot: one_hot is only applicable to index tensor of type LongTensor (int64), got {got}; "
            "convert it with .long()"
        )
    data = tensor._data
    if num_classes == -1:
        if data.size == 0:
            raise ShapeError(
                "one_hot: Can not infer total number of classes from empty tensor; pass num_classes explicitly"
            )
        num_classes = int(data.max()) + 1
    if data.size:
        bad = out_of_range_value(data, 0, num_classes)
        if bad is not None and bad < 0:
            raise IndexOutOfRangeError(f"one_hot: Class values must be non-negative, got {bad}")
        if bad is not None:
            raise IndexOutOfRangeError(
                f"one_hot: Class values must be smaller than num_classes, got {bad} with num_classes={num_classes}"
            )
    elif num_classes < 0:
        raise ArgumentValueError(
            f"one_hot: num_classes must be non-negative or -1, got {num_classes}; use -1 to infer it"
        )
    xp = tensor._device.backend.xp
    classes = xp.arange(num_classes, dtype=data.dtype)
    return Tensor._wrap((data[..., None] == classes).astype(xp.int64), tensor._device)


__all__ = ["embedding", "one_hot"]
