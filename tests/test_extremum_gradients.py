"""Gradients of maximum/minimum and of clamp with tensor bounds follow PyTorch 2.13 (issue 12, fuzz findings).

maximum/minimum: the winner gets the gradient, a tie gives half to each, and where either operand is NaN
(the result is NaN) both get all of it. clamp with tensor bounds: the input gets it where low <= x <= high,
low where x < low < high, high where x > high or high < low, never at a NaN input.
"""

import itertools

import numpy as np
import pytest

import gradflow as gf

torch = pytest.importorskip("torch")

NAN, INF = float("nan"), float("inf")
LEFT = [1.0, NAN, 2.0, NAN, 3.0, INF, -INF, INF, -1.0]
RIGHT = [2.0, 1.0, NAN, NAN, 3.0, INF, -INF, NAN, -2.0]


def _grads(lib, op, inputs, *args, **kwargs):
    leaves = [lib.tensor(v, requires_grad=True) for v in inputs]
    out = getattr(lib, op)(*leaves, *args, **kwargs)
    cotangent = lib.tensor(np.linspace(0.5, 2.0, out.numel()).reshape(tuple(out.shape)), dtype=out.dtype)
    return [out.detach().numpy()] + [g.numpy() for g in lib.autograd.grad(out, leaves, cotangent)]


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_nan_and_tie_shares_match_torch(op):
    ours, theirs = _grads(gf, op, (LEFT, RIGHT)), _grads(torch, op, (LEFT, RIGHT))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_array_equal(mine, reference)
    # the NaN reaches both operands' gradients in full
    assert ours[1][1] == ours[2][1] == np.float32(np.linspace(0.5, 2.0, 9)[1])


def test_clamp_with_tensor_bounds_gradients_match_torch():
    values = [0.0, 1.0, 2.0, NAN]
    x, low, high = (np.array(v, dtype=np.float64) for v in zip(*itertools.product(values, repeat=3)))
    for bounds in ((low, high), (low, None), (None, high)):
        inputs = [x] + [b for b in bounds if b is not None]

        def call(lib, *leaves, bounds=bounds):
            given = iter(leaves[1:])
            low_, high_ = (next(given) if b is not None else None for b in bounds)
            return lib.clamp(leaves[0], low_, high_)

        results = []
        for lib in (gf, torch):
            leaves = [lib.tensor(v, requires_grad=True) for v in inputs]
            out = call(lib, *leaves)
            results.append(
                [out.detach().numpy()] + [g.numpy() for g in lib.autograd.grad(out, leaves, lib.ones_like(out))]
            )
        for mine, reference in zip(*results):
            np.testing.assert_array_equal(mine, reference)
