"""Op table entries for the public ops no family module covered: broadcasting helpers, clone,
true_divide, the comparisons that return bools, in-place methods and ``__setitem__``.

In-place methods run on a copy made inside the op (``x * 1``), since a leaf that requires grad
may not be modified in place; the gradient then flows through the in-place node back to the
inputs, which is what the checks test.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow as gf

from . import OpInfo, Sample, binary_sample, broadcast_shapes, shapes, unary_sample, values


def _expand_sample(draw):
    """``small`` broadcasts to ``big``: (input, target shape)."""
    small, big = broadcast_shapes(draw, 2)
    target = np.broadcast_shapes(small, big)
    return Sample((values(draw, small), target))


def _expand_as_sample(draw):
    sample = _expand_sample(draw)
    return Sample((sample.args[0], values(draw, sample.args[1])))


def _sum_to_size_ref(x, size):
    lead = x.ndim - len(size)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(size) if s == 1 and x.shape[lead + i] != 1)
    return x.sum(axis=axes).reshape(size) if axes else x


def _sum_to_size_sample(draw):
    small, big = broadcast_shapes(draw, 2)
    return Sample((values(draw, np.broadcast_shapes(small, big)), tuple(small)))


def _bools(draw, shape):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.random(shape) < 0.5


def _logical_xor_sample(draw):
    first, second = broadcast_shapes(draw, 2)
    return Sample((_bools(draw, first), _bools(draw, second)))


def _isclose_sample(draw):
    """Half the pairs within the tolerance, half far apart."""
    shape = shapes(draw)
    a = values(draw, shape)
    b = np.where(_bools(draw, shape), a * (1 + 1e-7), values(draw, shape))
    return Sample((a, b), {"rtol": 1e-5, "atol": 1e-8})


def _inplace(method: str, **kwargs):
    """``getattr(x * 1, method)(*others)``: the in-place method on a non-leaf copy of ``x``."""

    def op(x, *others):
        copy = x * 1
        result = getattr(copy, method)(*others, **kwargs)
        assert result is copy, f"{method} must return the tensor it modified"
        return copy

    return op


def _inplace_sample(other_low=-2.0, other_high=2.0):
    """(x, other) where other broadcasts to x's shape: an in-place op cannot change x's shape."""

    def sample(draw):
        small, big = broadcast_shapes(draw, 2)
        target = np.broadcast_shapes(small, big)
        return Sample((values(draw, target), values(draw, small, other_low, other_high)))

    return sample


def _setitem(x, value):
    """``y = x * 1; y[1:, ::2] = value``: both x (outside the slice) and value get gradients."""
    copy = x * 1
    copy[1:, ::2] = value
    return copy


def _setitem_ref(x, value):
    out = x.copy()
    out[1:, ::2] = value
    return out


def _setitem_sample(draw):
    rows, cols = draw(st.integers(2, 4)), draw(st.integers(1, 4))
    target = (rows - 1, (cols + 1) // 2)
    value_shape = draw(st.sampled_from([target, target[1:], ()]))  # the value broadcasts into the slice
    return Sample((values(draw, (rows, cols)), values(draw, value_shape)))


OPS = [
    OpInfo("broadcast_to", gf.broadcast_to, np.broadcast_to, _expand_sample, method="broadcast_to"),
    OpInfo("expand_as", gf.expand_as, lambda x, other: np.broadcast_to(x, other.shape), _expand_as_sample),
    OpInfo("sum_to_size", gf.sum_to_size, _sum_to_size_ref, _sum_to_size_sample, method="sum_to_size"),
    OpInfo("clone", gf.clone, np.copy, unary_sample(), method="clone"),
    OpInfo(
        "contiguous",
        lambda x: x.t().contiguous(),
        lambda x: x.T.copy(),
        lambda d: Sample((values(d, shapes(d, max_dims=2)),)),
    ),
    OpInfo("true_divide", gf.true_divide, np.true_divide, binary_sample(other_low=0.5, other_high=2.0)),
    OpInfo("logical_xor", gf.logical_xor, np.logical_xor, _logical_xor_sample, grad=False, method="logical_xor"),
    OpInfo("isclose", gf.isclose, np.isclose, _isclose_sample, grad=False),
    OpInfo("add_inplace", _inplace("add_", alpha=2.0), lambda x, y: x + 2 * y, _inplace_sample()),
    OpInfo("mul_inplace", _inplace("mul_"), np.multiply, _inplace_sample()),
    OpInfo("div_inplace", _inplace("div_"), np.divide, _inplace_sample(0.5, 2.0)),
    OpInfo(
        "clamp_inplace",
        _inplace("clamp_", min=-1.0, max=1.0),
        lambda x: np.clip(x, -1.0, 1.0),
        unary_sample(away_from=(-1.0, 1.0)),
    ),
    OpInfo("exp_inplace", _inplace("exp_"), np.exp, unary_sample()),
    OpInfo("tanh_inplace", _inplace("tanh_"), np.tanh, unary_sample()),
    OpInfo("setitem", _setitem, _setitem_ref, _setitem_sample),
]
