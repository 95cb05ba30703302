"""Fuzz specs for reductions, scans and statistics (a dim drawn per case, or all dims)."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

import gradflow as gf

from .draw import array, shape
from .engine import ALL_DTYPES, FLOATS, Case, FuzzSpec, sum_scale

torch = pytest.importorskip("torch")


def _dim_sample(all_dims=True, keepdim=True, min_dims=0, **extra):
    def sample(draw, dtype):
        dims = shape(draw, min_dims=min_dims)
        choices = list(range(-len(dims), len(dims))) or ([0] if min_dims == 0 else [])
        dim = draw(st.sampled_from(([None] if all_dims else []) + choices))
        kwargs = dict(extra)
        if dim is not None:
            kwargs["dim"] = dim
            if keepdim:
                kwargs["keepdim"] = draw(st.booleans())
        return Case((array(draw, dims, dtype),), kwargs, dtype)

    return sample


def reduction(
    name, dtypes=ALL_DTYPES, all_dims=True, keepdim=True, scale=sum_scale, torch_name=None, min_dims=0, **extra
):
    return FuzzSpec(
        name if not extra else f"{name}_{'_'.join(f'{k}{v}' for k, v in extra.items())}",
        getattr(gf, name),
        getattr(torch, torch_name or name),
        _dim_sample(all_dims, keepdim, min_dims, **extra),
        dtypes,
        scale=scale,
    )


SPECS = [
    reduction("sum"),
    reduction("mean", FLOATS),
    reduction("prod", scale=None),
    reduction("amax", scale=None),
    reduction("amin", scale=None),
    reduction("max", scale=None, all_dims=False),
    reduction("min", scale=None, all_dims=False),
    reduction("argmax", scale=None),
    reduction("argmin", scale=None),
    reduction("all", scale=None),
    reduction("any", scale=None),
    reduction("var", FLOATS),
    reduction("std", FLOATS),
    reduction("var", FLOATS, correction=0),
    reduction("std", FLOATS, unbiased=False),
    reduction("logsumexp", FLOATS, all_dims=False),
    reduction("norm", FLOATS),
    reduction("norm", FLOATS, p=1),
    reduction("norm", FLOATS, p=float("inf")),
    reduction("cumsum", all_dims=False, keepdim=False),
    reduction("cumprod", all_dims=False, keepdim=False, scale=None),
    reduction("softmax", FLOATS, all_dims=False, keepdim=False, scale=None),
    reduction("log_softmax", FLOATS, all_dims=False, keepdim=False, scale=None),
    FuzzSpec("max_full", gf.max, torch.max, _dim_sample(all_dims=True, keepdim=False, min_dims=0), ALL_DTYPES),
    FuzzSpec(
        "sum_float32",
        lambda x, **k: gf.sum(x, dtype=gf.float32, **k),
        lambda x, **k: torch.sum(x, dtype=torch.float32, **k),
        _dim_sample(),
        ALL_DTYPES,
        scale=sum_scale,
    ),
]
