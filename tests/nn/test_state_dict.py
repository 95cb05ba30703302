"""load_state_dict: values that are not Tensors, and BatchNorm state dicts without num_batches_tracked (vs PyTorch)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import ShapeError, StateDictError


@pytest.mark.parametrize("value", [[1.0, 2.0, 3.0], None, "weights", 1.5, np.ones(3, dtype=np.float32)])
def test_a_value_that_is_not_a_tensor_names_its_key_and_type(value):
    layer = nn.BatchNorm1d(3)
    before = layer.weight.detach().numpy().copy()
    state = layer.state_dict()
    state["weight"] = value
    with pytest.raises(StateDictError) as caught:
        layer.load_state_dict(state)
    message = str(caught.value)
    assert '"weight"' in message and "expected a gradflow Tensor" in message
    assert type(value).__qualname__ in message and "size mismatch" not in message
    with pytest.raises(StateDictError):  # strict=False does not make a wrong value loadable, as in PyTorch
        layer.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(layer.weight.detach().numpy(), before)  # nothing was copied


def test_type_errors_and_missing_keys_are_reported_together():
    layer = nn.Linear(2, 2)
    with pytest.raises(StateDictError) as caught:
        layer.load_state_dict({"weight": [[1.0, 2.0], [3.0, 4.0]]})
    message = str(caught.value)
    assert 'Missing key(s) in state_dict: "bias"' in message and '"weight", expected a gradflow Tensor' in message


def test_a_wrong_shape_is_still_a_shape_error():
    layer = nn.Linear(2, 2)
    with pytest.raises(ShapeError, match=r"size mismatch for weight: copying a param with shape \[3, 2\]"):
        layer.load_state_dict({"weight": gf.zeros(3, 2), "bias": gf.zeros(2)})


def _trained_batch_norm(module_type=nn.BatchNorm1d, steps: int = 5):
    layer = module_type(3)
    for _ in range(steps):
        layer(gf.randn(4, 3) if module_type is nn.BatchNorm1d else gf.randn(2, 3, 2, 2))
    return layer


@pytest.mark.parametrize("module_type", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_a_missing_num_batches_tracked_keeps_the_current_count(module_type):
    source, target = _trained_batch_norm(module_type), _trained_batch_norm(module_type, steps=2)
    state = dict(source.state_dict())  # a plain dict has no _metadata: an old state dict, as PyTorch sees it
    del state["num_batches_tracked"]
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.num_batches_tracked.item() == 2  # unchanged
    np.testing.assert_array_equal(target.running_mean.numpy(), source.running_mean.numpy())
    assert "num_batches_tracked" not in state  # the caller's dict is not changed


def test_in_a_nested_model_and_with_a_version_1_entry():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    state = model.state_dict()
    assert state._metadata["1"] == {"version": 2} and state._metadata[""] == {"version": 1}
    del state["1.num_batches_tracked"]
    state._metadata["1"] = {"version": 1}
    assert model.load_state_dict(state).missing_keys == []


def test_a_version_2_state_dict_without_the_count_is_missing_a_key():
    layer = nn.BatchNorm1d(3)
    state = layer.state_dict()  # carries _metadata version 2, so the count should be there
    del state["num_batches_tracked"]
    with pytest.raises(StateDictError, match='Missing key.*"num_batches_tracked"'):
        layer.load_state_dict(state)
    assert layer.load_state_dict(state, strict=False).missing_keys == ["num_batches_tracked"]


def test_without_running_stats_nothing_is_filled_in():
    layer = nn.BatchNorm1d(3, track_running_stats=False)
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert layer.load_state_dict({"weight": gf.ones(3), "bias": gf.zeros(3)}) == ([], [])


def test_saved_and_loaded_state_dicts_have_no_metadata_and_still_load(tmp_path):
    source = _trained_batch_norm()
    state = source.state_dict()
    del state["num_batches_tracked"]
    gf.save(state, tmp_path / "bn.safetensors")
    loaded = gf.load(tmp_path / "bn.safetensors")
    assert not hasattr(loaded, "_metadata")
    target = nn.BatchNorm1d(3)
    target.load_state_dict(loaded)
    assert target.num_batches_tracked.item() == 0


@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("plain", [False, True])
def test_matches_pytorch(drop, plain):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    ours.num_batches_tracked.fill_(7)
    theirs.num_batches_tracked.fill_(7)
    our_state, their_state = ours.state_dict(), theirs.state_dict()
    assert dict(our_state._metadata) == dict(their_state._metadata)
    if plain:
        our_state, their_state = dict(our_state), dict(their_state)
    if drop:
        del our_state["num_batches_tracked"], their_state["num_batches_tracked"]
    outcomes = []
    for module, state in ((ours, our_state), (theirs, their_state)):
        try:
            result = module.load_state_dict(state)
            outcomes.append(("ok", list(result.missing_keys), int(module.num_batches_tracked.item())))
        except RuntimeError as error:  # StateDictError is a RuntimeError, like PyTorch's
            outcomes.append(("error", "num_batches_tracked" in str(error)))
    assert outcomes[0] == outcomes[1]


def test_non_tensor_value_is_refused_like_pytorch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="expected torch.Tensor"):
        theirs.load_state_dict(OrderedDict(weight=[[1.0, 2.0], [3.0, 4.0]], bias=torch.zeros(2)))
    with pytest.raises(RuntimeError, match="expected a gradflow Tensor"):
        nn.Linear(2, 2).load_state_dict(OrderedDict(weight=[[1.0, 2.0], [3.0, 4.0]], bias=gf.zeros(2)))
