"""Module, Parameter and the containers: registration, traversal, modes, moving, state dicts, hooks, repr."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import InplaceError, ShapeError, StateDictError


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(gf.ones(4))
        self.register_buffer("running", gf.zeros(4))
        self.register_buffer("scratch", gf.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale + self.running


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = Block()
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.head(self.act(self.first(x)))


def test_named_parameters_and_buffers_follow_registration_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["first.scale", "first.fc.weight", "first.fc.bias", "head.weight"]
    assert [n for n, _ in net.named_buffers()] == ["first.running", "first.scratch"]
    assert [n for n, _ in net.named_modules()] == ["", "first", "first.fc", "act", "head"]
    assert [n for n, _ in net.named_children()] == ["first", "act", "head"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_shared_parameter_is_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert len(seq.state_dict()) == 4  # state_dict names every path, as PyTorch does


def test_state_dict_holds_parameters_and_persistent_buffers_detached():
    net = Net()
    state = net.state_dict()
    assert list(state) == ["first.scale", "first.running", "first.fc.weight", "first.fc.bias", "head.weight"]
    assert not any(t.requires_grad for t in state.values())
    state["first.scale"][0] = 5.0  # detached views share memory, as in PyTorch
    assert net.first.scale[0].item() == 5.0


def test_load_state_dict_copies_values_and_keeps_objects():
    source, target = Net(), Net()
    weight_object = target.head.weight
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.head.weight is weight_object
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_load_state_dict_strict_names_missing_and_unexpected_keys():
    net = Net()
    state = net.state_dict()
    del state["head.weight"]
    state["extra"] = gf.zeros(1)
    with pytest.raises(StateDictError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert 'Missing key(s) in state_dict: "head.weight"' in message
    assert 'Unexpected key(s) in state_dict: "extra"' in message
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.weight"] and result.unexpected_keys == ["extra"]


def test_load_state_dict_size_mismatch_names_the_key():
    net = Net()
    state = net.state_dict()
    state["head.weight"] = gf.zeros(3, 3)
    with pytest.raises(ShapeError, match="size mismatch for head.weight"):
        net.load_state_dict(state)


def test_load_state_dict_casts_to_parameter_dtype():
    net = nn.Linear(2, 2)
    net.load_state_dict({"weight": gf.ones(2, 2, dtype=gf.float64), "bias": gf.zeros(2, dtype=gf.float64)})
    assert net.weight.dtype is gf.float32
    assert net.weight.sum().item() == 4.0


def test_to_dtype_keeps_parameter_objects_and_skips_integer_buffers():
    net = Net()
    net.first.register_buffer("count", gf.tensor(3))
    weight = net.head.weight
    net.double()
    assert net.head.weight is weight and weight.dtype is gf.float64
    assert net.first.running.dtype is gf.float64
    assert net.first.count.dtype is gf.int64
    out = net(gf.randn(2, 3, dtype=gf.float64))
    assert out.dtype is gf.float64


def test_to_rejects_integer_dtypes():
    with pytest.raises(TypeError, match="floating point"):
        Net().to(gf.int64)


def test_to_device_moves_parameters_buffers_and_grads(device):
    net = Net()
    net(gf.randn(2, 3)).sum().backward()
    optimizer_view = list(net.parameters())
    net.to(device)
    assert all(p.device is device for p in net.parameters())
    assert all(b.device is device for b in net.buffers())
    assert all(p.grad.device is device for p in net.parameters())
    assert list(net.parameters()) == optimizer_view


def test_train_eval_propagate():
    net = Net()
    assert net.training and net.first.fc.training
    net.eval()
    assert not net.training and not net.first.fc.training and not net.act.training
    net.train()
    assert net.head.training
    with pytest.raises(ValueError):
        net.train("yes")


def test_zero_grad_to_none_and_in_place():
    net = Net()
    net(gf.randn(2, 3)).sum().backward()
    grad = net.head.weight.grad
    net.zero_grad(set_to_none=False)
    assert net.head.weight.grad.abs().sum().item() == 0.0
    assert np.shares_memory(grad.numpy(), net.head.weight.grad.numpy())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_toggles_every_parameter():
    net = Net().requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_forward_hooks_can_replace_and_be_removed():
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda module, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda module, args, out: calls.append(out.shape) or out + 1)
    out = layer(gf.randn(3, 2))
    np.testing.assert_allclose(out.detach().numpy(), (layer.bias + 1).detach().numpy()[None].repeat(3, 0))
    assert calls == [(3, 2)]
    pre.remove()
    post.remove()
    x = gf.randn(3, 2)
    np.testing.assert_allclose(layer(x).detach().numpy(), (x @ layer.weight.t() + layer.bias).detach().numpy())


def test_setattr_rules():
    net = Net()
    with pytest.raises(TypeError, match="parameter 'scale'"):
        net.first.scale = gf.ones(4)
    net.first.scale = None
    assert "first.scale" not in dict(net.named_parameters())
    net.first.running = gf.ones(4)
    assert net.state_dict()["first.running"].sum().item() == 4.0
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing  # noqa: B018
    del net.head
    assert "head" not in dict(net.named_children())


def test_register_before_init_and_bad_names_raise():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gf.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()
    with pytest.raises(KeyError):
        nn.Module().register_buffer("a.b", gf.ones(1))


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(gf.ones(1))


def test_apply_visits_children_first_then_self():
    seen = []
    Net().apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Block", "ReLU", "Linear", "Net"]


def test_get_submodule_and_parameter():
    net = Net()
    assert net.get_submodule("first.fc") is net.first.fc
    assert net.get_parameter("first.fc.bias") is net.first.fc.bias
    with pytest.raises(AttributeError, match="nope"):
        net.get_submodule("first.nope")


def test_sequential_indexing_slicing_and_mutation():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(seq[-1], nn.Linear) and seq[-1].out_features == 1
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1"]
    seq.append(nn.Tanh())
    seq.insert(0, nn.Identity())
    assert [type(m).__name__ for m in seq] == ["Identity", "Linear", "Linear", "Tanh"]
    with pytest.raises(IndexError):
        seq[10]  # noqa: B018


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers += [nn.ReLU()]
    assert len(layers) == 4 and len(list(layers.parameters())) == 6
    assert isinstance(layers[1:3], nn.ModuleList)
    table = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    table["c"] = nn.Tanh()
    assert list(table.keys()) == ["a", "b", "c"] and "b" in table
    assert isinstance(table.pop("b"), nn.ReLU) and len(table) == 2
    holder = nn.Module()
    holder.table = table
    assert [n for n, _ in holder.named_parameters()] == ["table.a.weight", "table.a.bias"]


def test_parameter_behaviour():
    p = nn.Parameter(gf.ones(2, 3))
    assert p.requires_grad and p.is_leaf
    assert type(p * 2) is gf.Tensor
    assert repr(p).startswith("Parameter containing:\ntensor(")
    frozen = nn.Parameter(gf.ones(2), requires_grad=False)
    assert not frozen.requires_grad
    with pytest.raises(TypeError):
        nn.Parameter([1.0, 2.0])


def test_repr_matches_pytorch_layout():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 1, bias=False), nn.Sigmoid()))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(2, 8),
        torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Linear(8, 1, bias=False), torch.nn.Sigmoid()),
    )
    assert repr(ours) == repr(theirs)


class FrozenNorm(nn.Module):
    """A module that refuses training mode, the way users freeze BatchNorm layers by overriding train()."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Dropout(0.5)

    def train(self, mode: bool = True):
        return super().train(False)


def test_train_calls_each_childs_own_train_method():
    model = nn.Sequential(nn.Linear(2, 2), FrozenNorm(), nn.ModuleList([FrozenNorm()]))
    model.eval()
    model.train()
    # PyTorch's train() recurses through children's train(), so the override keeps its subtree frozen.
    assert model.training and model[0].training and model[2].training
    assert not model[1].training and not model[1].inner.training
    assert not model[2][0].training and not model[2][0].inner.training


def test_train_override_matches_torch():
    torch = pytest.importorskip("torch")

    class TorchFrozen(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Dropout(0.5)

        def train(self, mode: bool = True):
            return super().train(False)

    reference = torch.nn.Sequential(torch.nn.ReLU(), TorchFrozen()).train()
    ours = nn.Sequential(nn.ReLU(), FrozenNorm()).train()
    assert [m.training for m in ours.modules()] == [m.training for m in reference.modules()]


def test_zero_grad_without_none_keeps_the_grad_tensor_and_bumps_its_version():
    layer = nn.Linear(3, 2)
    layer(gf.ones(4, 3)).sum().backward()
    grad = layer.weight.grad
    version = grad._version
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad is grad
    assert grad.tolist() == [[0.0] * 3] * 2
    assert grad._version > version


def test_zero_grad_in_place_invalidates_a_graph_that_saved_the_grad():
    # A gradient penalty saves .grad (create_graph=True); zeroing it in place must not silently
    # turn the penalty's gradient into zeros: PyTorch raises, and so must we.
    layer = nn.Linear(2, 1)
    layer(gf.ones(3, 2)).pow(3).sum().backward(create_graph=True)
    penalty = (layer.weight.grad**2).sum()
    layer.zero_grad(set_to_none=False)
    with pytest.raises(InplaceError):
        penalty.backward()


def test_deepcopy_of_a_module_drops_parameter_grads_like_torch():
    torch = pytest.importorskip("torch")
    ours, reference = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours(gf.ones(1, 2)).sum().backward()
    reference(torch.ones(1, 2)).sum().backward()
    ours_copy, reference_copy = copy.deepcopy(ours), copy.deepcopy(reference)
    assert (ours_copy.weight.grad is None) == (reference_copy.weight.grad is None) is True
    assert ours_copy.weight.requires_grad and ours_copy.weight.tolist() == ours.weight.tolist()


def test_repr_shows_constructor_values_as_given_like_torch():
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.Dropout(p=0), torch.nn.Dropout(p=0)),
        (nn.Dropout(1), torch.nn.Dropout(1)),
        (nn.Unflatten(1, [2, 2]), torch.nn.Unflatten(1, [2, 2])),
        (nn.Unflatten(-1, (3, -1)), torch.nn.Unflatten(-1, (3, -1))),
    ]
    for ours, reference in pairs:
        assert repr(ours) == repr(reference)
    assert nn.Unflatten(1, [2, 2])(gf.ones(3, 4)).shape == (3, 2, 2)
    assert nn.Dropout(p=0)(gf.ones(3)).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError, match="unflattened_size"):
        nn.Unflatten(1, 4)
