"""Linear and the activation modules against PyTorch, plus their options."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import ShapeError
from gradflow.nn import functional as F


def test_linear_shapes_and_default_init_bounds():
    layer = nn.Linear(16, 3)
    assert layer.weight.shape == (3, 16) and layer.bias.shape == (3,)
    assert np.abs(layer.weight.numpy(force=True)).max() <= 0.25
    assert repr(layer) == "Linear(in_features=16, out_features=3, bias=True)"
    assert nn.Linear(2, 2, bias=False).bias is None


def test_linear_forward_and_grads_match_pytorch(device):
    torch = pytest.importorskip("torch")
    layer = nn.Linear(4, 3, dtype=gf.float64, device=device)
    x = gf.randn(2, 5, 4, dtype=gf.float64, device=device, requires_grad=True)
    out = layer(x)
    (out * out).sum().backward()
    tx = torch.tensor(x.detach().cpu().numpy(), requires_grad=True)
    tw = torch.tensor(layer.weight.detach().cpu().numpy(), requires_grad=True)
    tb = torch.tensor(layer.bias.detach().cpu().numpy(), requires_grad=True)
    tout = torch.nn.functional.linear(tx, tw, tb)
    (tout * tout).sum().backward()
    np.testing.assert_allclose(out.detach().cpu().numpy(), tout.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.cpu().numpy(), tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.cpu().numpy(), tb.grad.numpy(), rtol=1e-12)


def test_linear_gradcheck_and_gradgradcheck(device):
    x = gf.randn(3, 4, dtype=gf.float64, device=device, requires_grad=True)
    w = gf.randn(2, 4, dtype=gf.float64, device=device, requires_grad=True)
    b = gf.randn(2, dtype=gf.float64, device=device, requires_grad=True)
    assert gf.autograd.gradcheck(F.linear, (x, w, b))
    assert gf.autograd.gradgradcheck(F.linear, (x, w, b))
    assert gf.autograd.gradcheck(lambda a, m: F.linear(a, m), (x, w))


def test_linear_vector_input_and_shape_errors():
    w = gf.randn(2, 3)
    assert F.linear(gf.randn(3), w).shape == (2,)
    with pytest.raises(ShapeError, match="in_features"):
        F.linear(gf.randn(4, 5), w)
    with pytest.raises(ShapeError, match="bias"):
        F.linear(gf.randn(4, 3), w, gf.randn(3))


MODULES = [
    ("ReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.2}),
    ("GELU", {}),
    ("GELU", {"approximate": "tanh"}),
    ("SiLU", {}),
    ("Mish", {}),
    ("Mish", {"inplace": True}),
    ("Tanh", {}),
    ("Sigmoid", {}),
    ("Softplus", {"beta": 2.0, "threshold": 5.0}),
    ("ELU", {"alpha": 0.5}),
    ("Softmax", {"dim": 1}),
    ("LogSoftmax", {"dim": 0}),
]


@pytest.mark.parametrize("name, kwargs", MODULES)
def test_activation_modules_match_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).normal(size=(4, 5)) * 3
    ours = getattr(nn, name)(**kwargs)(gf.tensor(values))
    theirs = getattr(torch.nn, name)(**kwargs)(torch.tensor(values))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-14)
    assert repr(getattr(nn, name)(**kwargs)) == repr(getattr(torch.nn, name)(**kwargs))


def test_inplace_activation_overwrites_input():
    x = gf.tensor([-1.0, 2.0])
    out = nn.ReLU(inplace=True)(x)
    assert out is x and x.tolist() == [0.0, 2.0]
    base = gf.tensor([-1.0, 2.0], requires_grad=True)
    y = base * 1
    out = nn.LeakyReLU(0.5, inplace=True)(y)
    assert out is y and y.tolist() == [-0.5, 2.0]
    out.sum().backward()  # the in-place op took over y's place in the graph
    assert base.grad.tolist() == [0.5, 1.0]


def test_mish_module_matches_pytorch_forward_and_backward_in_place_too():
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(1).normal(size=(3, 4)) * 4
    base = gf.tensor(values, requires_grad=True)
    their_base = torch.tensor(values, requires_grad=True)
    # In place on a non-leaf, as torch allows; the gradient flows back through it to the leaf.
    ours, theirs = nn.Mish(inplace=True)(base * 1), torch.nn.Mish(inplace=True)(their_base * 1)
    (ours * ours).sum().backward()
    (theirs * theirs).sum().backward()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(base.grad.numpy(), their_base.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_flatten_unflatten_identity():
    x = gf.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Unflatten(1, (3, 1))(gf.randn(2, 3)).shape == (2, 3, 1)
    assert nn.Identity(54, unused="x")(x) is x


@pytest.mark.parametrize("create_graph", [False, True])
def test_relu_gradient_at_nan_is_passed_through_like_pytorch(device, create_graph):
    # PyTorch's threshold_backward zeroes the gradient only where the output is <= 0, so a NaN input
    # passes its gradient; the recorded (create_graph) backward must agree with the fused first-order one.
    x = gf.tensor([float("nan"), -1.0, 0.0, 2.0], device=device, requires_grad=True)
    (grad,) = gf.autograd.grad(F.relu(x), (x,), gf.ones(4, device=device), create_graph=create_graph)
    assert grad.detach().cpu().tolist() == [1.0, 0.0, 0.0, 1.0]
    # An inf gradient at a negative input is zeroed (a mask product would give inf * 0 = NaN).
    infinite = gf.tensor([float("inf")] * 4, device=device)
    (grad,) = gf.autograd.grad(F.relu(x), (x,), infinite, create_graph=create_graph)
    assert grad.detach().cpu().tolist() == [float("inf"), 0.0, 0.0, float("inf")]


@pytest.mark.parametrize("create_graph", [False, True])
def test_elu_gradient_keeps_exp_x_far_below_zero_and_is_nan_at_nan(device, create_graph):
    # alpha * exp(x), not out + alpha: the sum cancels to 0 in float32 long before exp(x) underflows.
    torch = pytest.importorskip("torch")
    values = np.array([-20.0, -90.0, -3.0, 0.0, 2.0, np.nan], dtype=np.float32)
    x = gf.tensor(values, device=device, requires_grad=True)
    (grad,) = gf.autograd.grad(F.elu(x, alpha=0.5), (x,), gf.ones(6, device=device), create_graph=create_graph)
    reference = torch.tensor(values, requires_grad=True)
    torch.nn.functional.elu(reference, alpha=0.5).sum().backward()
    # atol: the smallest normal float32. At x = -90, 0.5 * exp(x) = 4.1e-40 is subnormal: the CPU keeps it,
    # CUDA's expf flushes it to 0 (seen on an H200); everything at normal magnitudes must match to rtol.
    tiny = float(np.finfo(np.float32).tiny)
    ours = grad.detach().cpu().numpy()
    np.testing.assert_allclose(ours[:-1], reference.grad.numpy()[:-1], rtol=1e-6, atol=tiny)
    # NaN in, NaN out (docs/differences.md, elu-nan-grad): PyTorch's scalar loop, which a 6-element tensor
    # takes, gives 1 there; its vectorized loop gives NaN
    assert np.isnan(ours[-1])


def test_elu_double_backward_stays_finite_for_large_inputs():
    # The exp branch must not see x > 0 (exp(1000) = inf would turn the masked-out branch into NaN).
    x = gf.tensor([1000.0, -1.0], dtype=gf.float64, requires_grad=True)
    (grad,) = gf.autograd.grad(F.elu(x).sum(), (x,), create_graph=True)
    (second,) = gf.autograd.grad(grad.sum(), (x,))
    np.testing.assert_allclose(second.tolist(), [0.0, np.exp(-1.0)], rtol=1e-12)
