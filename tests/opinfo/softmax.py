"""Op table entries for softmax, log_softmax and scaled-dot-product attention.

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
]
