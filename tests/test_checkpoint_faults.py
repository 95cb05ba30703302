"""Checkpoints under faults: writers killed mid-save, and damaged or hostile files given to load.

- SIGKILL during save (seeded delays, a child process saving ~24 MB in a loop) leaves the
  previous file loadable and equal, and the next save leaves no temporary files behind.
- Loading truncations, bit flips and hand-made hostile headers raises only
  CheckpointFormatError or an OSError, each within a second.
- Non-regular files (FIFO, device, socket) are refused before they are opened.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import safetensors.numpy

import gradflow as gf
from gradflow.errors import CheckpointFormatError

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL, FIFOs and flock are POSIX")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELEMENTS = 6_000_000  # 24 MB of float32 per checkpoint
LOAD_SECONDS = 1.0

_SAVER = """
import sys, gradflow as gf
path, count = sys.argv[1], int(sys.argv[2])
step = 0
while True:
    step += 1
    gf.save({"step": step, "w": gf.full((count,), float(step)), "meta": {"tag": [step, str(step)]}}, path)
    print(step, flush=True)
"""

_STALLER = """
import sys, time, gradflow as gf
from gradflow.serialization import _files
def stall(handle, payload):
    handle.write(payload[: len(payload) // 2])
    handle.flush()
    print("stalled", flush=True)
    time.sleep(120)
_files.write_all = stall
gf.save({"step": "new", "w": gf.zeros(int(sys.argv[2]))}, sys.argv[1])
"""


def _child(code: str, path, count: int = ELEMENTS) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path), str(count)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )


def _temporaries(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def _check_saved_step(path, last_reported: int) -> None:
    loaded = gf.load(path)
    step = loaded["step"]
    # The rename may have happened just before the kill, after the file was complete but before the print.
    assert step in (last_reported, last_reported + 1)
    assert loaded["meta"] == {"tag": [step, str(step)]}
    w = loaded["w"].numpy()
    assert w.shape == (ELEMENTS,) and float(w.min()) == float(w.max()) == float(step)


def test_sigkill_at_seeded_moments_keeps_the_previous_file_and_the_next_save_sweeps(tmp_path):
    delays = [random.Random(seed).uniform(0.0, 0.6) for seed in range(4)]
    folders = [tmp_path / f"run{seed}" for seed in range(len(delays))]
    children = []
    for folder in folders:
        folder.mkdir()
        children.append(_child(_SAVER, folder / "ckpt.safetensors"))
    try:
        for child in children:  # every child has finished one save
            assert child.stdout.readline().strip() == "1"
        start = time.monotonic()
        for delay, child in sorted(zip(delays, children), key=lambda pair: pair[0]):
            time.sleep(max(0.0, start + delay - time.monotonic()))
            child.send_signal(signal.SIGKILL)
    finally:
        for child in children:
            child.kill()
            child.wait()
    for folder, child in zip(folders, children):
        reported = [int(line) for line in child.stdout.read().split()]
        child.stdout.close()
        _check_saved_step(folder / "ckpt.safetensors", reported[-1] if reported else 1)
        gf.save({"step": 0}, folder / "ckpt.safetensors")
        assert _temporaries(folder) == [] and gf.load(folder / "ckpt.safetensors") == {"step": 0}


def test_a_live_writer_keeps_its_temporary_file_and_a_killed_ones_is_swept(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    gf.save({"step": "old"}, path)
    child = _child(_STALLER, path, 1_000_000)
    try:
        assert child.stdout.readline().strip() == "stalled"
        (temporary,) = _temporaries(tmp_path)
        assert f"-{child.pid}-" in temporary
        gf.save({"step": "other writer"}, path)  # another process saves while the child is mid-write
        assert _temporaries(tmp_path) == [temporary]  # never another live writer's file
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert _temporaries(tmp_path) == [temporary]  # the orphan
    assert gf.load(path) == {"step": "other writer"}
    gf.save({"step": "next"}, path)
    assert _temporaries(tmp_path) == [] and gf.load(path) == {"step": "next"}


# -- non-regular files -------------------------------------------------------------------------------


def _refused(path, match: str) -> None:
    def timed_out(signum, frame):
        raise TimeoutError(f"gf.load({path!r}) blocked")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(5)
    try:
        with pytest.raises(CheckpointFormatError, match=match):
            gf.load(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_a_link_to_one_a_device_and_a_socket_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _refused(fifo, "is a FIFO")
    os.symlink(fifo, tmp_path / "link")
    _refused(tmp_path / "link", "is a FIFO")
    if os.path.exists("/dev/null"):
        _refused("/dev/null", "character device")
    folder = tempfile.mkdtemp()  # short: socket paths are limited to ~100 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(os.path.join(folder, "s"))
        _refused(os.path.join(folder, "s"), "is a socket")
    os.unlink(os.path.join(folder, "s"))
    os.rmdir(folder)
    with pytest.raises(IsADirectoryError):
        gf.load(tmp_path)


# -- load fuzz ---------------------------------------------------------------------------------------


def _valid_checkpoint(tmp_path) -> bytes:
    obj = {
        "model": {"w": gf.arange(12, dtype=gf.float32).reshape(3, 4), "b": gf.zeros(3, dtype=gf.float64)},
        "steps": (1, 2.5, None, "x", True),
        "ids": gf.tensor([1, 2, 3], dtype=gf.int64),
        "mask": gf.tensor([True, False]),
    }
    gf.save(obj, tmp_path / "valid.safetensors")
    return (tmp_path / "valid.safetensors").read_bytes()


def _load_bytes(tmp_path, data: bytes, allowed=(CheckpointFormatError, OSError)):
    """Load ``data`` from a file: what it holds, or None if it raised one of ``allowed`` (others escape).

    Each load must finish within LOAD_SECONDS.
    """
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        return gf.load(path)
    except allowed:
        return None
    finally:
        assert time.perf_counter() - start < LOAD_SECONDS


def test_every_truncation_is_refused(tmp_path):
    data = _valid_checkpoint(tmp_path)
    lengths = sorted(set(range(0, 80)) | set(random.Random(0).sample(range(len(data)), 60)))
    for length in lengths:
        assert _load_bytes(tmp_path, data[:length]) is None, length


def test_bit_flips_load_or_raise_a_format_error(tmp_path):
    data = _valid_checkpoint(tmp_path)
    rng = random.Random(1)
    loaded = 0
    for _ in range(400):
        flipped = bytearray(data)
        position = rng.randrange(len(data))
        flipped[position] ^= 1 << rng.randrange(8)
        loaded += _load_bytes(tmp_path, bytes(flipped)) is not None
    assert loaded > 0  # flips in the tensor bytes still load (there is no checksum), as with PyTorch


def _raw(header, data: bytes = b"", length: int | None = None) -> bytes:
    """A safetensors file by hand: 8-byte little-endian header length, header, data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _with_metadata(metadata, arrays=None) -> bytes:
    arrays = {"t0": np.zeros(2, dtype=np.float32)} if arrays is None else arrays
    return safetensors.numpy.save(arrays, metadata={"gradflow": metadata})


_INFO = {"dtype": "float32", "shape": [2], "device": "cpu", "requires_grad": False}


def _meta(tree={"tensor": "t0"}, info=_INFO, version=1) -> str:  # noqa: B006 - read only
    return json.dumps({"format_version": version, "tree": tree, "tensors": {"t0": info}})


_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
_HOSTILE = {
    "empty": b"",
    "header length past the end": _raw({"t0": _ENTRY}, bytes(8), length=10_000),
    "huge header length": _raw({"t0": _ENTRY}, bytes(8), length=2**63),
    "header length zero": _raw(b"", bytes(8), length=0),
    "offsets past the data": _raw({"t0": {**_ENTRY, "data_offsets": [0, 1 << 40]}}, bytes(8)),
    "offsets reversed": _raw({"t0": {**_ENTRY, "data_offsets": [8, 0]}}, bytes(8)),
    "offsets and shape disagree": _raw({"t0": {**_ENTRY, "shape": [3]}}, bytes(8)),
    "overlapping tensors": _raw({"t0": _ENTRY, "t1": _ENTRY}, bytes(8)),
    "negative shape": _raw({"t0": {**_ENTRY, "shape": [-2]}}, bytes(8)),
    "huge shape": _raw({"t0": {**_ENTRY, "shape": [2**62, 2**62]}}, bytes(8)),
    "unknown stored dtype": _raw({"t0": {**_ENTRY, "dtype": "X9"}}, bytes(8)),
    "deep header JSON": _raw(b'{"__metadata__":' + b'{"a":' * 30_000 + b"1" + b"}" * 30_001),
    "non-UTF8 header": _raw(b'{"t0": "\xff\xfe"}'),
    "header not an object": _raw([1, 2, 3]),
    "metadata not strings": _raw({"__metadata__": {"gradflow": {"x": 1}}}),
    "no gradflow metadata": _with_metadata("{}").replace(b'"gradflow"', b'"gradflox"'),
    "metadata not JSON": _with_metadata("{not json"),
    "metadata deep JSON": _with_metadata("[" * 30_000 + "]" * 30_000),
    "metadata huge integer": _with_metadata("9" * 5000),
    "metadata a list": _with_metadata("[]"),
    "format version a list": _with_metadata(_meta(version=[1])),
    "format version huge": _with_metadata(_meta(version=10**300)),
    "metadata dtype i4,(": _with_metadata(_meta(info={**_INFO, "dtype": "i4,("})),
    "metadata dtype object": _with_metadata(_meta(info={**_INFO, "dtype": "object"})),
    "metadata dtype a list": _with_metadata(_meta(info={**_INFO, "dtype": ["float32"]})),
    "metadata dtype disagrees": _with_metadata(_meta(info={**_INFO, "dtype": "float64"})),
    "metadata negative shape": _with_metadata(_meta(info={**_INFO, "shape": [-2]})),
    "metadata shape of floats": _with_metadata(_meta(info={**_INFO, "shape": [2.0]})),
    "metadata shape a string": _with_metadata(_meta(info={**_INFO, "shape": "2"})),
    "metadata unknown device": _with_metadata(_meta(info={**_INFO, "device": "cuda:" + "9" * 100})),
    "metadata tensors a list": _with_metadata(json.dumps({"format_version": 1, "tree": None, "tensors": []})),
    "tree refers to a missing tensor": _with_metadata(_meta(tree={"tensor": "t9"})),
    "tree deeply nested lists": _with_metadata(_meta(tree=None).replace("null", "[" * 30_000 + "]" * 30_000)),
    "tree unknown tag": _with_metadata(_meta(tree={"set": [1]})),
    "tree bad key": _with_metadata(_meta(tree={"dict": [[[1], 2]]})),
    "tree bad float": _with_metadata(_meta(tree={"float": ["nan"]})),
}


@pytest.mark.parametrize("name", list(_HOSTILE))
def test_hostile_files_raise_format_errors_quickly(tmp_path, name):
    assert _load_bytes(tmp_path, _HOSTILE[name], allowed=CheckpointFormatError) is None


def test_the_metadata_dtype_that_escaped_as_a_syntax_error():
    # NumPy parses "i4,(" as a structured dtype and raises SyntaxError; load must not ask NumPy.
    with pytest.raises(SyntaxError):
        np.dtype("i4,(")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.safetensors")
        with open(path, "wb") as handle:
            handle.write(_HOSTILE["metadata dtype i4,("])
        with pytest.raises(CheckpointFormatError, match=r"unknown dtype 'i4,\('"):
            gf.load(path)
