"""Tensor hooks: register_hook (leaf and non-leaf, replacement, removal) and post-accumulate-grad hooks."""

from __future__ import annotations

import pytest

import gradflow as gf
from gradflow.errors import GraphError


def test_leaf_hook_sees_the_whole_gradient_once():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append(grad.tolist()))
    (x * 2 + x * 3).sum().backward()  # two paths reach x: the hook sees their sum, once
    assert seen == [[5.0, 5.0]]


def test_hook_can_replace_the_gradient():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda grad: grad * 10)
    (x * x).sum().backward()
    assert x.grad.tolist() == [20.0, 40.0]


def test_non_leaf_hook_changes_what_flows_upstream():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda grad: grad + 1)
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_hooks_run_in_registration_order_and_chain():
    x = gf.tensor([1.0], requires_grad=True)
    x.register_hook(lambda grad: grad + 1)
    x.register_hook(lambda grad: grad * 10)
    x.sum().backward()
    assert x.grad.tolist() == [20.0]


def test_handle_remove_takes_the_hook_out():
    x = gf.tensor([1.0], requires_grad=True)
    y = x * 1
    leaf_handle = x.register_hook(lambda grad: grad * 100)
    node_handle = y.register_hook(lambda grad: grad * 7)
    leaf_handle.remove()
    node_handle.remove()
    node_handle.remove()  # removing twice is harmless
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_hooks_run_for_autograd_grad_too():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda grad: grad * 2)
    (grad,) = gf.autograd.grad((x * x).sum(), x)
    assert grad.tolist() == [4.0, 8.0]
    assert x.grad is None


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(GraphError, match="doesn't require gradient"):
        gf.ones(2).register_hook(lambda grad: grad)


def test_post_accumulate_grad_hook_sees_the_accumulated_grad():
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda tensor: seen.append(tensor.grad.tolist()))
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    assert seen == [[2.0, 2.0], [5.0, 5.0]]
    handle.remove()
    (w * 3).sum().backward()
    assert len(seen) == 2


def test_post_accumulate_hook_can_update_the_parameter_during_backward():
    w = gf.tensor([1.0, 2.0], requires_grad=True)

    def sgd_step(tensor):
        with gf.no_grad():
            tensor.sub_(0.5 * tensor.grad)
        tensor.grad = None

    w.register_post_accumulate_grad_hook(sgd_step)
    (w * w).sum().backward()
    assert w.tolist() == [0.0, 0.0] and w.grad is None


def test_post_accumulate_hook_rejects_non_leaves():
    y = gf.ones(2, requires_grad=True) * 2
    with pytest.raises(GraphError, match="non-leaf"):
        y.register_post_accumulate_grad_hook(lambda tensor: None)


def test_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    x = gf.tensor([1.0, -2.0, 3.0], requires_grad=True)
    tx = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    for tensor in (x, tx):
        tensor.register_hook(lambda grad: grad.clamp(min=0))
        hidden = tensor * tensor
        hidden.register_hook(lambda grad: grad * 2)
        (hidden + tensor).sum().backward()
    assert x.grad.tolist() == tx.grad.tolist()
