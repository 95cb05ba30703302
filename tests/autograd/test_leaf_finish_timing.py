"""backward() finishes a leaf (hooks, .grad, post-accumulate hooks) as soon as its last consumer has run.

PyTorch's AccumulateGrad runs mid-backward; DistributedDataParallel relies on it to start reducing
the last layer's gradients while the first layers' are still being computed.
"""

import gradflow as gf


def test_post_accumulate_hook_of_a_late_layer_runs_before_early_layers_have_gradients():
    first = gf.randn(4, 4, requires_grad=True)
    second = gf.randn(4, 4, requires_grad=True)
    x = gf.randn(3, 4)
    seen = []
    second.register_post_accumulate_grad_hook(lambda tensor: seen.append(("second", first.grad is None)))
    first.register_post_accumulate_grad_hook(lambda tensor: seen.append(("first", second.grad is None)))
    hidden = x @ first
    hidden.register_hook(lambda gradient: seen.append(("hidden's gradient", None)))
    (hidden.relu() @ second).sum().backward()
    # second is finished before the replay reaches the first layer's nodes.
    assert seen == [("second", True), ("hidden's gradient", None), ("first", False)]


def test_a_leaf_used_by_several_nodes_is_finished_once_with_its_whole_gradient():
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    sums = []
    w.register_post_accumulate_grad_hook(lambda tensor: sums.append(tensor.grad.tolist()))
    (w * 3).sum().add((w * w).sum()).backward()
    assert sums == [[5.0, 7.0]]


def test_a_leaf_that_is_a_root_still_gets_its_gradient():
    w = gf.tensor(2.0, requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda tensor: calls.append(tensor.grad.item()))
    w.backward()
    assert calls == [1.0]
