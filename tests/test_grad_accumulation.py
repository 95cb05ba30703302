"""Gradient accumulation: k micro-batches with the loss divided by k give the big batch's gradients.

``.grad`` sums over backward passes, and a mean-reduced loss over a batch equals the mean
of its k equal-sized micro-batch means, so accumulating ``loss / k`` must reproduce the
big-batch gradients up to float32 rounding; forgetting the ``/ k`` makes them k times larger.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn, optim

# float32 sums in a different order: a few ulps of the gradient's size.
RTOL, ATOL = 1e-5, 1e-6


def mlp(features: int, outputs: int, device) -> nn.Module:
    gf.manual_seed(0)
    return nn.Sequential(nn.Linear(features, 16), nn.Tanh(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, outputs)).to(
        device
    )


def gradients(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: p.grad.cpu().numpy().copy() for name, p in model.named_parameters()}


def big_batch_gradients(model, loss_fn, x, y) -> dict[str, np.ndarray]:
    model.zero_grad()
    loss_fn(model(x), y).backward()
    return gradients(model)


def accumulated_gradients(model, loss_fn, x, y, k: int, divide: bool = True) -> dict[str, np.ndarray]:
    model.zero_grad()
    for x_micro, y_micro in zip(x.chunk(k), y.chunk(k)):
        loss = loss_fn(model(x_micro), y_micro)
        (loss / k if divide else loss).backward()
    return gradients(model)


def assert_all_close(actual: dict, expected: dict, scale: float = 1.0) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], scale * expected[name], rtol=RTOL, atol=ATOL * scale, err_msg=name)


def regression_batch(batch: int, features: int, outputs: int, device, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = gf.tensor(rng.normal(size=(batch, features)).astype(np.float32), device=device)
    y = gf.tensor(rng.normal(size=(batch, outputs)).astype(np.float32), device=device)
    return x, y


def classification_batch(batch: int, features: int, classes: int, device, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = gf.tensor(rng.normal(size=(batch, features)).astype(np.float32), device=device)
    y = gf.tensor(rng.integers(0, classes, batch), device=device)
    return x, y


# The device fixture holds no state, so sharing it across generated inputs is safe.
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(1, 4), micro_batch=st.integers(1, 5), features=st.integers(1, 4), outputs=st.integers(1, 3))
def test_accumulated_mse_gradients_of_an_mlp_equal_the_big_batch(device, k, micro_batch, features, outputs):
    model = mlp(features, outputs, device)
    x, y = regression_batch(k * micro_batch, features, outputs, device)
    expected = big_batch_gradients(model, F.mse_loss, x, y)
    assert_all_close(accumulated_gradients(model, F.mse_loss, x, y, k), expected)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_accumulated_cross_entropy_gradients_equal_the_big_batch(device, k):
    model = mlp(6, 5, device)
    x, y = classification_batch(32, 6, 5, device)
    expected = big_batch_gradients(model, F.cross_entropy, x, y)
    assert_all_close(accumulated_gradients(model, F.cross_entropy, x, y, k), expected)


def test_forgetting_to_divide_by_k_makes_the_gradients_k_times_larger(device):
    k = 4
    model = mlp(6, 5, device)
    x, y = classification_batch(32, 6, 5, device)
    expected = big_batch_gradients(model, F.cross_entropy, x, y)
    undivided = accumulated_gradients(model, F.cross_entropy, x, y, k, divide=False)
    assert_all_close(undivided, expected, scale=k)
    with pytest.raises(AssertionError):
        assert_all_close(undivided, expected)


def test_sum_reduced_loss_accumulates_without_dividing(device):
    def summed(output, target):
        return F.cross_entropy(output, target, reduction="sum")

    model = mlp(6, 5, device)
    x, y = classification_batch(24, 6, 5, device)
    expected = big_batch_gradients(model, summed, x, y)
    assert_all_close(accumulated_gradients(model, summed, x, y, 3, divide=False), expected)


def test_unequal_micro_batches_need_weights_proportional_to_their_size(device):
    # 10 samples split 7 + 3: dividing each mean by k = 2 over-weights the small micro-batch.
    model = mlp(3, 2, device)
    x, y = regression_batch(10, 3, 2, device)
    expected = big_batch_gradients(model, F.mse_loss, x, y)
    model.zero_grad()
    for x_micro, y_micro in zip(x.split([7, 3]), y.split([7, 3])):
        (F.mse_loss(model(x_micro), y_micro) / 2).backward()
    with pytest.raises(AssertionError):
        assert_all_close(gradients(model), expected)
    model.zero_grad()
    for x_micro, y_micro in zip(x.split([7, 3]), y.split([7, 3])):
        (F.mse_loss(model(x_micro), y_micro) * (x_micro.shape[0] / 10)).backward()
    assert_all_close(gradients(model), expected)


def test_stepping_every_k_micro_batches_matches_big_batch_training(device):
    k, steps = 4, 3
    big_model, accumulating_model = mlp(6, 5, device), mlp(6, 5, device)
    big_optimizer = optim.SGD(big_model.parameters(), lr=0.1, momentum=0.9)
    accumulating_optimizer = optim.SGD(accumulating_model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        x, y = classification_batch(16, 6, 5, device, seed=step)
        big_optimizer.zero_grad()
        F.cross_entropy(big_model(x), y).backward()
        big_optimizer.step()
        accumulating_optimizer.zero_grad()
        for x_micro, y_micro in zip(x.chunk(k), y.chunk(k)):
            (F.cross_entropy(accumulating_model(x_micro), y_micro) / k).backward()
        accumulating_optimizer.step()
    for (name, big), (_, accumulated) in zip(big_model.named_parameters(), accumulating_model.named_parameters()):
        np.testing.assert_allclose(
            accumulated.detach().cpu().numpy(), big.detach().cpu().numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )
