"""Review of gradflow.nn core and layers against PyTorch: each test pins a behaviour that once differed."""

from __future__ import annotations

import copy

import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import InplaceError


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


def test_module_list_repr_compresses_repeated_modules_like_torch():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Linear(2, 3), nn.Linear(2, 3), nn.Linear(2, 3), nn.ReLU()])
    reference = torch.nn.ModuleList(
        [torch.nn.ReLU(), torch.nn.ReLU()] + [torch.nn.Linear(2, 3) for _ in range(3)] + [torch.nn.ReLU()]
    )
    assert repr(ours) == repr(reference)
    assert "(2-4): 3 x Linear(in_features=2, out_features=3, bias=True)" in repr(ours)
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_nested_module_list_repr_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.ModuleList([nn.Sequential(nn.Tanh(), nn.ReLU()) for _ in range(2)]))
    reference = torch.nn.Sequential(
        torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Tanh(), torch.nn.ReLU()) for _ in range(2)])
    )
    assert repr(ours) == repr(reference)


def test_sequential_insert_bounds_match_torch():
    torch = pytest.importorskip("torch")
    for index in (-5, -4, -3, -1, 0, 3, 4, 10):
        ours = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
        reference = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Tanh(), torch.nn.Sigmoid())
        try:
            reference.insert(index, torch.nn.Identity())
        except IndexError:
            with pytest.raises(IndexError, match="out of range"):
                ours.insert(index, nn.Identity())
            assert len(ours) == 3
            continue
        assert ours.insert(index, nn.Identity()) is ours
        assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in reference]
        assert list(ours._modules) == list(reference._modules)


@pytest.mark.parametrize("container", [nn.Sequential, lambda *m: nn.ModuleList(m)])
def test_pop_returns_the_module_and_renumbers(container):
    first, second, third = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    modules = container(first, second, third)
    assert modules.pop(1) is second
    assert list(modules._modules.items()) == [("0", first), ("1", third)]
    assert modules.pop(-1) is third
    assert list(modules) == [first]
    with pytest.raises(IndexError):
        modules.pop(3)


def test_module_list_pop_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleList([nn.Linear(i + 1, 1) for i in range(4)])
    reference = torch.nn.ModuleList([torch.nn.Linear(i + 1, 1) for i in range(4)])
    assert ours.pop(-2).in_features == reference.pop(-2).in_features == 3
    assert [m.in_features for m in ours] == [m.in_features for m in reference]
    assert list(ours._modules) == list(reference._modules)


def test_deepcopy_of_a_module_drops_parameter_grads_like_torch():
    torch = pytest.importorskip("torch")
    ours, reference = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours(gf.ones(1, 2)).sum().backward()
    reference(torch.ones(1, 2)).sum().backward()
    ours_copy, reference_copy = copy.deepcopy(ours), copy.deepcopy(reference)
    assert (ours_copy.weight.grad is None) == (reference_copy.weight.grad is None) is True
    assert ours_copy.weight.requires_grad and ours_copy.weight.tolist() == ours.weight.tolist()


def test_transformer_encoder_layers_start_without_grads():
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0)
    layer(gf.randn(3, 2, 4)).sum().backward()
    encoder = nn.TransformerEncoder(layer, num_layers=2)
    assert all(parameter.grad is None for parameter in encoder.parameters())


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


@pytest.mark.parametrize("container", [nn.Sequential, lambda *m: nn.ModuleList(m)])
def test_insert_of_a_non_module_raises_and_leaves_the_container_intact(container):
    modules = (nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    holder = container(*modules)
    with pytest.raises(TypeError, match="not a Module"):
        holder.insert(1, 3)
    assert list(holder._modules.items()) == [("0", modules[0]), ("1", modules[1]), ("2", modules[2])]
