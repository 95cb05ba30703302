"""Attention: scaled_dot_product_attention and multi_head_attention_forward.

Both are composites of matmul, softmax and masking. ``scaled_dot_product_attention``
uses a "safe" softmax, as PyTorch does: a query row whose every key is masked out
(all scores -inf) attends to nothing and gets zeros, not NaN. ``multi_head_attention_forward``
follows PyTorch's function step by step (masks, in-projection, bias_k/bias_v, zero
attention, head split, weights averaged over heads), so a module holding PyTorch's
parameters gives PyTorch's numbers.
"""

from __future__ import annotations

import math
import warnings

from ..autograd.function import Function
from ..dtypes import bool as bool_dtype
from ..errors import ArgumentTypeError, DtypeError, ShapeError, shape_str
from ..tensor import Tensor
from ._checks import broadcast_shapes_or_raise, require_float
from .creation import ones, zeros, zeros_like
from .dropout import dropout
from .join import cat
from .linalg import linear
from .padding import pad
from .softmax import SoftmaxBackward, softmax

_SDPA = "scaled_dot_product_attention"


class SafeSoftmax(Function):
    """Softmax over the last axis whose all -inf rows give zeros (PyTorch's ``_safe_softmax``).

    The backend's fused softmax (an all -inf row comes out NaN there), then those rows set to 0.
    The backward is softmax's own (``SoftmaxBackward``, differentiable again): a zeroed row's
    output is 0, so the same formula gives it a zero gradient.
    """

    @staticmethod
    def forward(ctx, x):
        backend = ctx.device.backend
        xp = backend.xp
        out = backend.softmax_forward(x, False)
        if x.size:
            masked = xp.all(x == -xp.inf, axis=-1, keepdims=True)
            out = xp.where(masked, 0, out).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return SoftmaxBackward.apply(grad, out, out.ndim - 1, False)


def _check_sdpa_inputs(query, key, value, attn_mask) -> None:
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        if not isinstance(tensor, Tensor):
            raise ArgumentTypeError(
                f"{_SDPA}: {name} must be a Tensor, got {type(tensor).__name__}; wrap it with gradflow.tensor()"
            )
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ShapeError(
            f"{_SDPA}: Expected query, key, and value to all be at least 2 dimensional, but got query.dim: "
            f"{query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead"
        )
    if key.dtype is not query.dtype or value.dtype is not query.dtype:
        raise DtypeError(
            f"{_SDPA}: Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{query.dtype.name} key.dtype: {key.dtype.name} and value.dtype: {value.dtype.name}; cast them to one"
        )
    require_float(_SDPA, query)
    if key.shape[-1] != query.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"{_SDPA}: query {shape_str(query.shape)}, key {shape_str(key.shape)} and value {shape_str(value.shape)} "
            "do not fit: expected query (..., L, E), key (..., S, E) and value (..., S, Ev)"
        )
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise ArgumentTypeError(
                f"{_SDPA}: attn_mask must be a Tensor or None, got {type(attn_mask).__name__}; wrap it"
            )
        if attn_mask.dtype is not bool_dtype and attn_mask.dtype is not query.dtype:
            raise DtypeError(
                f"{_SDPA}: Expected attn_mask dtype to be bool or to match query dtype, but got attn_mask.dtype: "
                f"{attn_mask.dtype.name} and query.dtype: {query.dtype.name}; convert the mask with .to(query.dtype)"
            )


def _repeat_heads(tensor: Tensor, groups: int) -> Tensor:
    """(..., H, S, E) -> (..., H * groups, S, E), each head repeated ``groups`` times in a row."""
    *lead, heads, length, width = tensor.shape
    expanded = tensor.unsqueeze(-3).expand(*lead, heads, groups, length, width)
    return expanded.reshape(*lead, heads * groups, length, width)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value`` over (..., L, E), (..., S, E), (..., S, Ev).

    ``attn_mask``: bool (True = may attend) or float (added to the scores), broadcast
    to (..., L, S). ``is_causal``: query i attends to keys 0..i (no attn_mask then).
    ``scale`` defaults to 1/sqrt(E). ``dropout_p`` drops attention weights (always, as
    in PyTorch's functional form). ``enable_gqa``: key/value heads (dim -3) are
    repeated to match the query's heads. Fully masked rows give zeros.

    >>> import gradflow as gf
    >>> q = gf.randn(2, 4, 8)
    >>> gf.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).shape
    (2, 4, 8)
    """
    _check_sdpa_inputs(query, key, value, attn_mask)
    if is_causal and attn_mask is not None:
        raise ShapeError(f"{_SDPA}: Explicit attn_mask should not be set when is_causal=True; pass one or the other")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        heads, kv_heads = query.shape[-3], key.shape[-3]
        if kv_heads == 0 or heads % kv_heads or value.shape[-3] != kv_heads:
            raise ShapeError(
                f"{_SDPA}: with enable_gqa the query's heads ({heads}) must be a multiple of the key's and value's "
                f"heads (got key {shape_str(key.shape)}, value {shape_str(value.shape)})"
            )
        key, value = _repeat_heads(key, heads // kv_heads), _repeat_heads(value, heads // kv_heads)
    broadcast_shapes_or_raise(_SDPA, query.shape[:-2], key.shape[:-2], value.shape[:-2])
    length, source = query.shape[-2], key.shape[-2]
    scale_factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query.matmul(key.transpose(-2, -1)) * scale_factor
    if is_causal:
        attn_mask = ones(length, source, dtype=bool_dtype, device=query.device).tril()
    if attn_mask is not None:
        broadcast_shapes_or_raise(f"{_SDPA} (attn_mask)", attn_mask.shape, scores.shape)
        if attn_mask.dtype is bool_dtype:
            scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            scores = scores + attn_mask
    weights = SafeSoftmax.apply(scores)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights.matmul(value)


def _canonical_mask(mask, name: str, other, other_name: str, target_dtype) -> Tensor | None:
    """A bool mask (True = masked out) as a float mask of -inf/0; float masks pass through."""
    if mask is None:
        return None
    if mask.dtype is not bool_dtype and not mask.dtype.is_floating_point:
        raise DtypeError(f"multi_head_attention_forward: only bool and floating types of {name} are supported")
    if other is not None and other.dtype is not mask.dtype:
        warnings.warn(
            f"Support for mismatched {name} and {other_name} is deprecated. Use same type for both instead.",
            stacklevel=3,
        )
    if mask.dtype is bool_dtype:
        return zeros_like(mask, dtype=target_dtype).masked_fill(mask, float("-inf"))
    return mask


def _check_mha_shapes(query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """PyTorch's shape rules; True for batched (3-D) input."""
    op = "multi_head_attention_forward"
    if query.ndim not in (2, 3):
        raise ShapeError(f"{op}: query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query")
    batched = query.ndim == 3
    rank = 3 if batched else 2
    if key.ndim != rank or value.ndim != rank:
        raise ShapeError(
            f"{op}: For {'batched (3-D)' if batched else 'unbatched (2-D)'} `query`, expected `key` and `value` to be "
            f"{rank}-D but found {key.ndim}-D and {value.ndim}-D tensors respectively"
        )
    if key_padding_mask is not None and key_padding_mask.ndim != rank - 1:
        raise ShapeError(
            f"{op}: expected `key_padding_mask` to be `None` or {rank - 1}-D but found {key_padding_mask.ndim}-D"
        )
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise ShapeError(f"{op}: expected `attn_mask` to be `None`, 2-D or 3-D but found {attn_mask.ndim}-D")
        if not batched and attn_mask.ndim == 3:
            expected = (num_heads, query.shape[0], key.shape[0])
            if tuple(attn_mask.shape) != expected:
                raise ShapeError(
                    f"{op}: Expected `attn_mask` shape to be {shape_str(expected)} but got {shape_str(attn_mask.shape)}"
                )
    return batched


def _in_projection(query, key, value, weights, biases):
    """q, k, v projections; self-attention shares one matmul over the packed weight."""
    if weights[3] is not None and query is key and key is value:
        return linear(query, weights[3], biases[3]).chunk(3, dim=-1)
    return tuple(linear(x, w, b) for x, w, b in zip((query, key, value), weights[:3], biases[:3]))


def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    bias_k: Tensor | None,
    bias_v: Tensor | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    training: bool = True,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None,
    static_k: Tensor | None = None,
    static_v: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention on (L, N, E) query and (S, N, E) key/value (or unbatched (L, E)); PyTorch's function.

    Returns ``(output, weights)``: output (L, N, E); weights (N, L, S) averaged over
    heads, (N, H, L, S) with ``average_attn_weights=False``, or None without ``need_weights``.
    ``key_padding_mask`` (N, S) and bool ``attn_mask`` mark with True what may NOT be attended.
    """
    op = "multi_head_attention_forward"
    batched = _check_mha_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    dtype, device = query.dtype, query.device
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", attn_mask, "attn_mask", dtype)
    if is_causal and attn_mask is None:
        raise ShapeError(
            f"{op}: Need attn_mask if specifying the is_causal hint; build one with "
            "gradflow.full((length, length), float('-inf')).triu(1)"
        )
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint lets attention build the causal mask itself
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", None, "", dtype)
        if key_padding_mask is not None:
            is_causal = False  # the merged mask is no longer causal
    if embed_dim != embed_dim_to_check:
        raise ShapeError(f"{op}: was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ShapeError(f"{op}: embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    same_rows = key.shape[:2] == value.shape[:2] if use_separate_proj_weight else key.shape == value.shape
    if not same_rows:
        raise ShapeError(f"{op}: key shape {shape_str(key.shape)} does not match value shape {shape_str(value.shape)}")
    biases = (None,) * 4 if in_proj_bias is None else (*in_proj_bias.chunk(3), in_proj_bias)
    if use_separate_proj_weight:
        weights = (q_proj_weight, k_proj_weight, v_proj_weight, None)
    else:
        weights = (*in_proj_weight.chunk(3), in_proj_weight)
    q, k, v = _in_projection(query, key, value, weights, biases)

    if attn_mask is not None:
        expected = (tgt_len, key.shape[0]) if attn_mask.ndim == 2 else (bsz * num_heads, tgt_len, key.shape[0])
        if tuple(attn_mask.shape) != expected:
            raise ShapeError(
                f"{op}: The shape of the {attn_mask.ndim}D attn_mask is {shape_str(attn_mask.shape)}, but should be "
                f"{shape_str(expected)}"
            )
        if attn_mask.ndim == 2:
            attn_mask = attn_mask.unsqueeze(0)
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise ShapeError(f"{op}: bias cannot be added to static key or value")
        k = cat([k, bias_k.expand(1, bsz, embed_dim)])
        v = cat([v, bias_v.expand(1, bsz, embed_dim)])
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    elif (bias_k is None) != (bias_v is None):
        raise ShapeError(f"{op}: bias_k and bias_v must be given together")

    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = _heads(op, "static_k", static_k, k, bsz * num_heads, head_dim)
    v = _heads(op, "static_v", static_v, v, bsz * num_heads, head_dim)
    if add_zero_attn:
        k = cat([k, zeros(bsz * num_heads, 1, head_dim, dtype=k.dtype, device=device)], dim=1)
        v = cat([v, zeros(bsz * num_heads, 1, head_dim, dtype=v.dtype, device=device)], dim=1)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise ShapeError(
                f"{op}: Expected key_padding_mask of shape {shape_str((bsz, src_len))} (batch, source length), but "
                f"got {shape_str(key_padding_mask.shape)}"
            )
        padding = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        padding = padding.reshape(bsz * num_heads, 1, src_len)
        attn_mask = padding if attn_mask is None else attn_mask + padding
    if not training:
        dropout_p = 0.0

    if need_weights:
        scores = (q * math.sqrt(1.0 / head_dim)).matmul(k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = softmax(scores, dim=-1)  # PyTorch's plain softmax here: fully masked rows are NaN
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        output = weights.matmul(v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        output = linear(output, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, out_proj_weight.shape[0])
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            output, weights = output.squeeze(1), weights.squeeze(0)
        return output, weights

    if attn_mask is not None:
        if attn_mask.shape[0] == 1 and attn_mask.ndim == 3:
            attn_mask = attn_mask.unsqueeze(0)
        else:
            # -1 is ambiguous for 0 elements (bsz 0): then any target length fits
            attn_mask = attn_mask.reshape(bsz, num_heads, -1 if attn_mask.numel() else tgt_len, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    output = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    output = output.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    output = linear(output, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, out_proj_weight.shape[0])
    return (output if batched else output.squeeze(1)), None


def _heads(op: str, name: str, static, projected: Tensor, rows: int, head_dim: int) -> Tensor:
    """(S, N, E) -> (N * H, S, head_dim), or the given static key/value after checking its shape."""
    if static is None:
        return projected.reshape(projected.shape[0], rows, head_dim).transpose(0, 1)
    if static.shape[0] != rows or static.shape[2] != head_dim:
        raise ShapeError(
            f"{op}: expecting {name} of shape [{rows}, S, {head_dim}] (batch * heads, source length, head_dim), "
            f"got {shape_str(static.shape)}"
        )
    return static


__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]
