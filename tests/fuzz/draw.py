"""Hypothesis helpers that draw shapes (0-d and 0-size included), dtypes and values with special values.

Values come from a seeded NumPy generator (one Hypothesis integer per array), so a case stays cheap
to draw; a drawn "regime" then plants special values: +-inf, NaN, +-0, a huge value (near the
dtype's overflow for float16, well inside it for the wider types so sums stay order-independent)
and a subnormal.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from .engine import Arr

HUGE = {"float16": 3.0e4, "float32": 1.0e30, "float64": 1.0e200}
SUBNORMAL = {"float16": 6.0e-8, "float32": 1.0e-40, "float64": 5.0e-320}


def shape(draw, min_dims=0, max_dims=3, max_side=4, empty=True) -> tuple:
    """A shape of ``min_dims..max_dims`` sides; about one in eight has a side of 0 when ``empty``."""
    dims = draw(st.integers(min_dims, max_dims))
    low = 0 if empty and draw(st.integers(0, 7)) == 0 else 1
    return tuple(draw(st.integers(low, max_side)) for _ in range(dims))


def broadcast(draw, count, min_dims=0, max_dims=3, max_side=4) -> tuple:
    """``count`` mutually broadcastable shapes (a 0 side sometimes)."""
    min_side = 0 if draw(st.integers(0, 7)) == 0 else 1
    drawn = draw(
        mutually_broadcastable_shapes(
            num_shapes=count, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
        )
    )
    return drawn.input_shapes


def specials(dtype: str) -> list:
    return [np.inf, -np.inf, np.nan, 0.0, -0.0, HUGE[dtype], -HUGE[dtype], SUBNORMAL[dtype], 1.0, -1.0]


def array(draw, shape_, dtype, low=-3.0, high=3.0, special=True, grad=True) -> Arr:
    """An ``Arr`` of ``shape_`` in ``dtype``; floats sometimes carry special values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == "bool":
        return Arr(rng.random(shape_) < 0.5)
    if dtype in ("int32", "int64", "uint8"):
        lo, hi = (0, 6) if dtype == "uint8" else (int(min(low, -5)), int(max(high, 5)) + 1)
        return Arr(rng.integers(lo, hi, size=shape_).astype(dtype))
    values = rng.uniform(low, high, size=shape_)
    regime = draw(st.sampled_from(["plain", "plain", "special", "ties"])) if special else "plain"
    if regime == "special" and values.size:
        count = draw(st.integers(1, max(1, values.size // 2)))
        where = rng.choice(values.size, size=count, replace=False)
        pool = specials(dtype)
        values.reshape(-1)[where] = [pool[i] for i in rng.integers(0, len(pool), size=count)]
    elif regime == "ties" and values.size:  # repeated values: ties in max/sort/median, kinks of abs/relu
        values = np.round(values)
    return Arr(values.astype(dtype), grad=grad and dtype.startswith("float"))


def index_array(draw, shape_, size, dtype="int64", negative=True) -> Arr:
    """Valid indices into a side of ``size`` (negative ones too when allowed)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    low = -size if negative else 0
    return Arr(rng.integers(low, max(size, 1), size=shape_).astype(dtype))
