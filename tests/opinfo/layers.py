"""Op table entries for layer functions: linear, embedding, one_hot, and F.pad with wide pads.

``embedding``'s gradient conventions (no gradient into ``padding_idx``'s row, division by
the index counts with ``scale_grad_by_freq``) are not derivatives of its forward, so those
variants are checked forward only here; their gradients are compared with PyTorch in
tests/nn/test_dropout_embedding.py. ``max_norm`` rescales rows in place before the lookup
(forward only too, as in PyTorch, where it is not differentiable).
The shape family's pad entries draw pads of 0 or 1; the ones here reach the limits of each
mode (reflect: size - 1, circular: size) on several dims at once.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow.nn.functional as F

from . import OpInfo, Sample, shapes, values
from .shape import _pad_ref

# -- linear ----------------------------------------------------------------------------------------


def _linear_ref(x, weight, bias=None):
    out = x @ weight.T
    return out if bias is None else out + bias


def _linear_sample(draw):
    in_features, out_features = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    leading = shapes(draw, min_dims=0, max_dims=2, max_side=3)
    x = values(draw, (*leading, in_features))
    vector = draw(st.integers(0, 4)) == 0  # a 1-D weight: a dot product per row
    weight = values(draw, (in_features,) if vector else (out_features, in_features))
    bias_shape = draw(st.sampled_from([None, ()] if vector else [None, (), (out_features,), (out_features,)]))
    return Sample((x, weight, None if bias_shape is None else values(draw, bias_shape)))


# -- embedding and one_hot -------------------------------------------------------------------------


def _embedding_ref(indices, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False):
    if max_norm is not None:  # the referenced rows, rescaled to max_norm where their norm exceeds it
        weight = weight.copy()
        rows = np.unique(indices)
        norms = np.linalg.norm(weight[rows], ord=norm_type, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[rows] = weight[rows] * scale[:, None]
    return weight[indices]


def _embedding_sample(padding=False, max_norm=False, scale=False):
    def sample(draw):
        num, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        indices = rng.integers(0, num, size=shapes(draw, max_dims=2)).astype(
            draw(st.sampled_from([np.int64, np.int32]))
        )
        kwargs = {}
        if padding:
            kwargs["padding_idx"] = draw(st.integers(-num, num - 1))
        if max_norm:
            kwargs["max_norm"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
            kwargs["norm_type"] = draw(st.sampled_from([1.0, 2.0, 3.0]))
        if scale:
            kwargs["scale_grad_by_freq"] = True
        return Sample((indices, values(draw, (num, dim))), kwargs)

    return sample


def _one_hot_ref(indices, num_classes=-1):
    classes = int(indices.max()) + 1 if num_classes == -1 else num_classes
    return (indices[..., None] == np.arange(classes)).astype(np.int64)


def _one_hot_sample(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    indices = rng.integers(0, 4, size=shapes(draw, max_dims=2)).astype(np.int64)
    return Sample((indices,), {"num_classes": draw(st.sampled_from([-1, 4, 6]))})


# -- pad -------------------------------------------------------------------------------------------


def _wide_pad_sample(mode: str):
    def sample(draw):
        shape = shapes(draw, min_dims=1, max_side=4, min_side=2)
        padded = draw(st.integers(1, len(shape)))
        widths = []
        for i in range(padded):
            size = shape[-1 - i]
            limit = {"reflect": size - 1, "circular": size, "replicate": 3}[mode]
            widths += [draw(st.integers(0, limit)), draw(st.integers(0, limit))]
        return Sample((values(draw, shape), tuple(widths)), {"mode": mode})

    return sample


OPS = [
    OpInfo("linear", F.linear, _linear_ref, _linear_sample, max_examples=16),
    OpInfo("embedding", F.embedding, _embedding_ref, _embedding_sample(), max_examples=12),
    OpInfo("embedding_padding_idx", F.embedding, _embedding_ref, _embedding_sample(padding=True), grad=False),
    OpInfo("embedding_scale_grad_by_freq", F.embedding, _embedding_ref, _embedding_sample(scale=True), grad=False),
    OpInfo("embedding_max_norm", F.embedding, _embedding_ref, _embedding_sample(max_norm=True), grad=False),
    OpInfo("one_hot", F.one_hot, _one_hot_ref, _one_hot_sample, grad=False),
    *(
        OpInfo(f"pad_{mode}_wide", F.pad, _pad_ref, _wide_pad_sample(mode), max_examples=6)
        for mode in ("reflect", "replicate", "circular")
    ),
]
