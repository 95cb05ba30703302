"""Op table entries for unary math (sigmoid and tanh too; the other activations are in activation.py)."""

from __future__ import annotations

import numpy as np
from scipy import special

import gradflow as gf

from . import OpInfo, unary_sample


def _unary(name, ref, low=-2.0, high=2.0, away_from=None, gradgrad=True, grad=True, method=True, op=None):
    return OpInfo(
        name,
        op or getattr(gf, name),
        ref,
        unary_sample(low, high, away_from),
        grad=grad,
        gradgrad=gradgrad,
        method=name if method else None,
    )


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


OPS = [
    _unary("exp", np.exp),
    _unary("exp2", np.exp2),
    _unary("log", np.log, 0.1, 3.0),
    _unary("log2", np.log2, 0.1, 3.0),
    _unary("log10", np.log10, 0.1, 3.0),
    _unary("log1p", np.log1p, -0.9, 3.0),
    _unary("expm1", np.expm1),
    _unary("sqrt", np.sqrt, 0.1, 3.0),
    _unary("rsqrt", lambda x: 1 / np.sqrt(x), 0.1, 3.0),
    _unary("square", np.square),
    _unary("reciprocal", np.reciprocal, 0.2, 3.0),
    _unary("sin", np.sin),
    _unary("cos", np.cos),
    _unary("tan", np.tan, -1.2, 1.2),
    _unary("asin", np.arcsin, -0.9, 0.9),
    _unary("acos", np.arccos, -0.9, 0.9),
    _unary("atan", np.arctan),
    _unary("sinh", np.sinh),
    _unary("cosh", np.cosh),
    _unary("tanh", np.tanh),
    _unary("erf", special.erf, method=False),
    _unary("sigmoid", _sigmoid),
    _unary("sign", np.sign, away_from=[0.0], gradgrad=False),
    _unary("floor", np.floor, away_from=[-2.0, -1.0, 0.0, 1.0], gradgrad=False),
    _unary("ceil", np.ceil, away_from=[-2.0, -1.0, 0.0, 1.0], gradgrad=False),
    _unary("trunc", np.trunc, away_from=[-1.0, 0.0, 1.0], gradgrad=False),
    _unary("frac", lambda x: x - np.trunc(x), away_from=[-1.0, 0.0, 1.0]),
    _unary("round", np.round, away_from=[-1.5, -0.5, 0.5, 1.5], gradgrad=False),
]
