"""nn.utils: gradient clipping and parameter/vector conversion against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import GraphError, ShapeError


def _params_with_grads(values):
    params = []
    for value in values:
        p = nn.Parameter(gf.tensor(np.zeros_like(value)))
        p.grad = gf.tensor(value)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    values = [rng.normal(size=(3, 4)), rng.normal(size=5)]
    ours = _params_with_grads(values)
    theirs = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in values]
    for t, v in zip(theirs, values):
        t.grad = torch.tensor(v)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_nonfinite_raises_when_asked():
    params = _params_with_grads([np.array([np.inf, 1.0])])
    with pytest.raises(GraphError, match="non-finite"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_skips_parameters_without_grad():
    layer = nn.Linear(2, 2)
    assert nn.utils.clip_grad_norm_(layer.parameters(), 1.0).item() == 0.0


def test_clip_grad_value_clamps_in_place():
    params = _params_with_grads([np.array([-3.0, 0.5, 2.0])])
    nn.utils.clip_grad_value_(params, 1.0)
    assert params[0].grad.tolist() == [-1.0, 0.5, 1.0]


def test_parameters_vector_round_trip():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == (3 * 2 + 2 + 2 + 1,)
    nn.utils.vector_to_parameters(vec * 2, model.parameters())
    np.testing.assert_allclose(
        nn.utils.parameters_to_vector(model.parameters()).detach().numpy(), 2 * vec.detach().numpy()
    )
    with pytest.raises(ShapeError, match="hold 11 elements"):
        nn.utils.vector_to_parameters(gf.zeros(3), model.parameters())
