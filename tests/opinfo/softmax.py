"""Op table entries for softmax, log_softmax and attention (scaled-dot-product and multi-head).

All three run their backward through the fused ``SoftmaxBackward`` (attention through its
safe softmax, which zeroes fully masked rows), so gradgradcheck here differentiates that
Function's own backward against finite differences of the fused first-order gradient.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import gradflow as gf
import gradflow.nn.functional as F

from . import OpInfo, Sample, shapes, values


def _softmax_ref(x, dim, log=False):
    shifted = x - np.max(x, axis=dim, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
    return log_probs if log else np.exp(log_probs)


def _softmax_sample(draw):
    shape = shapes(draw, min_dims=0)
    dim = draw(st.sampled_from(list(range(-len(shape), len(shape))) or [0]))
    return Sample((values(draw, shape, -3.0, 3.0),), {"dim": dim})


def _sdpa_ref(query, key, value, attn_mask=None, is_causal=False, scale=None):
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query @ np.swapaxes(key, -1, -2) * scale
    if is_causal:
        attn_mask = np.tril(np.ones(scores.shape[-2:], dtype=bool))
    if attn_mask is not None:
        scores = np.where(attn_mask, scores, -np.inf) if attn_mask.dtype == bool else scores + attn_mask
    peak = np.max(scores, axis=-1, keepdims=True)
    masked = ~np.isfinite(peak)  # every key masked out: the row attends to nothing (zeros)
    exp = np.exp(scores - np.where(masked, 0, peak))
    weights = np.where(masked, 0, exp / np.where(masked, 1, np.sum(exp, axis=-1, keepdims=True)))
    return weights @ value


def _sdpa_sample(draw):
    """(..., L, E) query, (..., S, E) key, (..., S, Ev) value; no mask, a bool mask (sometimes with a
    fully masked row), a float mask (added to the scores, differentiable), or is_causal; a scale or not."""
    lead = shapes(draw, min_dims=0, max_dims=2, max_side=2)
    length, source, width, value_width = (draw(st.integers(1, 4)) for _ in range(4))
    query = values(draw, (*lead, length, width))
    key = values(draw, (*lead, source, width))
    value = values(draw, (*lead, source, value_width))
    kwargs = {}
    if draw(st.booleans()):
        kwargs["scale"] = draw(st.sampled_from([0.3, 1.5]))
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    if kind == "none":
        return Sample((query, key, value), kwargs)
    if kind == "causal":
        return Sample((query, key, value), {**kwargs, "is_causal": True})
    if kind == "float":
        return Sample((query, key, value, values(draw, (length, source), -1.0, 1.0)), kwargs)
    mask = values(draw, (length, source), 0.0, 1.0) < 0.7
    if draw(st.booleans()):
        mask[0] = False
    return Sample((query, key, value, mask), kwargs)


def _mha_ref(query, key, value, in_weight, in_bias, out_weight, out_bias, key_padding_mask, num_heads, need_weights):
    """PyTorch's multi_head_attention_forward for (L, N, E) inputs, written out in NumPy."""
    length, batch, width = query.shape
    source, head_width = key.shape[0], width // num_heads
    projected = [x @ w.T + b for x, w, b in zip((query, key, value), np.split(in_weight, 3), np.split(in_bias, 3))]
    q, k, v = (p.reshape(p.shape[0], batch * num_heads, head_width).transpose(1, 0, 2) for p in projected)
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_width)
    if key_padding_mask is not None:  # (N, S), True = masked out; head i of sample n is row n * H + i
        scores = np.where(np.repeat(key_padding_mask, num_heads, axis=0)[:, None, :], -np.inf, scores)
    weights = _softmax_ref(scores, -1)
    out = (weights @ v).transpose(1, 0, 2).reshape(length * batch, width) @ out_weight.T + out_bias
    out = out.reshape(length, batch, width)
    if need_weights:
        return out, weights.reshape(batch, num_heads, length, source).mean(axis=1)
    return out


def _mha_op(query, key, value, in_weight, in_bias, out_weight, out_bias, key_padding_mask, num_heads, need_weights):
    out, weights = F.multi_head_attention_forward(
        query, key, value, query.shape[-1], num_heads, in_weight, in_bias, None, None, False, 0.0,
        out_weight, out_bias, training=False, key_padding_mask=key_padding_mask, need_weights=need_weights,
    )  # fmt: skip
    return (out, weights) if need_weights else out


def _mha_sample(draw):
    """Separate query/key/value (L, N, E) / (S, N, E); projection weights and biases (all differentiable);
    1 or 2 heads; a key padding mask (never masking a whole row) or none; the weights returned or not
    (need_weights=False goes through scaled_dot_product_attention, True through plain softmax)."""
    num_heads = draw(st.sampled_from([1, 2]))
    width = 2 * num_heads
    length, source, batch = (draw(st.integers(1, 3)) for _ in range(3))
    query = values(draw, (length, batch, width))
    key = values(draw, (source, batch, width))
    value = values(draw, (source, batch, width))
    in_weight, in_bias = values(draw, (3 * width, width), -1.0, 1.0), values(draw, (3 * width,), -0.5, 0.5)
    out_weight, out_bias = values(draw, (width, width), -1.0, 1.0), values(draw, (width,), -0.5, 0.5)
    padding = None
    if draw(st.booleans()):
        padding = values(draw, (batch, source), 0.0, 1.0) < 0.4
        padding[:, 0] = False
    arrays = (query, key, value, in_weight, in_bias, out_weight, out_bias, padding)
    return Sample((*arrays, num_heads, draw(st.booleans())))


OPS = [
    OpInfo("softmax", F.softmax, _softmax_ref, _softmax_sample, method="softmax", max_examples=15),
    OpInfo(
        "log_softmax",
        F.log_softmax,
        lambda x, dim: _softmax_ref(x, dim, log=True),
        _softmax_sample,
        method="log_softmax",
        max_examples=15,
    ),
    OpInfo(
        "scaled_dot_product_attention",
        gf.nn.functional.scaled_dot_product_attention,
        _sdpa_ref,
        _sdpa_sample,
        max_examples=20,
    ),
    OpInfo("multi_head_attention_forward", _mha_op, _mha_ref, _mha_sample, max_examples=15),
]
