"""Fuzz specs for layers: the torch layer is built seeded and gradflow's gets its exact parameters."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from .draw import array, index_array, shape
from .engine import FLOATS, Case, FuzzSpec, product_scale

torch = pytest.importorskip("torch")


def _layer(name, build, inputs, scale=product_scale):
    """``build(draw)`` -> (module factory, config); ``inputs(draw, dtype, config)`` -> args."""

    def sample(draw, dtype):
        factory, config = build(draw)
        return Case(inputs(draw, dtype, config), {}, dtype, module=factory)

    return FuzzSpec(name, None, None, sample, FLOATS, scale=scale)


def _linear(draw):
    i, o = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    return (lambda nn: nn.Linear(i, o)), {"in": i}


def _conv2d(draw):
    i, o, k = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, 1))
    return (lambda nn: nn.Conv2d(i, o, k, padding=padding)), {"in": i, "k": k}


def _norm(kind):
    def build(draw):
        c = draw(st.sampled_from([2, 4]))
        factories = {
            "BatchNorm1d": lambda nn: nn.BatchNorm1d(c),
            "BatchNorm2d": lambda nn: nn.BatchNorm2d(c),
            "LayerNorm": lambda nn: nn.LayerNorm(c),
            "GroupNorm": lambda nn: nn.GroupNorm(2, c),
        }
        return factories[kind], {"c": c}

    return build


def _mha(draw):
    e, heads = draw(st.sampled_from([(2, 1), (4, 2), (4, 1)]))
    batch_first = draw(st.booleans())
    return (lambda nn: nn.MultiheadAttention(e, heads, batch_first=batch_first)), {"e": e}


def _encoder(draw):
    e, heads = draw(st.sampled_from([(4, 2), (4, 1)]))
    norm_first = draw(st.booleans())
    return (lambda nn: nn.TransformerEncoderLayer(e, heads, dim_feedforward=8, dropout=0.0, norm_first=norm_first)), {
        "e": e
    }


def _embedding(draw):
    num, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    return (lambda nn: nn.Embedding(num, dim)), {"num": num}


SPECS = [
    _layer("nn.Linear", _linear, lambda draw, dtype, c: (array(draw, (*shape(draw, max_dims=2), c["in"]), dtype),)),
    _layer(
        "nn.Conv2d",
        _conv2d,
        lambda draw, dtype, c: (
            array(draw, (draw(st.integers(0, 2)), c["in"], c["k"] + draw(st.integers(0, 2)), c["k"] + 1), dtype),
        ),
    ),
    _layer(
        "nn.BatchNorm1d_train",
        _norm("BatchNorm1d"),
        lambda draw, dtype, c: (array(draw, (draw(st.integers(2, 4)), c["c"]), dtype),),
    ),
    _layer(
        "nn.BatchNorm2d_train",
        _norm("BatchNorm2d"),
        lambda draw, dtype, c: (array(draw, (draw(st.integers(1, 3)), c["c"], 2, draw(st.integers(1, 2))), dtype),),
    ),
    _layer(
        "nn.LayerNorm",
        _norm("LayerNorm"),
        lambda draw, dtype, c: (array(draw, (*shape(draw, max_dims=2), c["c"]), dtype),),
    ),
    _layer(
        "nn.GroupNorm",
        _norm("GroupNorm"),
        lambda draw, dtype, c: (array(draw, (draw(st.integers(1, 3)), c["c"], 3), dtype),),
    ),
    _layer(
        "nn.Embedding",
        _embedding,
        lambda draw, dtype, c: (index_array(draw, shape(draw, max_dims=2), c["num"], negative=False),),
        scale=None,
    ),
    _layer(
        "nn.MultiheadAttention",
        _mha,
        lambda draw, dtype, c: (
            lambda b, lq, lk: (
                array(draw, (b, lq, c["e"]), dtype),
                array(draw, (b, lk, c["e"]), dtype),
                array(draw, (b, lk, c["e"]), dtype),
            )
        )(draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))),
    ),
    _layer(
        "nn.TransformerEncoderLayer",
        _encoder,
        lambda draw, dtype, c: (array(draw, (draw(st.integers(1, 3)), draw(st.integers(1, 2)), c["e"]), dtype),),
    ),
]
