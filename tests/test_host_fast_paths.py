"""The host-side fast paths of a training step give the same numbers as the general paths.

Linear's first-order backward runs on arrays, and cross_entropy's 'mean' divides by the
target count when no target is ignored and there are no weights: both must match, bit for
bit, what the recorded Tensor ops (create_graph) and the summed weights give.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.ops._checks import index_bounds, out_of_range_value


def _linear_grads(device, bias_shape, create_graph):
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((5, 3)), device=device, requires_grad=True)
    weight = gf.tensor(rng.standard_normal((4, 3)), device=device, requires_grad=True)
    bias = gf.tensor(rng.standard_normal(bias_shape), device=device, requires_grad=True)
    out = gf.nn.functional.linear(x, weight, bias)
    grad_out = gf.tensor(rng.standard_normal((5, 4)), device=device)
    grads = gf.autograd.grad(out, (x, weight, bias), grad_out, create_graph=create_graph)
    return [g.detach().cpu().numpy() for g in grads]


@pytest.mark.parametrize("bias_shape", [(4,), ()])
def test_linear_first_order_backward_matches_the_recorded_backward_exactly(device, bias_shape):
    fast = _linear_grads(device, bias_shape, create_graph=False)
    recorded = _linear_grads(device, bias_shape, create_graph=True)
    for got, expected in zip(fast, recorded):
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def _cross_entropy(device, weight, ignore_index):
    rng = np.random.default_rng(1)
    logits = gf.tensor(rng.standard_normal((9, 5)).astype(np.float32), device=device, requires_grad=True)
    target = gf.tensor(np.array([0, 1, 2, 3, 4, 0, 1, 2, 3]), device=device)
    loss = gf.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    loss.backward()
    return loss.item(), logits.grad.cpu().numpy()


def test_cross_entropy_mean_by_target_count_matches_the_summed_weights_exactly(device):
    counted = _cross_entropy(device, None, -100)  # nothing ignored, no weights: divides by 9 on the host
    weighted = _cross_entropy(device, gf.ones(5, device=device), -100)  # sums the weights on the device
    in_range = _cross_entropy(device, None, 7)  # 7 > max target: still nothing ignored
    assert counted[0] == weighted[0] == in_range[0]
    np.testing.assert_array_equal(counted[1], weighted[1])
    np.testing.assert_array_equal(counted[1], in_range[1])


def test_cross_entropy_mean_still_drops_ignored_targets(device):
    loss, grad = _cross_entropy(device, None, 4)  # target 4 (one row) lies inside [min, max]: it is ignored
    assert np.all(grad[4] == 0) and np.any(grad[0] != 0)
    assert np.isfinite(loss)


def test_index_bounds_and_out_of_range_value_with_given_bounds():
    indices = np.array([[3, -2], [7, 0]])
    assert index_bounds(indices) == (-2, 7)
    assert all(type(value) is int for value in index_bounds(indices))
    assert out_of_range_value(indices, 0, 8, bounds=(-2, 7)) == -2
    assert out_of_range_value(indices, -2, 8, bounds=(-2, 7)) is None
    assert out_of_range_value(indices, 0, 8, exempt=-2, bounds=(-2, 7)) is None
    assert out_of_range_value(np.zeros(0, np.int64), 0, 1) is None
