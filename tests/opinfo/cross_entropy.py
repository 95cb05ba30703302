"""Op table entries for cross_entropy: class indices (the fused ``SoftmaxCrossEntropy``) and probabilities.

Class-index targets are int64 arrays (tensors that do not require grad); some equal
``ignore_index``. Class weights are passed as a tuple and made a tensor inside the op (they
take no gradient, as in PyTorch). gradgradcheck differentiates ``CrossEntropyBackward``'s own
backward against finite differences of the fused first-order gradient.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow as gf
import gradflow.nn.functional as F

from . import OpInfo, Sample, values


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _class_view(weight, ndim):
    return np.asarray(weight).reshape((1, -1) + (1,) * (ndim - 2))


def _index_ref(logits, target, weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """PyTorch's formula, written out: loss_n = -(1 - eps) w[t] logp[t] - eps / C sum_c w[c] logp[c]."""
    unbatched = logits.ndim == 1
    if unbatched:
        logits, target = logits[None], target.reshape(1)
    classes = logits.shape[1]
    weight = np.ones(classes) if weight is None else np.asarray(weight)
    log_probs = _log_softmax(logits, 1)
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    picked = np.take_along_axis(log_probs, safe[:, None], axis=1)[:, 0]
    smoothed = np.sum(log_probs * _class_view(weight, logits.ndim), axis=1) / classes
    losses = np.where(keep, -(1 - label_smoothing) * weight[safe] * picked - label_smoothing * smoothed, 0.0)
    if reduction == "none":
        return losses.reshape(()) if unbatched else losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / np.sum(np.where(keep, weight[safe], 0.0))


def _index_op(logits, target, weight=None, **kwargs):
    if weight is not None:
        weight = gf.tensor(weight, dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits, target, weight=weight, **kwargs)


def _index_sample(draw):
    """(C,), (N, C) or (N, C, d) logits; targets with some ignored (never all, so 'mean' stays finite)."""
    kind = draw(st.sampled_from(["unbatched", "2d", "3d"]))
    classes = draw(st.integers(1, 4))
    batch = draw(st.integers(1, 3))
    shape = {"unbatched": (classes,), "2d": (batch, classes), "3d": (batch, classes, draw(st.integers(1, 3)))}[kind]
    logits = values(draw, shape, -3.0, 3.0)
    target_shape = () if kind == "unbatched" else (shape[0], *shape[2:])
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    target = rng.integers(0, classes, target_shape)
    # ignore_index: the default -100, or a class (1) whose targets are then ignored; the first
    # target is always kept.
    ignore_index = draw(st.sampled_from([-100, 1]))
    ignored = rng.random(target_shape) < 0.3
    target = np.where(ignored, ignore_index, target)
    if target.flat[0] == ignore_index:
        target.flat[0] = 0
    kwargs = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "ignore_index": ignore_index,
        "label_smoothing": draw(st.sampled_from([0.0, 0.2])),
    }
    args = (logits, target.astype(np.int64))
    if draw(st.booleans()):
        args = (*args, tuple(float(w) for w in rng.uniform(0.5, 2.0, classes)))
    return Sample(args, kwargs)


def _probability_ref(logits, target, reduction="mean", label_smoothing=0.0):
    classes = logits.shape[1]
    target = target * (1 - label_smoothing) + label_smoothing / classes
    losses = -np.sum(_log_softmax(logits, 1) * target, axis=1)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / losses.size


def _probability_sample(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    target = values(draw, shape, 0.0, 1.0)
    target = target / target.sum(axis=1, keepdims=True)
    kwargs = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.2])),
    }
    return Sample((values(draw, shape, -3.0, 3.0), target), kwargs)


OPS = [
    OpInfo("cross_entropy", _index_op, _index_ref, _index_sample, max_examples=25),
    OpInfo("cross_entropy_probabilities", F.cross_entropy, _probability_ref, _probability_sample),
]
