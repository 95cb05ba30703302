"""Op table entries for the losses: regression, binary cross-entropy, KL divergence and nll_loss.

Every entry draws its reduction ('none', 'mean', 'sum'; kl_div also 'batchmean'). The
references are the formulas of PyTorch's documentation written in NumPy. Regression losses
broadcast the target against the input (PyTorch warns; the op table silences the warning).
Samples keep off the kinks: inputs are odd multiples of 0.05 and targets multiples of 0.1,
so |input - target| is never 0 (l1) nor a multiple of 0.1 (beta and delta are). Targets,
like inputs, require grad where the loss is differentiable in them; class weights and
pos_weight are constants (kwargs).
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import strategies as st

import gradflow.nn.functional as F

from . import OpInfo, Sample, broadcast_shapes, shapes, values

REDUCTIONS = ("none", "mean", "sum")


def _quiet(function):
    """The op without its broadcasting and 'mean' deprecation warnings (the table checks values)."""

    def op(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)

    return op


def _reduce(loss, reduction, weight_total=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (loss.size if weight_total is None else weight_total)


# -- regression ------------------------------------------------------------------------------------


def _difference(input, target):
    return input - target


def _mse_ref(input, target, reduction="mean", weight=None):
    loss = _difference(input, target) ** 2
    return _reduce(loss if weight is None else loss * weight, reduction, None if weight is None else weight.sum())


def _l1_ref(input, target, reduction="mean", weight=None):
    loss = np.abs(_difference(input, target))
    return _reduce(loss if weight is None else loss * weight, reduction, None if weight is None else weight.sum())


def _smooth_l1_ref(input, target, reduction="mean", beta=1.0):
    distance = np.abs(_difference(input, target))
    if beta == 0:
        return _reduce(distance, reduction)
    return _reduce(np.where(distance < beta, 0.5 * distance**2 / beta, distance - 0.5 * beta), reduction)


def _huber_ref(input, target, reduction="mean", delta=1.0, weight=None):
    distance = np.abs(_difference(input, target))
    loss = np.where(distance < delta, 0.5 * distance**2, delta * (distance - 0.5 * delta))
    return _reduce(loss if weight is None else loss * weight, reduction)  # huber's 'mean' counts elements


def _off_lattice(draw, shape):
    """Odd multiples of 0.05 in [-2, 2]: never equal to a target from ``_on_lattice``, never 0.1 k apart."""
    return np.asarray((np.floor(values(draw, shape) * 10) + 0.5) / 10)


def _on_lattice(draw, shape):
    return np.asarray(np.round(values(draw, shape) * 10) / 10)


def _regression_sample(weighted: bool = False, **choices):
    """(input, target) with broadcastable shapes, or the same shape and a weight; a reduction; extra kwargs."""

    def sample(draw):
        use_weight = weighted and draw(st.booleans())
        if use_weight:
            first = second = shapes(draw)
        else:
            first, second = broadcast_shapes(draw, 2)
        kwargs = {"reduction": draw(st.sampled_from(REDUCTIONS))}
        kwargs.update({name: draw(st.sampled_from(options)) for name, options in choices.items()})
        if use_weight:
            kwargs["weight"] = values(draw, first, 0.1, 2.0)
        return Sample((_off_lattice(draw, first), _on_lattice(draw, second)), kwargs)

    return sample


# -- binary cross-entropy ---------------------------------------------------------------------------


def _bce_ref(input, target, weight=None, reduction="mean"):
    loss = -(target * np.log(input) + (1 - target) * np.log1p(-input))
    return _reduce(loss if weight is None else loss * weight, reduction)


def _bce_with_logits_ref(input, target, weight=None, reduction="mean", pos_weight=None):
    softplus_negative = np.log1p(np.exp(-np.abs(input))) + np.maximum(-input, 0)  # -log(sigmoid(x))
    positive = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + positive * softplus_negative
    return _reduce(loss if weight is None else loss * weight, reduction)


def _suffix(draw, shape):
    """A shape that broadcasts to ``shape`` (a suffix of it, with some sides set to 1)."""
    kept = shape[len(shape) - draw(st.integers(0, len(shape))) :]
    return tuple(side if draw(st.booleans()) else 1 for side in kept)


def _binary_sample(logits: bool):
    def sample(draw):
        shape = shapes(draw)
        x = values(draw, shape, -3.0, 3.0) if logits else values(draw, shape, 0.05, 0.95)
        target = values(draw, shape, 0.0, 1.0)
        kwargs = {"reduction": draw(st.sampled_from(REDUCTIONS))}
        if draw(st.booleans()):
            kwargs["weight"] = values(draw, _suffix(draw, shape), 0.1, 2.0)
        if logits and draw(st.booleans()):
            kwargs["pos_weight"] = values(draw, _suffix(draw, shape), 0.1, 3.0)
        return Sample((x, target), kwargs)

    return sample


# -- KL divergence ---------------------------------------------------------------------------------


def _kl_div_ref(input, target, reduction="mean", log_target=False):
    loss = np.exp(target) * (target - input) if log_target else target * (np.log(target) - input)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def _kl_div_sample(draw):
    first, second = broadcast_shapes(draw, 2)
    log_target = draw(st.booleans())
    # Probabilities stay away from 0, where d/dt t log t is unbounded.
    target = values(draw, second, -3.0, 0.0) if log_target else values(draw, second, 0.05, 1.0)
    reduction = draw(st.sampled_from(REDUCTIONS + ("batchmean",)))
    return Sample((values(draw, first), target), {"reduction": reduction, "log_target": log_target})


# -- nll_loss --------------------------------------------------------------------------------------


def _nll_loss_ref(log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
    unbatched = log_probs.ndim == 1
    if unbatched:
        log_probs, target = log_probs[None], np.reshape(target, (1,))
    classes = log_probs.shape[1]
    weight = np.ones(classes) if weight is None else weight
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    picked = np.take_along_axis(log_probs, np.expand_dims(safe, 1), axis=1).squeeze(1)
    target_weight = weight[safe] * keep
    loss = -target_weight * picked
    if reduction == "none":
        return loss.reshape(()) if unbatched else loss
    return _reduce(loss, reduction, target_weight.sum())


def _nll_loss_sample(draw):
    classes = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["unbatched", "batched", "spatial"]))
    batch = draw(st.integers(1, 3))
    shape = {"unbatched": (classes,), "batched": (batch, classes), "spatial": (batch, classes, draw(st.integers(1, 3)))}
    log_probs = values(draw, shape[kind])
    target_shape = () if kind == "unbatched" else (shape[kind][0], *shape[kind][2:])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    target = rng.integers(0, classes, size=target_shape).astype(np.int64)
    ignore_index = draw(st.sampled_from([-100, 0]))
    if draw(st.booleans()):  # ignored targets among the others (ignore_index 0 is also a class)
        target[rng.random(target.shape) < 0.5] = ignore_index
    if np.all(target == ignore_index):  # keep one: the 'mean' of no targets is NaN
        if ignore_index < 0:
            target.flat[0] = 0
        else:
            ignore_index = -100
    kwargs = {"reduction": draw(st.sampled_from(REDUCTIONS)), "ignore_index": ignore_index}
    if draw(st.booleans()):
        kwargs["weight"] = values(draw, (classes,), 0.1, 2.0)
    return Sample((log_probs, target), kwargs)


EXAMPLES = 20  # cheap: small shapes, scalar outputs

OPS = [
    OpInfo("mse_loss", _quiet(F.mse_loss), _mse_ref, _regression_sample(weighted=True), max_examples=EXAMPLES),
    OpInfo("l1_loss", _quiet(F.l1_loss), _l1_ref, _regression_sample(weighted=True), max_examples=EXAMPLES),
    OpInfo(
        "smooth_l1_loss",
        _quiet(F.smooth_l1_loss),
        _smooth_l1_ref,
        _regression_sample(beta=(0.0, 0.5, 1.0)),
        max_examples=EXAMPLES,
    ),
    OpInfo(
        "huber_loss",
        _quiet(F.huber_loss),
        _huber_ref,
        _regression_sample(weighted=True, delta=(0.5, 1.0, 1.5)),
        max_examples=EXAMPLES,
    ),
    OpInfo(
        "binary_cross_entropy", F.binary_cross_entropy, _bce_ref, _binary_sample(logits=False), max_examples=EXAMPLES
    ),
    OpInfo(
        "binary_cross_entropy_with_logits",
        F.binary_cross_entropy_with_logits,
        _bce_with_logits_ref,
        _binary_sample(logits=True),
        max_examples=EXAMPLES,
    ),
    OpInfo("kl_div", _quiet(F.kl_div), _kl_div_ref, _kl_div_sample, max_examples=EXAMPLES),
    OpInfo("nll_loss", F.nll_loss, _nll_loss_ref, _nll_loss_sample, max_examples=EXAMPLES),
]
