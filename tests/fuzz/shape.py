"""Fuzz specs for shape, join and index ops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import gradflow as gf

from .draw import array, index_array, shape
from .engine import ALL_DTYPES, Case, FuzzSpec

torch = pytest.importorskip("torch")


def _with_dim(build, min_dims=1):
    """A sampler for ``op(x, dim, ...)``; ``build(draw, dims, dim)`` returns the extra args/kwargs."""

    def sample(draw, dtype):
        dims = shape(draw, min_dims=min_dims)
        dim = draw(st.integers(-len(dims), len(dims) - 1)) if dims else 0
        args, kwargs = build(draw, dims, dim)
        return Case((array(draw, dims, dtype), *args), kwargs, dtype)

    return sample


def _permutation(draw, dims, dim):
    return (tuple(draw(st.permutations(range(len(dims))))),), {}


def _reshape(draw, dims, dim):
    size = int(np.prod(dims))
    target = draw(st.sampled_from([(size,), (-1,), (1, size), (size, 1, -1)] if size else [(0,), (0, -1), (2, 0)]))
    return (target,), {}


def _gather(draw, dims, dim):
    index_shape = tuple(draw(st.integers(0 if s == 0 else 1, max(s, 1))) for s in dims)
    return (dim, index_array(draw, index_shape, dims[dim], negative=False)), {}


def _index_select(draw, dims, dim):
    return (dim, index_array(draw, (draw(st.integers(0, 4)),), dims[dim], negative=False)), {}


def _flip(draw, dims, dim):
    return (tuple(sorted({dim % len(dims)})),), {}


def _narrow(draw, dims, dim):
    start = draw(st.integers(0, dims[dim]))
    return (dim, start, draw(st.integers(0, dims[dim] - start))), {}


def _split(draw, dims, dim):
    return (draw(st.integers(1, 3)), dim), {}


def _roll(draw, dims, dim):
    return (draw(st.integers(-5, 5)), dim), {}


def _pad_sample(draw, dtype):
    dims = shape(draw, min_dims=1, max_dims=3)
    pads = tuple(draw(st.integers(0, 2)) for _ in range(2 * draw(st.integers(1, len(dims)))))
    return Case((array(draw, dims, dtype), pads), {"value": draw(st.sampled_from([0.0, 1.5]))}, dtype)


def _cat_sample(stack):
    def sample(draw, dtype):
        dims = shape(draw, min_dims=1)
        dim = draw(st.integers(-len(dims), len(dims) - 1))
        parts = []
        for _ in range(draw(st.integers(1, 3))):
            part = list(dims)
            if not stack:
                part[dim] = draw(st.integers(0, 3))
            parts.append(array(draw, tuple(part), dtype))
        return Case((parts,), {"dim": dim}, dtype)

    return sample


def _indexing_sample(draw, dtype):
    dims = shape(draw, min_dims=1)
    key = draw(st.sampled_from(["int", "slice", "ellipsis", "none", "tensor", "mask", "step"]))
    return Case((array(draw, dims, dtype), key, draw(st.integers(0, 2**16))), {}, dtype)


def _index(x, key, seed):
    rng = np.random.default_rng(seed)
    side = x.shape[0]
    if key == "int":
        return x[int(rng.integers(-side, side))] if side else x[0:0]
    if key == "slice":
        return x[int(rng.integers(0, side + 1)) :]
    if key == "step":
        return x[:: int(rng.integers(1, 3))]
    if key == "ellipsis":
        return x[..., 0:1]
    if key == "none":
        return x[None, :]
    indices = rng.integers(0, max(side, 1), size=int(rng.integers(0, 4))) if side else np.zeros(0, np.int64)
    if key == "tensor":
        return x[(gf if isinstance(x, gf.Tensor) else torch).tensor(indices.astype(np.int64))]
    mask = rng.random(side) < 0.5
    return x[(gf if isinstance(x, gf.Tensor) else torch).tensor(mask)]


def spec(name, build, ours=None, theirs=None, min_dims=1):
    return FuzzSpec(
        name, ours or getattr(gf, name), theirs or getattr(torch, name), _with_dim(build, min_dims), ALL_DTYPES
    )


SPECS = [
    spec("permute", _permutation, min_dims=0),
    spec("reshape", _reshape, min_dims=0),
    spec("gather", _gather),
    spec("index_select", _index_select),
    spec("flip", _flip),
    spec("narrow", _narrow),
    spec("split", _split),
    spec("roll", _roll),
    spec("transpose", lambda draw, dims, dim: ((dim, 0), {})),
    spec("unsqueeze", lambda draw, dims, dim: ((dim,), {}), min_dims=0),
    spec("squeeze", lambda draw, dims, dim: ((dim,), {})),
    spec("flatten", lambda draw, dims, dim: ((), {"start_dim": dim % max(len(dims), 1)}), min_dims=0),
    spec("tril", lambda draw, dims, dim: ((draw(st.integers(-2, 2)),), {}), min_dims=2),
    spec("triu", lambda draw, dims, dim: ((draw(st.integers(-2, 2)),), {}), min_dims=2),
    spec("chunk", lambda draw, dims, dim: ((draw(st.integers(1, 3)), dim), {})),
    spec("unbind", lambda draw, dims, dim: ((dim,), {})),
    spec("tile", lambda draw, dims, dim: ((tuple(draw(st.integers(0, 2)) for _ in dims),), {}), min_dims=0),
    spec(
        "expand",
        lambda draw, dims, dim: ((tuple(draw(st.integers(0, 3)) if s == 1 else s for s in dims),), {}),
        ours=lambda x, size: x.expand(size),
        theirs=lambda x, size: x.expand(size),
        min_dims=0,
    ),
    FuzzSpec("pad", gf.nn.functional.pad, torch.nn.functional.pad, _pad_sample, ALL_DTYPES),
    FuzzSpec("cat", gf.cat, torch.cat, _cat_sample(False), ALL_DTYPES),
    FuzzSpec("stack", gf.stack, torch.stack, _cat_sample(True), ALL_DTYPES),
    FuzzSpec("getitem", _index, _index, _indexing_sample, ALL_DTYPES),
]
