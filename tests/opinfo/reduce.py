"""Op table entries for reductions and statistics (see tests/opinfo/__init__.py).

Samples reduce over None, one dim or a tuple of dims, with and without keepdim,
on 0-d to 3-d inputs. Ops with kinks (max, norm p=1, ...) draw values that keep
away from them: distinct values for max/min, no zeros where |x| has its corner.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from scipy import special

import gradflow as gf

from . import OpInfo, Sample, binary_sample, shapes, values

# -- samplers ----------------------------------------------------------------------------------------


def _draw_dim(draw, ndim: int, kinds=("none", "int", "tuple")):
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int" or ndim == 0:
        return draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
    axes = sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1)))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)  # mix negative and positive dims


def _distinct(draw, shape, spacing=0.25):
    """Values at least ``spacing`` apart (no ties), shuffled, so max/min have one clear winner."""
    size = int(np.prod(shape, dtype=np.int64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grid = (np.arange(size) - size / 2) * spacing + rng.uniform(0, spacing / 4, size)
    return rng.permutation(grid).reshape(shape)


def _signed(draw, shape, low=0.5, high=1.5):
    """Magnitudes in [low, high) with random signs: no zeros, products of moderate size."""
    magnitude = values(draw, shape, low, high)
    signs = np.where(values(draw, shape, -1.0, 1.0) < 0, -1.0, 1.0)
    return magnitude * signs


def reduce_sample(kinds=("none", "int", "tuple"), draw_values=None, min_dims=0, min_side=1, keepdim=True, **kwargs):
    """Sampler for ``op(x, dim=..., keepdim=..., **kwargs)`` with dim None, an int or a tuple."""

    def sample(draw):
        shape = shapes(draw, min_dims=min_dims, min_side=min_side)
        x = draw_values(draw, shape) if draw_values else values(draw, shape)
        extra = {"dim": _draw_dim(draw, len(shape), kinds)}
        if keepdim:
            extra["keepdim"] = draw(st.booleans())
        return Sample((x,), {**extra, **kwargs})

    return sample


def _with_zeros(draw, shape):
    """Non-zero values with one or two exact zeros planted (prod's and cumprod's hard case)."""
    x = _signed(draw, shape)
    flat = x.reshape(-1)
    for _ in range(draw(st.integers(1, 2))):
        flat[draw(st.integers(0, flat.size - 1))] = 0.0
    return x


def _ints(draw, shape):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.integers(-3, 4, size=shape).astype(np.int32)


def _bools(draw, shape):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.random(shape) < 0.7


def _max_dim_sample(draw_values=_distinct):
    def sample(draw):
        shape = shapes(draw, min_dims=0)
        dim = _draw_dim(draw, len(shape), ("int",))
        return Sample((draw_values(draw, shape), dim), {"keepdim": draw(st.booleans())})

    return sample


def _distinct_magnitudes(draw, shape):
    """Distinct |x| away from 0, random signs: the kinks of the inf-norms stay out of reach."""
    grid = np.abs(_distinct(draw, shape)) + 0.1
    return grid * np.where(values(draw, shape, -1.0, 1.0) < 0, -1.0, 1.0)


# -- NumPy references ----------------------------------------------------------------------------------


def _axis(x, dim):
    """NumPy's axis for ``dim``: 0-d arrays and () reduce everything."""
    if x.ndim == 0 or dim is None or dim == ():
        return None
    return dim


def _ref(function):
    """A NumPy reduction ``function(x, axis=, keepdims=)`` called with gradflow's dim/keepdim."""

    def ref(x, dim=None, keepdim=False, **kwargs):
        return np.asarray(function(x, axis=_axis(x, dim), keepdims=keepdim, **kwargs))

    return ref


def _max_dim_ref(largest):
    def ref(x, dim, keepdim=False):
        pick, arg = (np.max, np.argmax) if largest else (np.min, np.argmin)
        axis = None if x.ndim == 0 else dim
        keep = keepdim and x.ndim > 0
        return np.asarray(pick(x, axis=axis, keepdims=keep)), np.asarray(arg(x, axis=axis, keepdims=keep))

    return ref


def _arg_ref(function):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return np.asarray(function(x, keepdims=keepdim))
        return np.asarray(function(x, axis=None if x.ndim == 0 else dim, keepdims=keepdim and x.ndim > 0))

    return ref


def _cumulative_ref(function):
    def ref(x, dim):
        return x.copy() if x.ndim == 0 else function(x, axis=dim)

    return ref


def _norm_ref(x, p="fro", dim=None, keepdim=False):
    axis = _axis(x, dim)
    a = np.abs(x)
    if p in ("fro", 2):
        return np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdim))
    if p == math.inf:
        return np.max(a, axis=axis, keepdims=keepdim)
    if p == -math.inf:
        return np.min(a, axis=axis, keepdims=keepdim)
    if p == 0:
        return np.sum(a != 0, axis=axis, keepdims=keepdim).astype(x.dtype)
    return np.sum(a**p, axis=axis, keepdims=keepdim) ** (1.0 / p)


def _var_ref(x, dim=None, keepdim=False, correction=1, unbiased=None, std=False):
    ddof = correction if unbiased is None else int(unbiased)
    result = np.var(x, axis=_axis(x, dim), ddof=ddof, keepdims=keepdim)
    return np.asarray(np.sqrt(result) if std else result)


def _var_entry(name, std, **fixed):
    op = gf.std if std else gf.var

    def ref(x, dim=None, keepdim=False, **kwargs):
        return _var_ref(x, dim, keepdim, std=std, **kwargs)

    # At least 3 elements per slice, so N - correction > 0 for corrections up to 2.
    return OpInfo(name, op, ref, reduce_sample(min_dims=1, min_side=3, **fixed), method=op.__name__)


def _legacy_unbiased_sample(draw):
    """var(x, dim, unbiased, keepdim) with PyTorch's legacy positional bool."""
    shape = shapes(draw, min_dims=1, min_side=3)
    dim = _draw_dim(draw, len(shape), ("int", "tuple"))
    return Sample((values(draw, shape), dim, draw(st.booleans()), draw(st.booleans())))


def _legacy_ref(std):
    return lambda x, dim, unbiased, keepdim: _var_ref(x, dim, keepdim, unbiased=unbiased, std=std)


def _logsumexp_ref(x, dim, keepdim=False):
    # scipy's logsumexp keeps a 0-d input as shape (1,); NumPy's reductions (and PyTorch) keep ().
    shape = np.sum(x, axis=_axis(x, dim), keepdims=keepdim).shape
    return np.asarray(special.logsumexp(x, axis=_axis(x, dim), keepdims=keepdim)).reshape(shape)


def _logsumexp_sample(draw):
    shape = shapes(draw, min_dims=0)
    return Sample(
        (values(draw, shape, -3.0, 3.0), _draw_dim(draw, len(shape), ("int", "tuple"))),
        {"keepdim": draw(st.booleans())},
    )


def _cumulative_sample(draw_values=None):
    def sample(draw):
        shape = shapes(draw, min_dims=0)
        x = draw_values(draw, shape) if draw_values else values(draw, shape)
        return Sample((x, _draw_dim(draw, len(shape), ("int",))))

    return sample


def _norm(name, p, draw_values=None, **options):
    def ref(x, dim=None, keepdim=False):
        return _norm_ref(x, p, dim, keepdim)

    def op(x, dim=None, keepdim=False):
        return gf.norm(x, p, dim, keepdim)

    return OpInfo(name, op, ref, reduce_sample(draw_values=draw_values), **options)


def _away_from_zero(draw, shape):
    return values(draw, shape, away_from=[0.0], gap=0.1)


OPS = [
    OpInfo("sum", gf.sum, _ref(np.sum), reduce_sample(), method="sum"),
    OpInfo("sum_int", gf.sum, _ref(np.sum), reduce_sample(draw_values=_ints), grad=False, method="sum"),
    OpInfo("mean", gf.mean, _ref(np.mean), reduce_sample(), method="mean"),
    OpInfo("prod", gf.prod, _ref(np.prod), reduce_sample(("none", "int"), _signed), method="prod"),
    OpInfo(
        "prod_with_zeros",
        gf.prod,
        _ref(np.prod),
        reduce_sample(("none", "int"), _with_zeros, min_dims=1),
        method="prod",
    ),
    OpInfo("prod_int", gf.prod, _ref(np.prod), reduce_sample(("none", "int"), _ints), grad=False),
    OpInfo("amax", gf.amax, _ref(np.amax), reduce_sample(draw_values=_distinct), method="amax"),
    OpInfo("amin", gf.amin, _ref(np.amin), reduce_sample(draw_values=_distinct), method="amin"),
    OpInfo("max_all", gf.max, np.max, lambda draw: Sample((_distinct(draw, shapes(draw)),)), method="max"),
    OpInfo("min_all", gf.min, np.min, lambda draw: Sample((_distinct(draw, shapes(draw)),)), method="min"),
    OpInfo("max_dim", gf.max, _max_dim_ref(True), _max_dim_sample(), method="max"),
    OpInfo("min_dim", gf.min, _max_dim_ref(False), _max_dim_sample(), method="min"),
    OpInfo("max_dim_int", gf.max, _max_dim_ref(True), _max_dim_sample(_ints), grad=False),
    OpInfo("max_binary", gf.max, np.maximum, binary_sample(), gradgrad=False, method="max"),
    OpInfo("min_binary", gf.min, np.minimum, binary_sample(), gradgrad=False, method="min"),
    OpInfo(
        "argmax", gf.argmax, _arg_ref(np.argmax), reduce_sample(("none", "int"), _distinct), grad=False, method="argmax"
    ),
    OpInfo(
        "argmin", gf.argmin, _arg_ref(np.argmin), reduce_sample(("none", "int"), _distinct), grad=False, method="argmin"
    ),
    OpInfo("argmax_int", gf.argmax, _arg_ref(np.argmax), reduce_sample(("none", "int"), _ints), grad=False),
    _var_entry("var", std=False),
    _var_entry("var_correction_0", std=False, correction=0),
    _var_entry("var_correction_2", std=False, correction=2),
    _var_entry("var_unbiased_false", std=False, unbiased=False),
    _var_entry("std", std=True),
    _var_entry("std_correction_0", std=True, correction=0),
    OpInfo("var_legacy_positional", gf.var, _legacy_ref(False), _legacy_unbiased_sample, method="var"),
    OpInfo("std_legacy_positional", gf.std, _legacy_ref(True), _legacy_unbiased_sample, method="std"),
    OpInfo(
        "logsumexp",
        gf.logsumexp,
        _logsumexp_ref,
        _logsumexp_sample,
        method="logsumexp",
    ),
    _norm("norm_fro", "fro"),
    _norm("norm_2", 2),
    _norm("norm_1", 1, _away_from_zero, gradgrad=False),
    _norm("norm_3", 3.0, _away_from_zero),
    _norm("norm_half", 0.5, _away_from_zero),
    _norm("norm_inf", math.inf, _distinct_magnitudes, gradgrad=False),
    _norm("norm_neg_inf", -math.inf, _distinct_magnitudes, gradgrad=False),
    _norm("norm_0", 0, _with_zeros, grad=False),
    OpInfo(
        "norm_method",
        lambda x, **kw: x.norm(**kw),
        _ref(lambda x, axis, keepdims: _norm_ref(x, 2, axis, keepdims)),
        reduce_sample(),
    ),
    OpInfo("cumsum", gf.cumsum, _cumulative_ref(np.cumsum), _cumulative_sample(), method="cumsum"),
    OpInfo("cumsum_int", gf.cumsum, _cumulative_ref(np.cumsum), _cumulative_sample(_ints), grad=False),
    OpInfo("cumprod", gf.cumprod, _cumulative_ref(np.cumprod), _cumulative_sample(_signed), method="cumprod"),
    OpInfo(
        "cumprod_with_zeros", gf.cumprod, _cumulative_ref(np.cumprod), _cumulative_sample(_with_zeros), gradgrad=False
    ),
    OpInfo("all", gf.all, _ref(np.all), reduce_sample(draw_values=_bools), grad=False, method="all"),
    OpInfo(
        "any", gf.any, _ref(np.any), reduce_sample(draw_values=lambda d, s: ~_bools(d, s)), grad=False, method="any"
    ),
    OpInfo("any_float", gf.any, _ref(np.any), reduce_sample(draw_values=_with_zeros), grad=False),
]
