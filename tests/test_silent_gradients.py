"""Issue 12, "silent wrong values" (continued): pow's gradients at 0, std's gradient at a constant,
huber/smooth_l1 at +-inf, and normalisation of float32 values whose squares overflow, against PyTorch.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _grads(module, x, e, kind: str, device=None):
    """First-order gradients of sum(x ** e) for tensor/tensor, tensor/scalar and scalar/tensor pow."""
    make = (lambda v: gf.tensor(v, device=device, requires_grad=True)) if module is gf else (
        lambda v: torch.tensor(v, requires_grad=True))  # fmt: skip
    grad = gf.autograd.grad if module is gf else torch.autograd.grad
    if kind == "tensor ** tensor":
        inputs = [make(x), make(e)]
        out = inputs[0] ** inputs[1]
    elif kind == "tensor ** scalar":
        inputs = [make(x)]
        out = inputs[0] ** float(e[0])
    else:
        inputs = [make(e)]
        out = float(x[0]) ** inputs[0]
    return [g.detach().cpu().numpy() if module is gf else g.numpy() for g in grad(out.sum(), inputs)]


BASES = [0.0, 2.0, -2.0, 0.5, -1.5, np.inf]
EXPONENTS = [0.0, 1.0, 2.0, 3.0, -1.0, 0.5, -0.5, 2.5]


@pytest.mark.parametrize("kind", ["tensor ** tensor", "tensor ** scalar", "scalar ** tensor"])
def test_pow_gradients_match_torch_everywhere(device, kind):
    for base, exponent in itertools.product(BASES, EXPONENTS):
        x, e = np.array([base]), np.array([exponent])
        for ours, theirs in zip(_grads(gf, x, e, kind, device), _grads(torch, x, e, kind)):
            np.testing.assert_allclose(ours, theirs, equal_nan=True, err_msg=f"{kind}: x={base}, y={exponent}")


def test_polynomial_features_have_finite_gradients_at_zero(device):
    x = gf.tensor([0.0, 1.5, -2.0], device=device, requires_grad=True)
    powers = gf.arange(4.0, device=device)
    features = x.unsqueeze(-1) ** powers
    features.sum().backward()
    x_t = torch.tensor([0.0, 1.5, -2.0], requires_grad=True)
    (x_t.unsqueeze(-1) ** torch.arange(4.0)).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), x_t.grad.numpy())
    assert x.grad.cpu().numpy()[0] == 1.0  # d/dx (1 + x + x^2 + x^3) at 0
    # The exponent's gradient at x = 0 is 0 as well (PyTorch), and the second derivative is finite.
    e = gf.tensor([0.0, 1.0, 2.0, 3.0], device=device, requires_grad=True)
    base = gf.zeros(4, device=device, requires_grad=True)
    (grad_base,) = gf.autograd.grad((base**e).sum(), (base,), create_graph=True)
    np.testing.assert_array_equal(grad_base.detach().cpu().numpy(), [0, 1, 0, 0])
    second = gf.autograd.grad(grad_base.sum(), (base, e))
    e_t, base_t = torch.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True), torch.zeros(4, requires_grad=True)
    (grad_base_t,) = torch.autograd.grad((base_t**e_t).sum(), (base_t,), create_graph=True)
    for ours, theirs in zip(second, torch.autograd.grad(grad_base_t.sum(), (base_t, e_t))):
        np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), equal_nan=True)  # NaN at y = 0 in both
    (grad_e,) = gf.autograd.grad((base**e).sum(), (e,))
    np.testing.assert_array_equal(grad_e.cpu().numpy(), [0, 0, 0, 0])


def test_pow_second_order_matches_torch_away_from_zero(device):
    x, e = np.array([2.0, -1.5, 0.5, -2.0]), np.array([3.0, 2.0, -0.5, 0.0])
    results = []
    for module in (gf, torch):
        make = (lambda v: gf.tensor(v, device=device, requires_grad=True)) if module is gf else (
            lambda v: torch.tensor(v, requires_grad=True))  # fmt: skip
        grad = gf.autograd.grad if module is gf else torch.autograd.grad
        base, power = make(x), make(e)
        first = grad((base**power).sum(), (base, power), create_graph=True)
        second = grad(sum(g.sum() for g in first), (base, power))
        results.append([g.detach().cpu().numpy() if module is gf else g.numpy() for g in second])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, equal_nan=True)


@pytest.mark.parametrize("values", [[3.0, 3.0, 3.0], [[1.0, 2.0], [-4.0, -4.0]], [7.0]])
@pytest.mark.parametrize("dim", [None, -1])
def test_std_gradient_is_zero_where_std_is_zero(device, values, dim):
    x = gf.tensor(values, device=device, requires_grad=True)
    x_t = torch.tensor(values, requires_grad=True)
    out, expected = x.std(dim, correction=0), x_t.std(dim, correction=0)
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), x_t.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert np.isfinite(x.grad.cpu().numpy()).all()


def test_std_second_order_and_unbiased_match_torch(device):
    values = np.random.default_rng(0).standard_normal((3, 5))
    assert gf.autograd.gradgradcheck(lambda t: t.std(1), (gf.tensor(values, device=device, requires_grad=True),))
    x, x_t = gf.tensor(values, device=device, requires_grad=True), torch.tensor(values, requires_grad=True)
    x.std(0, keepdim=True).sum().backward()
    x_t.std(0, keepdim=True).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), x_t.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("values", [[3e19, -3e19], [1e30, -1e30, 2e30], [1e-30, 3e-30]])
def test_std_of_huge_float32_values_is_finite(device, values):
    x = gf.tensor(np.array(values, np.float32), device=device, requires_grad=True)
    expected = torch.tensor(values, dtype=torch.float64).std().item()
    out = x.std()
    np.testing.assert_allclose(out.item(), expected, rtol=1e-6)
    out.backward()
    x64 = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    x64.std().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), x64.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("loss, options", [("huber_loss", {"delta": 1.5}), ("smooth_l1_loss", {"beta": 0.5}),
                                           ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {})])  # fmt: skip
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_huber_and_smooth_l1_gradients_at_infinity(device, loss, options, reduction):
    values = [np.inf, -np.inf, 0.3, -2.0, 5.0]
    x, x_t = gf.tensor(values, device=device, requires_grad=True), torch.tensor(values, requires_grad=True)
    out = getattr(F, loss)(x, gf.zeros(5, device=device), reduction=reduction, **options)
    expected = getattr(TF, loss)(x_t, torch.zeros(5), reduction=reduction, **options)
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy())
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), x_t.grad.numpy(), rtol=1e-6)
    assert np.isfinite(x.grad.cpu().numpy()).all()


# -- normalisation of float32 values whose squares overflow ------------------------------------------

NORMS = {
    "layer_norm": lambda f, x: f.layer_norm(x, (4,)),
    "layer_norm_affine": lambda f, x: f.layer_norm(
        x, (4,), _constant(f, x, [2.0, -1.0, 0.5, 3.0]), _constant(f, x, [1.0] * 4)
    ),
    "group_norm": lambda f, x: f.group_norm(x.reshape(2, 4, 1), 2).reshape(2, 4),
    "batch_norm": lambda f, x: f.batch_norm(x.T, None, None, training=True).T,
}


@pytest.mark.parametrize("scale", [1.0, 1e19, 3e19, 1e30, 1e37])
@pytest.mark.parametrize("name", sorted(NORMS))
def test_normalisation_of_huge_float32_values(device, name, scale):
    values = (np.array([[1.0, -1.0, 0.5, 0.0], [3.0, -3.0, 3.0, -2.0]]) * scale).astype(np.float32)
    x = gf.tensor(values, device=device, requires_grad=True)
    reference = torch.tensor(values, dtype=torch.float64, requires_grad=True)  # float64: no overflow there
    out, expected = NORMS[name](F, x), NORMS[name](TF, reference)
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    grad = np.arange(8.0).reshape(2, 4)
    out.backward(gf.tensor(grad.astype(np.float32), device=device))
    expected.backward(torch.tensor(grad))
    # d/dx scales as 1/scale: compare the gradient times the scale.
    np.testing.assert_allclose(x.grad.cpu().numpy() * scale, reference.grad.numpy() * scale, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", [1e19])  # rows up to 3e19: squares overflow; the 1/scale^2 second derivative does not
def test_normalisation_second_order_of_huge_values(device, scale):
    values = np.array([[1.0, -1.0, 0.5, 0.0], [3.0, -3.0, 3.0, -2.0]])
    results = []
    for module, data in ((gf, (values * scale).astype(np.float32)), (torch, values)):
        x = (
            gf.tensor(data, device=device, requires_grad=True)
            if module is gf
            else torch.tensor(data, requires_grad=True)
        )
        grad = gf.autograd.grad if module is gf else torch.autograd.grad
        f = module.nn.functional
        out = (f.layer_norm(x, (4,)) * _constant(f, x, [1.0, 2.0, 3.0, 4.0])).sum()
        (first,) = grad(out, (x,), create_graph=True)
        factor = scale if module is gf else 1.0  # first ~ 1/scale: (scale * first)^2 stays in range
        (second,) = grad(((first * factor) ** 2).sum(), (x,))
        results.append(second.detach().cpu().numpy() if module is gf else second.numpy())
    # d/dx (scale * first)^2 ~ scale^2 / scale^3: times scale, it is the unscaled second derivative.
    np.testing.assert_allclose(results[0].astype(np.float64) * scale, results[1], rtol=1e-3, atol=1e-3)


def _constant(f, x, values):
    """``values`` as a constant tensor of ``x``'s framework (``f`` is its functional module), dtype and device."""
    if f is F:
        return gf.tensor(np.array(values, np.float32), device=x.device)
    return torch.tensor(values, dtype=x.dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("cols", [4, 1000, 40000])  # row-cached kernels, and the long-row (Welford) kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_kernels_match_reference_at_huge_values(cols, dtype):
    import cupy

    from gradflow.backends.fused.norm import cuda_layer_norm_forward, numpy_layer_norm_forward

    rng = np.random.default_rng(cols)
    huge = 3e19 if dtype == np.float32 else 1e160
    x = rng.standard_normal((3, cols)) * np.array([[1.0], [huge], [huge * 1e10 if dtype == np.float32 else 1.0]])
    x = x.astype(dtype)
    weight = rng.standard_normal(cols).astype(dtype)
    expected, mean, rstd = numpy_layer_norm_forward(x, weight, None, 1e-5)
    assert np.isfinite(expected).all() and np.abs(expected).max() > 0.1
    out, device_mean, device_rstd = cuda_layer_norm_forward(cupy.asarray(x), cupy.asarray(weight), None, 1e-5)
    np.testing.assert_allclose(device_rstd.get(), rstd, rtol=1e-4)
    np.testing.assert_allclose(out.get(), expected, rtol=1e-3, atol=1e-3)
