"""Op table entries for arithmetic, comparisons and selection."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow as gf

from . import OpInfo, Sample, binary_sample, broadcast_shapes, unary_sample, values


def _where_sample(draw):
    cond_shape, a_shape, b_shape = broadcast_shapes(draw, 3)
    condition = values(draw, cond_shape) > 0
    return Sample((condition, values(draw, a_shape), values(draw, b_shape)))


def _scalar_sample(op_low=-2.0, op_high=2.0, scalar=2.5):
    def sample(draw):
        return Sample((values(draw, draw(st.sampled_from([(), (3,), (2, 3)])), op_low, op_high), scalar))

    return sample


def _reflected_sample(draw):
    return Sample((values(draw, draw(st.sampled_from([(), (4,), (2, 2)])), 0.5, 2.0),))


OPS = [
    OpInfo("add", gf.add, np.add, binary_sample(), method="add"),
    OpInfo("add_alpha", lambda a, b: gf.add(a, b, alpha=0.5), lambda a, b: a + 0.5 * b, binary_sample()),
    OpInfo("add_scalar", gf.add, np.add, _scalar_sample()),
    OpInfo("sub", gf.sub, np.subtract, binary_sample(), method="sub"),
    OpInfo("rsub_operator", lambda x: 3.0 - x, lambda x: 3.0 - x, _reflected_sample),
    OpInfo("mul", gf.mul, np.multiply, binary_sample(), method="mul"),
    OpInfo("mul_scalar", lambda x, s: x * s, lambda x, s: x * s, _scalar_sample()),
    OpInfo("rmul_operator", lambda x: 2.0 * x, lambda x: 2.0 * x, _reflected_sample),
    OpInfo("div", gf.div, np.divide, binary_sample(other_low=0.5, other_high=2.0), method="div"),
    OpInfo("rdiv_operator", lambda x: 1.5 / x, lambda x: 1.5 / x, _reflected_sample),
    OpInfo(
        "div_trunc",
        lambda a, b: gf.div(a, b, rounding_mode="trunc"),
        lambda a, b: np.trunc(a / b),
        binary_sample(other_low=0.5, other_high=2.0),
        gradgrad=False,
    ),
    OpInfo(
        "floor_divide", gf.floor_divide, np.floor_divide, binary_sample(other_low=0.5, other_high=2.0), gradgrad=False
    ),
    OpInfo(
        "remainder",
        gf.remainder,
        np.remainder,
        binary_sample(other_low=0.5, other_high=2.0),
        gradgrad=False,
        grad=False,
    ),
    OpInfo("pow", gf.pow, np.power, binary_sample(low=0.5, high=2.0), method="pow"),
    OpInfo("pow_scalar_exponent", lambda x, s: x**s, lambda x, s: x**s, _scalar_sample(0.5, 2.0, 3.0)),
    OpInfo("rpow_operator", lambda x: 2.0**x, lambda x: 2.0**x, _reflected_sample),
    OpInfo("neg", gf.neg, np.negative, unary_sample(), method="neg"),
    OpInfo("abs", gf.abs, np.abs, unary_sample(away_from=[0.0]), method="abs", gradgrad=False),
    OpInfo("maximum", gf.maximum, np.maximum, binary_sample(), method="maximum", gradgrad=False),
    OpInfo("minimum", gf.minimum, np.minimum, binary_sample(), method="minimum", gradgrad=False),
    OpInfo(
        "clamp",
        lambda x: gf.clamp(x, -0.5, 0.7),
        lambda x: np.clip(x, -0.5, 0.7),
        unary_sample(away_from=[-0.5, 0.7]),
        gradgrad=False,
    ),
    OpInfo(
        "clamp_min_only",
        lambda x: x.clamp(min=0.2),
        lambda x: np.maximum(x, 0.2),
        unary_sample(away_from=[0.2]),
        gradgrad=False,
    ),
    OpInfo(
        "clamp_tensor_bounds",
        # bounds around lo, not at it: the sampler can draw x == lo, a kink where PyTorch's gradient is one-sided
        lambda x, lo: gf.clamp(x, lo - 0.5, lo + 0.5),
        lambda x, lo: np.clip(x, lo - 0.5, lo + 0.5),
        binary_sample(),
        gradgrad=False,
    ),
    OpInfo("where", gf.where, np.where, _where_sample),
    OpInfo(
        "where_scalar_other",
        lambda c, a: gf.where(c, a, 0.5),
        lambda c, a: np.where(c, a, 0.5),
        lambda draw: Sample((values(draw, (3, 2)) > 0, values(draw, (3, 2)))),
    ),
    OpInfo(
        "eq",
        gf.eq,
        np.equal,
        lambda draw: Sample((np.round(values(draw, (3, 4))), np.round(values(draw, (4,))))),
        grad=False,
    ),
    OpInfo(
        "ne",
        gf.ne,
        np.not_equal,
        lambda draw: Sample((np.round(values(draw, (3,))), np.round(values(draw, (3,))))),
        grad=False,
    ),
    OpInfo("lt", gf.lt, np.less, binary_sample(), grad=False),
    OpInfo("le", gf.le, np.less_equal, binary_sample(), grad=False),
    OpInfo("gt", gf.gt, np.greater, binary_sample(), grad=False),
    OpInfo("ge", gf.ge, np.greater_equal, binary_sample(), grad=False),
    OpInfo("gt_scalar", lambda x: x > 0.5, lambda x: x > 0.5, unary_sample(), grad=False),
    OpInfo(
        "logical_and",
        lambda a, b: gf.logical_and(a > 0, b > 0),
        lambda a, b: np.logical_and(a > 0, b > 0),
        binary_sample(),
        grad=False,
    ),
    OpInfo(
        "logical_or",
        lambda a, b: gf.logical_or(a > 0, b > 0),
        lambda a, b: np.logical_or(a > 0, b > 0),
        binary_sample(),
        grad=False,
    ),
    OpInfo("logical_not", lambda a: gf.logical_not(a > 0), lambda a: np.logical_not(a > 0), unary_sample(), grad=False),
    OpInfo(
        "isnan",
        lambda a: gf.isnan(gf.log(a)),
        np.errstate(invalid="ignore", divide="ignore")(lambda a: np.isnan(np.log(a))),
        unary_sample(away_from=[0.0]),
        grad=False,
    ),
    OpInfo(
        "isinf",
        lambda a: gf.isinf(1 / (a * 0)),
        np.errstate(invalid="ignore", divide="ignore")(lambda a: np.isinf(1 / (a * 0))),
        unary_sample(away_from=[0.0]),
        grad=False,
    ),
    OpInfo(
        "isfinite",
        lambda a: gf.isfinite(gf.log(a)),
        np.errstate(invalid="ignore", divide="ignore")(lambda a: np.isfinite(np.log(a))),
        unary_sample(away_from=[0.0]),
        grad=False,
    ),
]
