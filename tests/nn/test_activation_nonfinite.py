"""elu and gelu at non-finite inputs (issue 12, fuzz findings; the rows elu-nan-grad and gelu-inf of
docs/differences.md): elu's gradient at NaN is NaN, gelu(+inf) is +inf in every dtype."""

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("length", [3, 40])
def test_elu_gradient_at_nan_is_nan_wherever_it_sits(dtype, length):
    values = np.linspace(-3.0, 3.0, length).astype(dtype)
    values[1] = np.nan
    x = gf.tensor(values, requires_grad=True)
    (grad,) = gf.autograd.grad(F.elu(x, alpha=1.5), x, gf.ones(length, dtype=getattr(gf, dtype)))
    assert np.isnan(grad.numpy()[1])
    # everywhere else PyTorch's gradient
    reference = torch.tensor(values, requires_grad=True)
    (expected,) = torch.autograd.grad(torch.nn.functional.elu(reference, alpha=1.5), reference, torch.ones(length))
    finite = ~np.isnan(values)
    np.testing.assert_allclose(
        grad.numpy()[finite], expected.numpy()[finite], rtol=2e-3 if dtype == "float16" else 1e-6
    )


def test_elu_vectorized_torch_agrees_at_nan():
    # PyTorch's vectorized loop (a long float32 tensor) also gives NaN there: the rule we follow
    values = np.zeros(64, dtype=np.float32)
    values[5] = np.nan
    reference = torch.tensor(values, requires_grad=True)
    (expected,) = torch.autograd.grad(torch.nn.functional.elu(reference), reference, torch.ones(64))
    assert np.isnan(expected.numpy()[5])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_of_infinities(dtype, approximate):
    out = F.gelu(gf.tensor([np.inf, -np.inf], dtype=getattr(gf, dtype)), approximate=approximate).numpy()
    assert out[0] == np.inf  # the limit of x * Phi(x); PyTorch's float64 kernel agrees
    assert np.isnan(out[1])  # -inf * 0, as PyTorch gives
