"""Fuzz specs for matrix products."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

import gradflow as gf

from .draw import array
from .engine import ALL_DTYPES, Case, FuzzSpec, product_scale

torch = pytest.importorskip("torch")


def _matmul_sample(draw, dtype):
    n, k, m = (draw(st.integers(0, 4)) for _ in range(3))
    batch = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 2))))
    left = draw(st.sampled_from([(k,), (*batch, n, k)]))
    right = draw(st.sampled_from([(k,), (k, m), (*batch, k, m)]))
    return Case((array(draw, left, dtype), array(draw, right, dtype)), {}, dtype)


def _pair(shape_of):
    def sample(draw, dtype):
        n, k, m, b = (draw(st.integers(0, 4)) for _ in range(4))
        first, second = shape_of(n, k, m, b)
        return Case((array(draw, first, dtype), array(draw, second, dtype)), {}, dtype)

    return sample


SPECS = [
    FuzzSpec("matmul", gf.matmul, torch.matmul, _matmul_sample, ALL_DTYPES, scale=product_scale),
    FuzzSpec("mm", gf.mm, torch.mm, _pair(lambda n, k, m, b: ((n, k), (k, m))), ALL_DTYPES, scale=product_scale),
    FuzzSpec(
        "bmm", gf.bmm, torch.bmm, _pair(lambda n, k, m, b: ((b, n, k), (b, k, m))), ALL_DTYPES, scale=product_scale
    ),
    FuzzSpec("dot", gf.dot, torch.dot, _pair(lambda n, k, m, b: ((k,), (k,))), ALL_DTYPES, scale=product_scale),
    FuzzSpec("outer", gf.outer, torch.outer, _pair(lambda n, k, m, b: ((n,), (m,))), ALL_DTYPES, scale=product_scale),
]
