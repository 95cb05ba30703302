"""In-place ops: values, version counters, graph rewiring, and the errors that keep gradients right."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import DtypeError, InplaceError, ShapeError


def test_inplace_arithmetic_changes_values_keeps_identity_and_bumps_the_version(device):
    x = gf.tensor([1.0, 2.0, 3.0], device=device)
    same = x
    x += 1
    x -= 0.5
    x *= 2
    x /= 3
    assert x is same and x._version == 4
    np.testing.assert_allclose(x.cpu().numpy(), (np.array([1.0, 2.0, 3.0]) + 0.5) * 2 / 3, rtol=1e-6)
    x.add_(gf.ones(3, device=device), alpha=2).sub_(1).mul_(2).div_(2).pow_(2).neg_()
    assert x._version == 10
    x.clamp_(-2.0, 1.0).zero_()
    assert x.tolist() == [0.0, 0.0, 0.0]
    x.fill_(3).exp_().log_()
    np.testing.assert_allclose(x.cpu().numpy(), [3.0] * 3, rtol=1e-6)


def test_inplace_on_a_leaf_that_requires_grad_raises():
    w = gf.ones(2, requires_grad=True)
    with pytest.raises(InplaceError, match=r"leaf tensor that requires grad \(shape \[2\]\).*no_grad"):
        w.add_(1)
    with pytest.raises(InplaceError):
        w[0] = 5.0


def test_inplace_on_a_leaf_under_no_grad_is_allowed():
    w = gf.ones(2, requires_grad=True)
    with gf.no_grad():
        w.sub_(gf.tensor([0.5, 0.25]))
    assert w.requires_grad and w.is_leaf and w.tolist() == [0.5, 0.75]


def test_inplace_op_on_a_non_leaf_rewires_the_graph():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    y = x * 2
    y.mul_(x)  # y = 2x^2
    y.add_(1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.array([1.0, 2.0]))
    assert y.grad_fn.name() == "AddBackward"


def test_inplace_with_an_operand_that_requires_grad_makes_a_plain_tensor_require_grad():
    buffer = gf.zeros(2)
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    buffer.add_(w * 3)
    assert buffer.requires_grad
    buffer.sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


def test_setitem_is_in_place_and_sends_gradients_to_target_and_value():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    value = gf.tensor(10.0, requires_grad=True)
    y = x * 1
    y[1] = value * 2
    assert y.tolist() == [1.0, 20.0, 3.0] and y._version == 1
    (y * gf.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 3.0]
    assert value.grad.item() == 4.0


def test_setitem_with_a_mask_and_without_grad():
    x = gf.arange(6, dtype=gf.float32)
    x[x > 2] = 0.0
    assert x.tolist() == [0.0, 1.0, 2.0, 0.0, 0.0, 0.0]
    x[gf.tensor([0, 1])] = gf.tensor([7.0, 8.0])
    assert x.tolist()[:2] == [7.0, 8.0]


def test_inplace_result_type_must_cast_to_the_tensor():
    x = gf.tensor([1, 2])
    with pytest.raises(DtypeError, match="result type float32 can't be cast to the tensor's dtype int64"):
        x.add_(0.5)
    y = gf.tensor([1.0, 2.0])
    y.add_(gf.tensor([1.0, 1.0], dtype=gf.float64))  # float64 -> float32 stays within the category
    assert y.dtype is gf.float32


def test_inplace_cannot_broadcast_the_tensor_itself():
    x = gf.zeros(3)
    with pytest.raises(ShapeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
        x.add_(gf.ones(2, 3))


def test_writing_into_an_expanded_view_raises():
    x = gf.ones(1, 3).expand(4, 3)
    with pytest.raises(InplaceError, match="expanded view"):
        x.mul_(2)


def test_inplace_change_through_a_view_is_seen_by_the_base_and_its_version():
    base = gf.zeros(2, 3)
    row = base[0]
    row.fill_(5.0)
    assert base.tolist()[0] == [5.0, 5.0, 5.0] and base._version == 1


def test_inplace_on_a_view_of_a_graph_tensor_is_refused():
    x = gf.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(InplaceError, match="view"):
        x[0].mul_(2)


def test_copy_casts_broadcasts_and_passes_gradients():
    target = gf.zeros(2, 3, dtype=gf.float64)
    source = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    target.copy_(source)
    assert target.tolist() == [[1.0, 2.0, 3.0]] * 2 and target.dtype is gf.float64
    target.sum().backward()
    assert source.grad.tolist() == [2.0, 2.0, 2.0]


def test_fill_keeps_infinities_out_of_the_gradient():
    x = gf.tensor([float("inf"), 1.0], requires_grad=True)
    y = x * 1
    y.fill_(2.0)
    (y * 3).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


def test_in_place_on_read_only_memory_says_so():
    frozen = np.ones(3, dtype=np.float32)
    frozen.flags.writeable = False
    t = gf.from_numpy(frozen)
    with pytest.raises(InplaceError, match="read-only"):
        t.add_(1)
