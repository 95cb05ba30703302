"""batch_norm, layer_norm, group_norm and their modules: against PyTorch and NumPy, gradients, running statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import nn
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.errors import ShapeError
from gradflow.nn import functional as F


def host(tensor):
    return tensor.detach().cpu().numpy()


def make(array, device, requires_grad=False):
    return gf.tensor(np.asarray(array), device=device, requires_grad=requires_grad)


def numpy_normalize(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


# -- layer_norm --------------------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), min_size=1, max_size=2),
    normalized=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_forward_matches_numpy_for_any_shape(lead, normalized, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, *normalized))
    weight, bias = rng.standard_normal(normalized), rng.standard_normal(normalized)
    out = F.layer_norm(gf.tensor(x), normalized, gf.tensor(weight), gf.tensor(bias), eps=1e-3)
    axes = tuple(range(len(lead), x.ndim))
    np.testing.assert_allclose(out.numpy(), numpy_normalize(x, axes, 1e-3) * weight + bias, rtol=1e-10, atol=1e-12)


def test_layer_norm_forward_and_grads_match_pytorch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, w, b, g = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((4, 5)), rng.standard_normal((4, 5)), None
    gx, gw, gb = make(x, device, True), make(w, device, True), make(b, device, True)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out, tout = F.layer_norm(gx, (4, 5), gw, gb), torch.nn.functional.layer_norm(tx, (4, 5), tw, tb)
    g = rng.standard_normal(out.shape)
    out.backward(make(g, device))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in ((gx, tx), (gw, tw), (gb, tb)):
        np.testing.assert_allclose(host(mine.grad), theirs.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_layer_norm_float32_stays_float32_and_without_affine_matches_numpy(device):
    x = gf.randn(4, 6, device=device)
    out = F.layer_norm(x, 6)
    assert out.dtype is gf.float32
    np.testing.assert_allclose(host(out), numpy_normalize(host(x), (1,), 1e-5), rtol=1e-4, atol=1e-5)


def test_layer_norm_gradcheck_and_gradgradcheck(device):
    x = gf.randn(2, 3, dtype=gf.float64, device=device, requires_grad=True)
    w = gf.randn(3, dtype=gf.float64, device=device, requires_grad=True)
    b = gf.randn(3, dtype=gf.float64, device=device, requires_grad=True)
    assert gradcheck(lambda a, c, d: F.layer_norm(a, (3,), c, d), (x, w, b))
    assert gradgradcheck(lambda a, c, d: F.layer_norm(a, (3,), c, d), (x, w, b))
    assert gradgradcheck(lambda a: F.layer_norm(a, (2, 3)), (x,))


def test_layer_norm_shape_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"normalized_shape=\[3\].*\[2, 3, 4\]"):
        F.layer_norm(gf.randn(2, 3, 4), (3,))
    with pytest.raises(ShapeError, match=r"weight of shape \[3\] and normalized_shape = \[4\]"):
        F.layer_norm(gf.randn(2, 4), (4,), weight=gf.ones(3))


def test_layernorm_module_matches_pytorch_and_repr(device):
    torch = pytest.importorskip("torch")
    layer = nn.LayerNorm([3, 4], eps=1e-3, device=device)
    reference = torch.nn.LayerNorm([3, 4], eps=1e-3)
    # torch 2.13's reprs, spelled out: older torch releases print no bias= field.
    assert repr(layer) == "LayerNorm((3, 4), eps=0.001, elementwise_affine=True, bias=True)"
    assert repr(nn.LayerNorm(4, bias=False)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=False)"
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    np.testing.assert_array_equal(host(layer.weight), np.ones((3, 4)))
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(host(layer(make(x, device))), reference(torch.tensor(x)).detach().numpy(), atol=1e-5)


# -- batch_norm --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 2, 2)])
def test_batch_norm_training_forward_and_grads_match_pytorch(device, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal(shape), rng.standard_normal(3), rng.standard_normal(3)
    gx, gw, gb = make(x, device, True), make(w, device, True), make(b, device, True)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.batch_norm(gx, None, None, gw, gb, training=True)
    tout = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True)
    g = rng.standard_normal(shape)
    out.backward(make(g, device))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in ((gx, tx), (gw, tw), (gb, tb)):
        np.testing.assert_allclose(host(mine.grad), theirs.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_batch_norm_running_stats_follow_pytorch_over_several_steps(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    mean, var = gf.zeros(3, device=device), gf.ones(3, device=device)
    tmean, tvar = torch.zeros(3), torch.ones(3)
    for _ in range(4):
        x = (rng.standard_normal((5, 3, 2)) * 3 + 1).astype(np.float32)
        out = F.batch_norm(make(x, device), mean, var, training=True, momentum=0.3)
        tout = torch.nn.functional.batch_norm(torch.tensor(x), tmean, tvar, training=True, momentum=0.3)
        np.testing.assert_allclose(host(out), tout.numpy(), atol=1e-5)
        np.testing.assert_allclose(host(mean), tmean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(host(var), tvar.numpy(), rtol=1e-5, atol=1e-6)
    assert mean._version == 4, "each in-place update of the running statistics bumps their version"
    evaluated = F.batch_norm(make(x, device), mean, var, training=False)
    expected = torch.nn.functional.batch_norm(torch.tensor(x), tmean, tvar, training=False)
    np.testing.assert_allclose(host(evaluated), expected.numpy(), atol=1e-5)


def test_batch_norm_backward_leaves_running_stats_alone(device):
    mean, var = gf.zeros(2, device=device), gf.ones(2, device=device)
    x = gf.randn(4, 2, device=device, requires_grad=True)
    out = F.batch_norm(x, mean, var, training=True)
    before = host(mean).copy(), host(var).copy()
    (out * out).sum().backward()
    np.testing.assert_array_equal(host(mean), before[0])
    np.testing.assert_array_equal(host(var), before[1])
    assert mean.grad is None and not mean.requires_grad


def test_batch_norm_gradcheck_and_gradgradcheck_training_and_eval(device):
    x = gf.randn(3, 2, 2, dtype=gf.float64, device=device, requires_grad=True)
    w = gf.randn(2, dtype=gf.float64, device=device, requires_grad=True)
    b = gf.randn(2, dtype=gf.float64, device=device, requires_grad=True)

    def training(a, c, d):
        return F.batch_norm(a, None, None, c, d, training=True)

    mean = gf.tensor([0.5, -1.0], dtype=gf.float64, device=device)
    var = gf.tensor([2.0, 0.5], dtype=gf.float64, device=device)

    def evaluation(a, c, d):
        return F.batch_norm(a, mean, var, c, d, training=False)

    for fn in (training, evaluation):
        assert gradcheck(fn, (x, w, b))
        assert gradgradcheck(fn, (x, w, b))


def test_batch_norm_errors_follow_pytorch():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(gf.randn(1, 3), None, None, training=True)
    with pytest.raises(ShapeError, match="running_mean should contain 3 elements not 4"):
        F.batch_norm(gf.randn(2, 3, 4), gf.zeros(4), gf.ones(4))
    with pytest.raises(ValueError, match="running_mean must be defined in evaluation mode"):
        F.batch_norm(gf.randn(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match="eps must be positive during training"):
        F.batch_norm(gf.randn(2, 3), None, None, training=True, eps=0.0)
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        F.batch_norm(gf.randn(3), None, None, training=True)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_module_tracks_like_pytorch_and_eval_uses_running_stats(device, momentum):
    torch = pytest.importorskip("torch")
    layer = nn.BatchNorm2d(3, momentum=momentum, device=device)
    reference = torch.nn.BatchNorm2d(3, momentum=momentum)
    assert repr(layer) == (
        f"BatchNorm2d(3, eps=1e-05, momentum={momentum}, affine=True, bias=True, track_running_stats=True)"
    )
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = (rng.standard_normal((4, 3, 2, 2)) * 2 - 1).astype(np.float32)
        np.testing.assert_allclose(host(layer(make(x, device))), reference(torch.tensor(x)).detach().numpy(), atol=1e-5)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(host(getattr(layer, name)), getattr(reference, name).numpy(), rtol=1e-5, atol=1e-6)
    assert layer.num_batches_tracked.item() == 3 and layer.num_batches_tracked.dtype is gf.int64
    layer.eval()
    reference.eval()
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(host(layer(make(x, device))), reference(torch.tensor(x)).detach().numpy(), atol=1e-5)
    assert layer.num_batches_tracked.item() == 3, "eval mode does not count batches"
    assert sorted(layer.state_dict()) == sorted(reference.state_dict())


def test_batchnorm1d_without_running_stats_uses_batch_stats_in_eval(device):
    layer = nn.BatchNorm1d(2, affine=False, track_running_stats=False, device=device).eval()
    assert layer.running_mean is None and layer.weight is None
    x = gf.randn(6, 2, 3, device=device)
    np.testing.assert_allclose(host(layer(x)), numpy_normalize(host(x), (0, 2), 1e-5), rtol=1e-4, atol=1e-5)


def test_batchnorm_modules_check_the_input_rank():
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input"):
        nn.BatchNorm1d(3)(gf.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input"):
        nn.BatchNorm2d(3)(gf.randn(2, 3))


def test_batchnorm1d_reset_running_stats_and_bias_false():
    layer = nn.BatchNorm1d(2, bias=False)
    assert layer.bias is None
    layer(gf.randn(4, 2) * 3 + 2)
    layer.reset_running_stats()
    np.testing.assert_array_equal(layer.running_mean.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(layer.running_var.numpy(), [1.0, 1.0])
    assert layer.num_batches_tracked.item() == 0


# -- group_norm --------------------------------------------------------------------------------------------------


def test_group_norm_matches_pytorch_forward_and_grads(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 6, 3)), rng.standard_normal(6), rng.standard_normal(6)
    gx, gw, gb = make(x, device, True), make(w, device, True), make(b, device, True)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out, tout = F.group_norm(gx, 3, gw, gb), torch.nn.functional.group_norm(tx, 3, tw, tb)
    (out * out * out).sum().backward()
    (tout * tout * tout).sum().backward()
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in ((gx, tx), (gw, tw), (gb, tb)):
        np.testing.assert_allclose(host(mine.grad), theirs.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_group_norm_gradcheck_and_gradgradcheck(device):
    x = gf.randn(2, 4, 2, dtype=gf.float64, device=device, requires_grad=True)
    w = gf.randn(4, dtype=gf.float64, device=device, requires_grad=True)
    b = gf.randn(4, dtype=gf.float64, device=device, requires_grad=True)
    assert gradcheck(lambda a, c, d: F.group_norm(a, 2, c, d), (x, w, b))
    assert gradgradcheck(lambda a, c, d: F.group_norm(a, 2, c, d), (x, w, b))


def test_group_norm_errors_and_module(device):
    torch = pytest.importorskip("torch")
    with pytest.raises(ShapeError, match=r"divisible by num_groups, but got input of shape \[2, 3, 4\]"):
        F.group_norm(gf.randn(2, 3, 4), 2)
    with pytest.raises(ShapeError, match=r"weight of shape \[2\]"):
        F.group_norm(gf.randn(2, 3, 4), 3, weight=gf.ones(2))
    with pytest.raises(ValueError, match="num_channels \\(5\\) must be divisible by num_groups \\(2\\)"):
        nn.GroupNorm(2, 5)
    layer = nn.GroupNorm(2, 4, device=device)
    assert repr(layer) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    x = np.random.default_rng(7).standard_normal((3, 4, 5)).astype(np.float32)
    expected = torch.nn.GroupNorm(2, 4)(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(host(layer(make(x, device))), expected, atol=1e-5)
