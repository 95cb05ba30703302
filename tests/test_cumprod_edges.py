"""cumprod as PyTorch 2.13 at its edges (issue 12, fuzz findings): along a dimension of one element it is the
identity, so the gradient is the incoming one even at inf (out / x was inf / inf = NaN); float16 products
accumulate in float32."""

import numpy as np
import pytest

import gradflow as gf

torch = pytest.importorskip("torch")


def _both(values, dim, dtype):
    results = []
    for lib in (gf, torch):
        x = lib.tensor(values.astype(dtype), requires_grad=True)
        out = lib.cumprod(x, dim)
        cotangent = lib.tensor(np.linspace(-1.0, 1.0, values.size).reshape(values.shape).astype(dtype))
        (grad,) = lib.autograd.grad(out, x, cotangent)
        results.append((out.detach().numpy(), grad.numpy()))
    return results


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_along_a_single_element_is_the_incoming_one(dtype):
    values = np.array([[[1.9, np.inf, -np.inf, 0.0]]]).reshape(1, 1, 4)  # dim 1 has one element
    ours, theirs = _both(values, 1, dtype)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert np.isfinite(ours[1]).all()


def test_float16_accumulates_in_float32():
    values = np.array([-1.4306640625, 5.960464477539063e-08, -1.0, -2.44921875, 300.0, 300.0])
    ours, theirs = _both(values, 0, "float16")
    np.testing.assert_array_equal(ours[0], theirs[0])  # subnormal products round once, as PyTorch's
    np.testing.assert_allclose(ours[1], theirs[1], rtol=2e-3, atol=1e-7)
