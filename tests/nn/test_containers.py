"""Sequential and ModuleList editing and repr: insert, pop and the compressed repr of repeated modules, as PyTorch."""

from __future__ import annotations

import pytest

from gradflow import nn


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


@pytest.mark.parametrize("container", [nn.Sequential, lambda *m: nn.ModuleList(m)])
def test_insert_of_a_non_module_raises_and_leaves_the_container_intact(container):
    modules = (nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    holder = container(*modules)
    with pytest.raises(TypeError, match="not a Module"):
        holder.insert(1, 3)
    assert list(holder._modules.items()) == [("0", modules[0]), ("1", modules[1]), ("2", modules[2])]
