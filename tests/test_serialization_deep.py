"""Deeply nested checkpoints: save and load walk the tree without recursion, up to MAX_DEPTH containers.

PyTorch (pickle) saves trees a few hundred levels deep; gradflow used to raise RecursionError
near 330. The JSON fallback that makes this possible must agree with the standard library.
"""

from __future__ import annotations

import collections
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import serialization
from gradflow.errors import CheckpointFormatError
from gradflow.serialization import _json, _tree

_KINDS = ("list", "tuple", "dict", "odict")


def _nest(depth: int, leaf):
    """``leaf`` inside ``depth`` containers, cycling through the four container kinds."""
    value = leaf
    for level in range(depth):
        kind = _KINDS[level % 4]
        if kind == "list":
            value = [value, level]
        elif kind == "tuple":
            value = (level, value)
        elif kind == "dict":
            value = {"k": value, 7: level}
        else:
            value = collections.OrderedDict([("o", value)])
    return value


def _unwrap(value, depth: int):
    """Walk back down (without recursion), checking every container's kind and siblings; returns the leaf."""
    for level in reversed(range(depth)):
        kind = _KINDS[level % 4]
        if kind == "list":
            assert type(value) is list and value[1] == level
            value = value[0]
        elif kind == "tuple":
            assert type(value) is tuple and value[0] == level
            value = value[1]
        elif kind == "dict":
            assert type(value) is dict and list(value) == ["k", 7] and value[7] == level
            value = value["k"]
        else:
            assert type(value) is collections.OrderedDict and list(value) == ["o"]
            value = value["o"]
    return value


@pytest.mark.parametrize("depth", [330, 1_000, 20_000])
def test_deep_trees_round_trip(tmp_path, depth):
    path = tmp_path / "deep.safetensors"
    gf.save({"deep": _nest(depth, gf.arange(3)), "flat": 1}, path)
    loaded = gf.load(path)
    assert loaded["flat"] == 1
    assert _unwrap(loaded["deep"], depth).tolist() == [0, 1, 2]


def test_deep_trees_match_pytorch_where_pytorch_can(tmp_path):
    torch = pytest.importorskip("torch")
    depth = 400  # pickle's C recursion stops near 500 levels of lists
    torch.save(_nest(depth, torch.arange(3)), tmp_path / "torch.pt")
    theirs = torch.load(tmp_path / "torch.pt")
    gf.save(_nest(depth, gf.arange(3)), tmp_path / "ours.safetensors")
    ours = gf.load(tmp_path / "ours.safetensors")
    assert _unwrap(ours, depth).tolist() == _unwrap(theirs, depth).tolist()


def test_the_depth_limit_is_a_clear_error_both_ways(tmp_path, monkeypatch):
    monkeypatch.setattr(_tree, "MAX_DEPTH", 50)
    with pytest.raises(ValueError, match=r"nested more than 50 containers deep.*flatten it"):
        gf.save(_nest(51, 0), tmp_path / "too_deep.safetensors")
    gf.save(_nest(50, 0), tmp_path / "ok.safetensors")
    assert _unwrap(gf.load(tmp_path / "ok.safetensors"), 50) == 0
    monkeypatch.setattr(_tree, "MAX_DEPTH", 49)  # a file deeper than this reader allows
    with pytest.raises(
        CheckpointFormatError, match=r"checkpoint: obj\[1\]\[0\]\['o'\].*\(9 more\).*nested more than 49"
    ):
        gf.load(tmp_path / "ok.safetensors")


def test_error_paths_of_deep_trees_are_shortened(tmp_path):
    with pytest.raises(TypeError) as caught:
        gf.save([_nest(100, object())], tmp_path / "bad.safetensors")
    message = str(caught.value)
    assert "more)..." in message and message.startswith("save: obj[0]") and len(message) < 800


def test_reference_cycles_are_still_refused(tmp_path):
    outer = {"a": [1, 2]}
    outer["a"].append({"back": outer})
    with pytest.raises(ValueError, match=r"obj\['a'\]\[2\]\['back'\] contains itself"):
        gf.save(outer, tmp_path / "cycle.safetensors")
    shared = [1]
    gf.save({"x": shared, "y": shared}, tmp_path / "shared.safetensors")  # shared, not cyclic: fine
    assert gf.load(tmp_path / "shared.safetensors") == {"x": [1], "y": [1]}


# -- the JSON fallback -------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(_json_values)
def test_the_fallback_writes_and_reads_what_json_does(value):
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    assert _json._dumps_iterative(value) == text
    assert _json._loads_iterative(text) == json.loads(text)
    spaced = json.dumps(value, indent=2)
    assert _json._loads_iterative(spaced) == json.loads(spaced)


@pytest.mark.parametrize(
    "text", ["", "[", "[1,]", '{"a":1,}', "[1 2]", "{1:2}", "[1]x", "nul", '["\\x"]', "01", '{"a"}', "-", "[-]"]
)
def test_the_fallback_refuses_what_json_refuses(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        _json._loads_iterative(text)


def test_the_fallback_is_used_only_past_the_recursion_limit(monkeypatch):
    calls = []
    real = _json._loads_iterative
    monkeypatch.setattr(_json, "_loads_iterative", lambda text: calls.append(1) or real(text))
    assert _json.loads("[[1]]") == [[1]] and calls == []
    deep = "[" * 10_000 + "]" * 10_000
    assert _json.loads(deep) is not None and calls == [1]
    assert serialization.MAX_DEPTH == 100_000
