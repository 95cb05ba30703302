"""Fuzz specs for elementwise unary and binary ops, comparisons and selection."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

import gradflow as gf

from .draw import array, broadcast, shape
from .engine import ALL_DTYPES, FLOATS, Case, FuzzSpec

torch = pytest.importorskip("torch")


def _unary_sample(low=-3.0, high=3.0, **kwargs):
    def sample(draw, dtype):
        return Case((array(draw, shape(draw), dtype, low, high),), dict(kwargs), dtype)

    return sample


def _binary_sample(low=-3.0, high=3.0):
    def sample(draw, dtype):
        first, second = broadcast(draw, 2)
        other = draw(st.sampled_from(ALL_DTYPES)) if draw(st.integers(0, 3)) == 0 else dtype
        return Case((array(draw, first, dtype, low, high), array(draw, second, other, low, high)), {}, dtype)

    return sample


def _scalar_sample(draw, dtype):
    scalar = draw(st.sampled_from([2, -1, 0, 2.5, -0.5, 0.0, True, float("inf"), float("nan")]))
    return Case((array(draw, shape(draw), dtype), scalar), {}, dtype)


def unary(name, dtypes=ALL_DTYPES, low=-3.0, high=3.0, torch_name=None, ours=None, **kwargs):
    theirs = getattr(torch, torch_name or name)
    return FuzzSpec(name, ours or getattr(gf, name), theirs, _unary_sample(low, high, **kwargs), dtypes)


def binary(name, dtypes=ALL_DTYPES, torch_name=None):
    theirs = getattr(torch, torch_name or name)
    return FuzzSpec(name, getattr(gf, name), theirs, _binary_sample(), dtypes)


def _method(name):
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


SPECS = [
    *(
        unary(name)
        for name in (
            "exp",
            "exp2",
            "log",
            "log2",
            "log10",
            "log1p",
            "expm1",
            "sqrt",
            "rsqrt",
            "square",
            "reciprocal",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "tanh",
            "erf",
            "sigmoid",
            "sign",
            "floor",
            "ceil",
            "trunc",
            "frac",
            "round",
            "abs",
            "neg",
            "isnan",
            "isinf",
            "isfinite",
            "logical_not",
        )
    ),
    unary("relu"),
    unary("sigmoid_method", torch_name="sigmoid", ours=_method("sigmoid")),
    unary("clamp", ALL_DTYPES, min=-0.5, max=1.5),
    unary("clamp_min", ALL_DTYPES, torch_name="clamp", ours=gf.clamp, min=0.0),
    unary("round_decimals", FLOATS, torch_name="round", ours=gf.round, decimals=1),
    *(
        binary(name)
        for name in (
            "add",
            "sub",
            "mul",
            "div",
            "pow",
            "maximum",
            "minimum",
            "floor_divide",
            "remainder",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "logical_and",
            "logical_or",
            "logical_xor",
        )
    ),
    FuzzSpec(
        "add_alpha",
        lambda a, b: gf.add(a, b, alpha=2),
        lambda a, b: torch.add(a, b, alpha=2),
        _binary_sample(),
        ALL_DTYPES,
    ),
    FuzzSpec(
        "div_trunc",
        lambda a, b: gf.div(a, b, rounding_mode="trunc"),
        lambda a, b: torch.div(a, b, rounding_mode="trunc"),
        _binary_sample(),
        ALL_DTYPES,
    ),
    FuzzSpec(
        "div_floor",
        lambda a, b: gf.div(a, b, rounding_mode="floor"),
        lambda a, b: torch.div(a, b, rounding_mode="floor"),
        _binary_sample(),
        ALL_DTYPES,
    ),
    FuzzSpec("add_scalar", lambda x, s: x + s, lambda x, s: x + s, _scalar_sample, ALL_DTYPES),
    FuzzSpec("mul_scalar", lambda x, s: x * s, lambda x, s: x * s, _scalar_sample, ALL_DTYPES),
    FuzzSpec("rsub_scalar", lambda x, s: s - x, lambda x, s: s - x, _scalar_sample, ALL_DTYPES),
    FuzzSpec("div_scalar", lambda x, s: x / s, lambda x, s: x / s, _scalar_sample, ALL_DTYPES),
    FuzzSpec("rdiv_scalar", lambda x, s: s / x, lambda x, s: s / x, _scalar_sample, ALL_DTYPES),
    FuzzSpec("pow_scalar", lambda x, s: x**s, lambda x, s: x**s, _scalar_sample, ALL_DTYPES),
    FuzzSpec("rpow_scalar", lambda x, s: s**x, lambda x, s: s**x, _scalar_sample, ALL_DTYPES),
    FuzzSpec(
        "where",
        gf.where,
        torch.where,
        lambda draw, dtype: (
            lambda shapes: Case(
                (array(draw, shapes[0], "bool"), array(draw, shapes[1], dtype), array(draw, shapes[2], dtype)),
                {},
                dtype,
            )
        )(broadcast(draw, 3)),
        ALL_DTYPES,
    ),
]
