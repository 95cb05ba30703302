"""nn.init: PyTorch's formulas, in-place fills, and the same values on every device for one seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import ShapeError
from gradflow.nn import init


def test_fans_match_pytorch():
    torch = pytest.importorskip("torch")
    for shape in [(4, 3), (8, 4, 3, 3), (5, 2, 7)]:
        assert init._calculate_fan_in_and_fan_out(gf.empty(*shape)) == torch.nn.init._calculate_fan_in_and_fan_out(
            torch.empty(*shape)
        )
    with pytest.raises(ShapeError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(gf.empty(3))


@pytest.mark.parametrize(
    "name, param", [("linear", None), ("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("selu", None)]
)
def test_calculate_gain_matches_pytorch(name, param):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_unknown_nonlinearity_raises():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_uniform_bounds_and_kaiming_bound():
    w = gf.empty(200, 50)
    init.kaiming_uniform_(w, a=math.sqrt(5))
    bound = 1 / math.sqrt(50)  # gain sqrt(2/(1+5)) * sqrt(3/fan_in)
    values = w.numpy()
    assert values.min() >= -bound and values.max() <= bound
    assert values.max() > 0.9 * bound and values.min() < -0.9 * bound


def test_normal_statistics():
    w = gf.empty(400, 400)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    init.xavier_normal_(w, gain=2.0)
    assert w.numpy().std() == pytest.approx(2 * math.sqrt(2 / 800), rel=0.02)
    init.normal_(w, mean=3.0, std=0.5)
    assert w.numpy().mean() == pytest.approx(3.0, abs=0.01)


def test_trunc_normal_stays_in_bounds():
    w = gf.empty(10_000)
    init.trunc_normal_(w, mean=0.5, std=1.0, a=-0.5, b=1.0)
    assert w.numpy().min() >= -0.5 and w.numpy().max() <= 1.0
    assert w.numpy().std() < 0.5  # truncation narrows the spread


def test_orthogonal_rows_or_columns_are_orthonormal():
    tall = gf.empty(6, 3)
    init.orthogonal_(tall, gain=2.0)
    np.testing.assert_allclose(tall.numpy().T @ tall.numpy(), 4 * np.eye(3), atol=1e-5)
    wide = gf.empty(3, 2, 4)  # flattened to 3 x 8
    init.orthogonal_(wide)
    flat = wide.numpy().reshape(3, 8)
    np.testing.assert_allclose(flat @ flat.T, np.eye(3), atol=1e-5)


def test_constant_fills_and_returns_the_tensor():
    w = gf.empty(2, 2)
    assert init.ones_(w) is w and w.sum().item() == 4
    init.zeros_(w)
    assert w.abs().sum().item() == 0
    init.constant_(w, 0.25)
    assert w.sum().item() == 1.0
    init.eye_(w)
    np.testing.assert_array_equal(w.numpy(), np.eye(2))


def test_init_bumps_version_so_stale_graphs_are_caught():
    w = nn.Parameter(gf.ones(3))
    y = (w * w).sum()
    with gf.no_grad():
        init.zeros_(w)
    with pytest.raises(gf.errors.InplaceError):
        y.backward()


def test_same_seed_same_weights_on_every_device(device):
    gf.manual_seed(7)
    cpu_layer = nn.Linear(5, 4)
    gf.manual_seed(7)
    other = nn.Linear(5, 4, device=device)
    np.testing.assert_array_equal(other.weight.detach().cpu().numpy(), cpu_layer.weight.detach().numpy())
    np.testing.assert_array_equal(other.bias.detach().cpu().numpy(), cpu_layer.bias.detach().numpy())
