"""gradflow.save / gradflow.load: safetensors checkpoints, their round trip, errors and atomic writes."""

from __future__ import annotations

import collections
import json
import math
import os
import pathlib
import stat

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import serialization
from gradflow.errors import CheckpointFormatError, DeviceUnavailableError, DtypeError

save = getattr(gf, "save", serialization.save)
load = getattr(gf, "load", serialization.load)


def _same(a, b) -> bool:
    """Deep equality that also checks types, tensor bits, dtypes, devices and requires_grad."""
    if type(a) is not type(b):
        return False
    if isinstance(a, gf.Tensor):
        left, right = a.detach().cpu().numpy(), b.detach().cpu().numpy()
        same_bits = left.shape == right.shape and left.tobytes() == right.tobytes()
        return same_bits and a.dtype is b.dtype and a.device == b.device and a.requires_grad == b.requires_grad
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _round_trip(obj, tmp_path, **kwargs):
    path = tmp_path / "checkpoint.safetensors"
    save(obj, path)
    return load(path, **kwargs)


def _leftovers(folder) -> list:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


# -- round trips -----------------------------------------------------------------------------------


def test_every_leaf_kind_round_trips(tmp_path):
    leaves = [None, True, False, 0, -5, 2**70, 1.5, -0.0, math.inf, -math.inf, math.nan, 1e-310, "", "text ü ∂"]
    loaded = _round_trip(leaves, tmp_path)
    assert _same(loaded, leaves)


def test_nested_structures_keep_their_container_types_and_int_keys(tmp_path):
    obj = {
        "state": {0: {"step": 3, "exp_avg": gf.ones(2)}, 1: {"step": 3}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}],
        "1": "string key next to int key 1",
        1: "int key",
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "empty": [{}, [], ()],
    }
    loaded = _round_trip(obj, tmp_path)
    assert _same(loaded, obj)
    assert isinstance(loaded["param_groups"][0]["betas"], tuple) and 0 in loaded["state"] and "0" not in loaded["state"]
    assert loaded[1] == "int key" and loaded["1"] == "string key next to int key 1"
    assert type(loaded["ordered"]) is collections.OrderedDict and list(loaded["ordered"]) == ["b", "a"]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"])
def test_tensor_dtypes_round_trip_bit_exact(tmp_path, dtype):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((3, 4)) * 100
    if dtype.startswith("float"):
        values[0, :3] = [np.inf, -np.inf, np.nan]
    array = (values > 0) if dtype == "bool" else values.astype(dtype)
    original = gf.tensor(array)
    loaded = _round_trip({"t": original}, tmp_path)["t"]
    assert loaded.dtype is original.dtype and loaded.shape == (3, 4)
    assert loaded.numpy().tobytes() == array.tobytes()


def test_requires_grad_and_device_are_restored_and_the_data_is_owned(tmp_path):
    weight = gf.randn(2, 3, dtype=gf.float64, requires_grad=True)
    loaded = _round_trip({"w": weight, "frozen": weight.detach()}, tmp_path)
    assert loaded["w"].requires_grad and loaded["w"].is_leaf and not loaded["frozen"].requires_grad
    assert loaded["w"].device == "cpu" and loaded["w"].grad is None
    loaded["frozen"].numpy()[0, 0] = 123.0  # writable memory of its own
    assert weight[0, 0].item() != 123.0


def test_scalars_empty_and_non_contiguous_tensors_are_saved_by_value(tmp_path):
    base = gf.arange(24, dtype=gf.float32).reshape(4, 6)
    obj = {
        "scalar": gf.tensor(2.5),
        "empty": gf.zeros(0, 3),
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "expanded": gf.tensor([1.0, 2.0]).expand(3, 2),
        "grad_fn": base * 2,
    }
    loaded = _round_trip(obj, tmp_path)
    for key, value in obj.items():
        np.testing.assert_array_equal(loaded[key].numpy(), value.detach().numpy(), err_msg=key)
        assert loaded[key].shape == value.shape
    assert loaded["grad_fn"].grad_fn is None


def test_one_tensor_object_is_stored_once_and_views_separately(tmp_path):
    shared = gf.ones(3)
    path = tmp_path / "shared.safetensors"
    save({"a": shared, "b": [shared], "view": shared[1:]}, path)
    assert len(safetensors.numpy.load_file(path)) == 2
    loaded = load(path)
    assert loaded["a"] is loaded["b"][0] and loaded["view"].tolist() == [1.0, 1.0]


def test_numpy_scalars_come_back_as_python_numbers(tmp_path):
    loaded = _round_trip([np.float32(0.5), np.int64(7), np.bool_(True)], tmp_path)
    assert _same(loaded, [0.5, 7, True])


def test_paths_may_be_str_or_pathlike_and_the_file_is_plain_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    save({"w": gf.arange(3)}, str(path))
    assert load(pathlib.PurePath(path))["w"].tolist() == [0, 1, 2]
    arrays = safetensors.numpy.load_file(path)
    assert list(arrays) == ["t0"] and arrays["t0"].tolist() == [0, 1, 2]


leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | st.lists(st.floats(width=32), min_size=0, max_size=4).map(lambda v: gf.tensor(v, dtype=gf.float32))
)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=3) | st.integers(-5, 5), children, max_size=3)
    ),
    max_leaves=12,
)


# Every example overwrites the same file, which the atomic write handles.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees)
def test_random_trees_round_trip(tmp_path, tree):
    assert _same(_round_trip(tree, tmp_path), tree)


# -- what save refuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj, error, message",
    [
        ({"a": [1, {2, 3}]}, TypeError, r"obj\['a'\]\[1\] is a builtins.set"),
        ({"x": np.zeros(2)}, TypeError, r"obj\['x'\] is a numpy.ndarray.*gradflow.tensor"),
        ({(1, 2): 3}, TypeError, "key \\(1, 2\\) of type tuple"),
        ({True: 3}, TypeError, "key True of type bool"),
        ({"f": object()}, TypeError, "builtins.object"),
    ],
)
def test_unsupported_values_raise_before_any_file_is_written(tmp_path, obj, error, message):
    with pytest.raises(error, match=message):
        save(obj, tmp_path / "never.safetensors")
    assert os.listdir(tmp_path) == []


def test_reference_cycles_are_refused(tmp_path):
    cycle = {"a": []}
    cycle["a"].append(cycle)
    with pytest.raises(ValueError, match="reference cycle"):
        save(cycle, tmp_path / "cycle.safetensors")


def test_save_needs_a_path_and_an_existing_folder(tmp_path):
    with pytest.raises(TypeError, match="expected a file path"):
        with open(tmp_path / "handle", "wb") as handle:
            save({}, handle)
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        save({}, tmp_path / "missing" / "ckpt.safetensors")


# -- map_location --------------------------------------------------------------------------------


def _write_checkpoint(path, tree, tensors, arrays, version=1):
    """A file in gradflow's layout with a hand-written header (to fake other devices or corruption)."""
    header = {"format_version": version, "tree": tree, "tensors": tensors}
    safetensors.numpy.save_file(arrays, path, metadata={"gradflow": json.dumps(header)})


def _cuda_checkpoint(path):
    info = {"dtype": "float32", "shape": [2], "device": "cuda:0", "requires_grad": True}
    _write_checkpoint(path, {"tensor": "t0"}, {"t0": info}, {"t0": np.array([1.0, 2.0], dtype=np.float32)})


@pytest.mark.parametrize("location", [None, "cpu", gf.device("cpu"), {"cpu": "cpu"}, {"cuda:0": "cpu"}])
def test_map_location_forms_for_cpu_tensors(tmp_path, location):
    loaded = _round_trip({"w": gf.ones(2)}, tmp_path, map_location=location)
    assert loaded["w"].device == "cpu" and loaded["w"].tolist() == [1.0, 1.0]


@pytest.mark.skipif(gf.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_tensors_without_cuda_say_to_pass_map_location(tmp_path):
    path = tmp_path / "gpu.safetensors"
    _cuda_checkpoint(path)
    with pytest.raises(DeviceUnavailableError, match=r"saved on cuda:0.*map_location='cpu'"):
        load(path)
    for location in ("cpu", gf.device("cpu"), {"cuda:0": "cpu"}, {"cuda:0": gf.device("cpu")}):
        moved = load(path, map_location=location)
        assert moved.device == "cpu" and moved.requires_grad and moved.tolist() == [1.0, 2.0]


def test_map_location_of_another_kind_is_a_type_error(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save({"w": gf.ones(1)}, path)
    with pytest.raises(TypeError, match="map_location must be None, a device"):
        load(path, map_location=lambda storage, location: storage)
    with pytest.raises(TypeError, match="map_location dict must map"):
        load(path, map_location={"cpu": 0.5})


def test_tensors_return_to_the_device_they_were_saved_from(tmp_path, device):
    original = {"w": gf.randn(3, device=device), "b": gf.arange(2, device=device)}
    loaded = _round_trip(original, tmp_path)
    assert loaded["w"].device == device and _same(loaded, original)
    on_cpu = load(tmp_path / "checkpoint.safetensors", map_location="cpu")
    assert on_cpu["w"].device == "cpu" and on_cpu["w"].tolist() == original["w"].tolist()


# -- files gradflow did not write, or damaged ones ---------------------------------------------------

_INFO = {"dtype": "float32", "shape": [2], "device": "cpu", "requires_grad": False}
_ARRAYS = {"t0": np.zeros(2, dtype=np.float32)}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"definitely not a checkpoint"), "is not a safetensors file"),
        (lambda p: p.write_bytes(b""), "is not a safetensors file"),
        (lambda p: safetensors.numpy.save_file(_ARRAYS, p), "without gradflow's 'gradflow' metadata"),
        (lambda p: safetensors.numpy.save_file(_ARRAYS, p, metadata={"gradflow": "{not json"}), "not valid JSON"),
        (lambda p: safetensors.numpy.save_file(_ARRAYS, p, metadata={"gradflow": "[]"}), "lacks 'format_version'"),
        (lambda p: _write_checkpoint(p, {"tensor": "t9"}, {"t0": _INFO}, _ARRAYS), "refers to tensor 't9'"),
        (lambda p: _write_checkpoint(p, None, {"t0": _INFO}, _ARRAYS, version=2), "format version 2"),
        (lambda p: _write_checkpoint(p, None, {"t0": _INFO}, _ARRAYS, version=True), "format version True"),
        (
            lambda p: _write_checkpoint(p, None, {"t0": {**_INFO, "dtype": "float64"}}, _ARRAYS),
            "stored as float32 of shape \\[2\\], but the metadata says float64",
        ),
        (lambda p: _write_checkpoint(p, None, {"t0": {**_INFO, "shape": [1, 2]}}, _ARRAYS), "but the metadata says"),
        (lambda p: _write_checkpoint(p, None, {"t0": {**_INFO, "dtype": "bfloat16"}}, _ARRAYS), "unknown dtype"),
        (lambda p: _write_checkpoint(p, None, {"t0": {**_INFO, "device": "tpu"}}, _ARRAYS), "unknown device 'tpu'"),
        (lambda p: _write_checkpoint(p, None, {"t0": {"dtype": "float32"}}, _ARRAYS), "lacks dtype, shape"),
        (lambda p: _write_checkpoint(p, None, {}, _ARRAYS), "tensors \\['t0'\\] that the metadata does not"),
        (lambda p: _write_checkpoint(p, None, {"t0": _INFO, "t1": _INFO}, _ARRAYS), "tensor 't1' that the file"),
        (lambda p: _write_checkpoint(p, {"set": [1]}, {"t0": _INFO}, _ARRAYS), "obj is a malformed entry"),
        (lambda p: _write_checkpoint(p, {"dict": [[1.5, 2]]}, {"t0": _INFO}, _ARRAYS), "malformed key/value"),
        (
            lambda p: _write_checkpoint(
                p, None, {"t0": {**_INFO, "dtype": "int64", "requires_grad": True}}, {"t0": np.zeros(2, dtype=np.int64)}
            ),
            "requires_grad=True with dtype int64",
        ),
    ],
)
def test_foreign_or_damaged_files_raise_checkpoint_format_error(tmp_path, make, message):
    path = tmp_path / "bad.safetensors"
    make(path)
    with pytest.raises(CheckpointFormatError, match=message) as caught:
        load(path)
    assert str(path) in str(caught.value) and isinstance(caught.value, ValueError)


def test_truncated_file_is_a_format_error(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save({"w": gf.ones(100)}, path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointFormatError, match="not a safetensors file"):
        load(path)


def test_missing_file_and_folder_are_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load(tmp_path / "absent.safetensors")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load(tmp_path)


def test_bfloat16_has_no_array_to_save():
    # gradflow cannot create a bfloat16 tensor (no array type); the guard still names the dtype.
    with pytest.raises(DtypeError):
        gf.zeros(2, dtype=gf.bfloat16)


# -- atomic writes -----------------------------------------------------------------------------------


def _old_file(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save({"version": "old", "w": gf.zeros(4)}, path)
    return path, path.read_bytes()


def _half_write_then_fail(handle, payload):
    handle.write(payload[: len(payload) // 2])
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize(
    "target, replacement",
    [
        ("write_all", _half_write_then_fail),
        ("os.fsync", lambda descriptor: (_ for _ in ()).throw(OSError(5, "I/O error"))),
        ("os.replace", lambda source, target: (_ for _ in ()).throw(OSError(18, "cross-device link"))),
    ],
)
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, target, replacement):
    path, before = _old_file(tmp_path)
    if target.startswith("os."):
        monkeypatch.setattr(serialization.os, target[3:], replacement)
    else:
        monkeypatch.setattr(serialization._files, target, replacement)
    with pytest.raises(OSError):
        save({"version": "new", "w": gf.ones(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and load(path)["version"] == "old"
    assert _leftovers(tmp_path) == []


def test_an_interrupted_write_also_cleans_up(tmp_path, monkeypatch):
    path, before = _old_file(tmp_path)

    def interrupted(handle, payload):
        handle.write(payload[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization._files, "write_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save({"version": "new"}, path)
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_a_successful_write_replaces_fsyncs_and_respects_the_umask(tmp_path, monkeypatch):
    path, _ = _old_file(tmp_path)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        serialization.os, "fsync", lambda descriptor: synced.append(descriptor) or real_fsync(descriptor)
    )
    save({"version": "new"}, path)
    assert load(path) == {"version": "new"} and _leftovers(tmp_path) == []
    assert len(synced) == 2  # the file, then its folder
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
