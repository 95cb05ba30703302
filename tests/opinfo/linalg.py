"""Op table entries for matrix products."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow as gf

from . import OpInfo, Sample, values


def _matmul_sample(draw):
    """1-D, 2-D and batched operands whose batch dimensions broadcast."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "batched", "broadcast"]))
    if kind == "vv":
        shapes = (k,), (k,)
    elif kind == "mv":
        shapes = (n, k), (k,)
    elif kind == "vm":
        shapes = (k,), (k, m)
    elif kind == "mm":
        shapes = (n, k), (k, m)
    elif kind == "batched":
        batch = draw(st.integers(1, 3))
        shapes = (batch, n, k), (batch, k, m)
    else:
        shapes = (2, 1, n, k), (3, k, m)
    return Sample(tuple(values(draw, shape) for shape in shapes))


def _fixed(*shapes):
    return lambda draw: Sample(tuple(values(draw, s) for s in shapes))


OPS = [
    OpInfo("matmul", gf.matmul, np.matmul, _matmul_sample, method="matmul"),
    OpInfo("matmul_operator", lambda a, b: a @ b, np.matmul, _matmul_sample),
    OpInfo("mm", gf.mm, np.matmul, _fixed((3, 4), (4, 2)), method="mm"),
    OpInfo("bmm", gf.bmm, np.matmul, _fixed((2, 3, 4), (2, 4, 2)), method="bmm"),
    OpInfo("dot", gf.dot, np.dot, _fixed((5,), (5,)), method="dot"),
    OpInfo("outer", gf.outer, np.outer, _fixed((3,), (4,)), method="outer"),
]
