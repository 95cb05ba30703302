"""The op table: every op with a sample generator and a NumPy reference.

One module per op family (``elementwise.py``, ``reduce.py``, ...) defines a
list ``OPS`` of ``OpInfo``; ``ALL_OPS`` gathers them. ``tests/test_ops.py``
drives every entry through the same checks: forward against the reference,
gradcheck in float64, gradgradcheck for smooth ops, the method form, and
both devices.

A sample is drawn with Hypothesis: ``sample(draw)`` returns a ``Sample``
whose ``args`` hold NumPy arrays (float arrays become float64 tensors that
require grad; integer and bool arrays become tensors that do not) and plain
Python values (passed as they are). Arrays in ``kwargs`` become tensors that
do not require grad (constants such as class weights); the reference gets the
arrays themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes


@dataclass
class Sample:
    args: tuple
    kwargs: dict = field(default_factory=dict)


@dataclass
class OpInfo:
    name: str
    op: Callable  # gradflow: op(*args, **kwargs)
    ref: Callable  # NumPy: ref(*arrays, **kwargs) -> array or tuple of arrays
    sample: Callable  # sample(draw) -> Sample
    grad: bool = True  # gradcheck applies (float output that depends smoothly enough on inputs)
    gradgrad: bool = True  # second derivatives are checked too
    method: str | None = None  # also call args[0].<method>(*args[1:], **kwargs)
    atol: float = 1e-7
    rtol: float = 1e-6
    max_examples: int = 10

    def __repr__(self) -> str:
        return self.name


def values(draw, shape, low=-2.0, high=2.0, away_from=None, gap=0.05):
    """A float64 array of ``shape`` drawn uniformly from [low, high).

    ``away_from`` lists points (kinks, poles) the values keep ``gap`` away from,
    so finite differences never straddle them.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    array = rng.uniform(low, high, size=shape)
    for point in away_from or ():
        close = np.abs(array - point) < gap
        array[close] = point + gap * np.where(rng.random(close.sum()) < 0.5, -2, 2)
    return array


def shapes(draw, min_dims=0, max_dims=3, min_side=1, max_side=4):
    return draw(array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side))


def broadcast_shapes(draw, count, min_dims=0, max_dims=3, max_side=4):
    drawn = draw(
        mutually_broadcastable_shapes(
            num_shapes=count, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side
        )
    )
    return drawn.input_shapes


def unary_sample(low=-2.0, high=2.0, away_from=None, min_dims=0, **kwargs):
    """Sampler for ``op(x, **kwargs)``."""

    def sample(draw):
        return Sample((values(draw, shapes(draw, min_dims=min_dims), low, high, away_from),), dict(kwargs))

    return sample


def binary_sample(low=-2.0, high=2.0, other_low=None, other_high=None, away_from=None, **kwargs):
    """Sampler for ``op(a, b)`` with mutually broadcastable shapes."""

    def sample(draw):
        first, second = broadcast_shapes(draw, 2)
        a = values(draw, first, low, high, away_from)
        b = values(
            draw, second, low if other_low is None else other_low, high if other_high is None else other_high, away_from
        )
        return Sample((a, b), dict(kwargs))

    return sample


def dim_sample(low=-2.0, high=2.0, keepdim_choices=(False, True), min_dims=1, allow_none=True, **kwargs):
    """Sampler for reductions ``op(x, dim=..., keepdim=...)``."""

    def sample(draw):
        shape = shapes(draw, min_dims=min_dims)
        choices = list(range(-len(shape), len(shape))) or [0]
        dim = draw(st.sampled_from(([None] if allow_none else []) + choices))
        keepdim = draw(st.sampled_from(keepdim_choices))
        extra = {"dim": dim} if dim is not None else {}
        if dim is not None:
            extra["keepdim"] = keepdim
        return Sample((values(draw, shape, low, high),), {**extra, **kwargs})

    return sample


# One op family per line: a new family module is one more line here.
FAMILIES = (
    "arithmetic",
    "elementwise",
    "linalg",
    "reduce",
    "shape",
    "index",
    "conv",
    "pool",
    "loss",
    "layers",
    "misc",
    "norm",
    "dropout",
    "activation",
    "softmax",
    "cross_entropy",
)

ALL_OPS = [op for family in FAMILIES for op in importlib.import_module(f"{__name__}.{family}").OPS]
