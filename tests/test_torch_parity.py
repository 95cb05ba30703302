"""Optional parity with PyTorch 2.13 (CPU): the same expressions give the same values, gradients
and dtypes. Skipped cleanly when torch is not installed (`pip install torch==2.13.0`)."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf

torch = pytest.importorskip("torch")

DTYPES = {
    "float16": (gf.float16, torch.float16),
    "float32": (gf.float32, torch.float32),
    "float64": (gf.float64, torch.float64),
    "int32": (gf.int32, torch.int32),
    "int64": (gf.int64, torch.int64),
    "bool": (gf.bool, torch.bool),
}


@pytest.mark.parametrize("first", sorted(DTYPES))
@pytest.mark.parametrize("second", sorted(DTYPES))
def test_binary_promotion_matches_torch(first, second):
    (gf_a, torch_a), (gf_b, torch_b) = DTYPES[first], DTYPES[second]
    ours = (gf.ones(2, dtype=gf_a) + gf.ones(2, dtype=gf_b)).dtype.name
    theirs = str((torch.ones(2, dtype=torch_a) + torch.ones(2, dtype=torch_b)).dtype).replace("torch.", "")
    assert ours == theirs
    ours_zero_dim = (gf.ones(2, dtype=gf_a) * gf.ones((), dtype=gf_b)).dtype.name
    theirs_zero_dim = str((torch.ones(2, dtype=torch_a) * torch.ones((), dtype=torch_b)).dtype).replace("torch.", "")
    assert ours_zero_dim == theirs_zero_dim


@pytest.mark.parametrize("name", sorted(DTYPES))
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_scalar_promotion_matches_torch(name, scalar):
    gf_dtype, torch_dtype = DTYPES[name]
    ours = (gf.ones(2, dtype=gf_dtype) * scalar).dtype.name
    theirs = str((torch.ones(2, dtype=torch_dtype) * scalar).dtype).replace("torch.", "")
    assert ours == theirs


def _expression(lib, x, w, b):
    hidden = (x @ w + b).tanh()
    gated = hidden * (hidden * 2).sigmoid() - (x.abs() + 1).log().sum(1, keepdim=True) / 3
    return (gated**2).mean() + (w.exp() - 1).clamp(-0.5, 0.5).sum()


def test_values_and_gradients_of_a_composite_expression_match_torch():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)]
    ours = [gf.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_loss = _expression(gf, *ours)
    their_loss = _expression(torch, *theirs)
    our_loss.backward()
    their_loss.backward()
    assert our_loss.item() == pytest.approx(their_loss.item(), rel=1e-10)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_second_derivatives_match_torch():
    values = np.array([0.3, -1.2, 2.0])
    ours = gf.tensor(values, requires_grad=True)
    theirs = torch.tensor(values, requires_grad=True)
    (our_grad,) = gf.autograd.grad((ours.sin() * ours**2).sum(), ours, create_graph=True)
    (their_grad,) = torch.autograd.grad((theirs.sin() * theirs**2).sum(), theirs, create_graph=True)
    (our_second,) = gf.autograd.grad(our_grad.sum(), ours)
    (their_second,) = torch.autograd.grad(their_grad.sum(), theirs)
    np.testing.assert_allclose(our_second.numpy(), their_second.numpy(), rtol=1e-12)


def test_division_and_remainder_semantics_match_torch():
    a, b = [7, -7, 7, -7], [2, 2, -2, -2]
    for mode in (None, "trunc", "floor"):
        ours = gf.div(gf.tensor(a), gf.tensor(b), rounding_mode=mode)
        theirs = torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode)
        assert ours.tolist() == theirs.tolist() and ours.dtype.name == str(theirs.dtype).replace("torch.", "")
    assert (gf.tensor(a) % gf.tensor(b)).tolist() == (torch.tensor(a) % torch.tensor(b)).tolist()


def test_maximum_ties_split_the_gradient_like_torch():
    ours = [gf.tensor([1.0, 2.0], requires_grad=True), gf.tensor([1.0, 3.0], requires_grad=True)]
    theirs = [torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 3.0], requires_grad=True)]
    gf.maximum(*ours).sum().backward()
    torch.maximum(*theirs).sum().backward()
    for mine, reference in zip(ours, theirs):
        assert mine.grad.tolist() == reference.grad.tolist()


def test_activation_values_match_torch():
    values = np.linspace(-4, 4, 17)
    x, t = gf.tensor(values), torch.tensor(values)
    F, TF = gf.nn.functional, torch.nn.functional
    pairs = [
        (F.gelu(x), TF.gelu(t)),
        (F.gelu(x, approximate="tanh"), TF.gelu(t, approximate="tanh")),
        (F.silu(x), TF.silu(t)),
        (F.softplus(x, beta=2, threshold=3), TF.softplus(t, beta=2, threshold=3)),
        (F.elu(x, alpha=0.7), TF.elu(t, alpha=0.7)),
        (F.leaky_relu(x, 0.1), TF.leaky_relu(t, 0.1)),
        (x.sigmoid(), t.sigmoid()),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-15)
