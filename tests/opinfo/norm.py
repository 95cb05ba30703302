"""Op table entries for normalisation: layer_norm, group_norm, batch_norm (training and eval).

Each op is drawn with and without its affine parameters; the weight and bias, when present,
follow the input among the arguments, so gradcheck and gradgradcheck cover the gradients
with respect to them too (and, in eval-mode batch norm, with respect to the running
statistics, which are plain operands there). Training-mode batch norm runs without running
statistics: updating them in place would change the operands between finite differences.
``eps`` is at least 1e-3 wherever the variance is the batch's own, which bounds ``rstd`` by
about 32 however close a group's values are, so central differences stay accurate.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from gradflow.nn import functional as F

from . import OpInfo, Sample, values

EPS = (1e-3, 0.1)  # small enough to matter in the second derivatives, large enough for central differences


def _normalize(x, axes, eps):
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance)."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _parameters(draw, shape, affine):
    """``()`` or ``(weight, bias)`` of ``shape`` (weights near 1, biases near 0)."""
    if not affine:
        return ()
    return values(draw, shape, 0.5, 1.5), values(draw, shape, -1.0, 1.0)


def _channel_affine(out, params):
    """``out * weight + bias`` with per-channel parameters along dim 1."""
    if not params:
        return out
    shape = (-1,) + (1,) * (out.ndim - 2)
    return out * params[0].reshape(shape) + params[1].reshape(shape)


# -- layer_norm --------------------------------------------------------------------------------------------------
def _layer_norm_sample(draw):
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    normalized = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    x = values(draw, (*lead, *normalized))
    affine = draw(st.booleans())
    params = _parameters(draw, tuple(normalized), affine)
    return Sample((x, *params), {"normalized_shape": tuple(normalized), "eps": draw(st.sampled_from(EPS))})


def _layer_norm(x, *params, normalized_shape, eps):
    return F.layer_norm(x, normalized_shape, *params, eps=eps)


def _layer_norm_ref(x, *params, normalized_shape, eps):
    out = _normalize(x, tuple(range(x.ndim - len(normalized_shape), x.ndim)), eps)
    return out * params[0] + params[1] if params else out


# -- group_norm --------------------------------------------------------------------------------------------------
def _group_norm_sample(draw):
    groups = draw(st.integers(1, 3))
    per_group = draw(st.integers(1, 2))
    spatial = draw(st.lists(st.integers(1, 3), max_size=2))
    if per_group * math.prod(spatial) < 2:  # a group of one value normalises to 0 and torch refuses it
        spatial = [2, *spatial]
    x = values(draw, (draw(st.integers(1, 2)), groups * per_group, *spatial))
    params = _parameters(draw, (groups * per_group,), draw(st.booleans()))
    return Sample((x, *params), {"num_groups": groups, "eps": draw(st.sampled_from(EPS))})


def _group_norm(x, *params, num_groups, eps):
    return F.group_norm(x, num_groups, *params, eps=eps)


def _group_norm_ref(x, *params, num_groups, eps):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    return _channel_affine(_normalize(grouped, (2,), eps).reshape(x.shape), params)


# -- batch_norm ----------------------------------------------------------------------------------------------------
def _batch_shape(draw):
    """``(N, C, *spatial)`` with at least two values per channel."""
    shape = [draw(st.integers(1, 3)), draw(st.integers(1, 3)), *draw(st.lists(st.integers(1, 3), max_size=2))]
    if shape[0] * math.prod(shape[2:]) < 2:
        shape[0] = 2
    return tuple(shape)


def _batch_norm_sample(draw):
    shape = _batch_shape(draw)
    params = _parameters(draw, (shape[1],), draw(st.booleans()))
    return Sample((values(draw, shape), *params), {"eps": draw(st.sampled_from(EPS))})


def _batch_norm_training(x, *params, eps):
    return F.batch_norm(x, None, None, *params, training=True, eps=eps)


def _batch_norm_training_ref(x, *params, eps):
    return _channel_affine(_normalize(x, (0, *range(2, x.ndim)), eps), params)


def _batch_norm_eval_sample(draw):
    shape = _batch_shape(draw)
    channels = (shape[1],)
    running = values(draw, channels, -1.0, 1.0), values(draw, channels, 0.5, 2.0)
    params = _parameters(draw, channels, draw(st.booleans()))
    return Sample((values(draw, shape), *running, *params), {"eps": draw(st.sampled_from((1e-5, *EPS)))})


def _batch_norm_eval(x, running_mean, running_var, *params, eps):
    return F.batch_norm(x, running_mean, running_var, *params, training=False, eps=eps)


def _batch_norm_eval_ref(x, running_mean, running_var, *params, eps):
    shape = (-1,) + (1,) * (x.ndim - 2)
    out = (x - running_mean.reshape(shape)) / np.sqrt(running_var.reshape(shape) + eps)
    return _channel_affine(out, params)


OPS = [
    OpInfo("layer_norm", _layer_norm, _layer_norm_ref, _layer_norm_sample, atol=1e-9, rtol=1e-8),
    OpInfo("group_norm", _group_norm, _group_norm_ref, _group_norm_sample, atol=1e-9, rtol=1e-8),
    OpInfo(
        "batch_norm_training",
        _batch_norm_training,
        _batch_norm_training_ref,
        _batch_norm_sample,
        atol=1e-9,
        rtol=1e-8,
    ),
    OpInfo("batch_norm_eval", _batch_norm_eval, _batch_norm_eval_ref, _batch_norm_eval_sample),
]
