"""The orphan sweep: a save removes temporary files that dead writers left for the same target, and nothing else.

See ``gradflow/serialization/_files.py`` for the scheme (host and pid in the name, flock held while writing).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

import gradflow as gf
from gradflow.serialization import _files

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sweep needs flock (POSIX)")


@pytest.fixture(scope="module")
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _orphan(folder, target: str, pid: int, host: str | None = None, token: str = "0123456789ab"):
    path = folder / f".{target}.{host or _files.host_tag()}-{pid}-{token}.tmp"
    path.write_bytes(b"half a checkpoint")
    return path


def test_orphans_of_dead_writers_are_removed_by_the_next_save(tmp_path, dead_pid):
    orphans = [_orphan(tmp_path, "ckpt.safetensors", dead_pid, token=f"{i:012x}") for i in range(3)]
    gf.save({"a": 1}, tmp_path / "ckpt.safetensors")
    assert not any(path.exists() for path in orphans)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"]


def test_only_the_same_target_is_swept(tmp_path, dead_pid):
    others = [
        _orphan(tmp_path, "other.safetensors", dead_pid),
        _orphan(tmp_path, "ckpt.safetensors.bak", dead_pid),  # the target's name is a prefix of this one's
        _orphan(tmp_path, "ckpt", dead_pid),
    ]
    gf.save({"a": 1}, tmp_path / "ckpt.safetensors")
    assert all(path.exists() for path in others)


def test_a_live_pid_another_host_and_old_names_are_kept(tmp_path, dead_pid):
    kept = [
        _orphan(tmp_path, "ckpt.safetensors", os.getpid()),  # a live writer (here: this process)
        _orphan(tmp_path, "ckpt.safetensors", dead_pid, host="00000000" if _files.host_tag() != "00000000" else "1"),
        tmp_path / ".ckpt.safetensors.0123456789ab.tmp",  # the older name, with no pid to check
    ]
    kept[-1].write_bytes(b"old style")
    gf.save({"a": 1}, tmp_path / "ckpt.safetensors")
    assert all(path.exists() for path in kept)


def test_a_file_locked_by_a_writer_in_another_pid_namespace_is_kept(tmp_path, dead_pid):
    # The pid in the name is dead here, but someone holds the lock: a writer whose pid means something else.
    orphan = _orphan(tmp_path, "ckpt.safetensors", dead_pid)
    descriptor = os.open(orphan, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        gf.save({"a": 1}, tmp_path / "ckpt.safetensors")
        assert orphan.exists()
    finally:
        os.close(descriptor)
    assert _files.sweep_orphans(str(tmp_path), "ckpt.safetensors") == [str(orphan)]
    assert not orphan.exists()


def test_links_fifos_and_folders_named_like_orphans_are_left_alone(tmp_path, dead_pid):
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    name = f".ckpt.safetensors.{_files.host_tag()}-{dead_pid}-"
    os.symlink(target, tmp_path / f"{name}00000000000a.tmp")
    os.mkfifo(tmp_path / f"{name}00000000000b.tmp")
    os.mkdir(tmp_path / f"{name}00000000000c.tmp")
    gf.save({"a": 1}, tmp_path / "ckpt.safetensors")  # must not block on the FIFO either
    assert len(os.listdir(tmp_path)) == 5 and target.read_bytes() == b"keep me"


def test_the_writer_holds_its_lock_until_the_rename(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def checking_replace(source, destination):
        probe = os.open(source, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file description: refused
            seen.append(os.path.basename(source))
        finally:
            os.close(probe)
        return real_replace(source, destination)

    monkeypatch.setattr(_files.os, "replace", checking_replace)
    gf.save({"a": 1}, tmp_path / "ckpt.safetensors")
    assert len(seen) == 1 and f"-{os.getpid()}-" in seen[0]


def test_a_sweep_that_fails_does_not_fail_the_save(tmp_path, dead_pid, monkeypatch):
    _orphan(tmp_path, "ckpt.safetensors", dead_pid)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_files, "_remove_if_orphaned", refuse)
    gf.save({"a": 1}, tmp_path / "ckpt.safetensors")
    assert gf.load(tmp_path / "ckpt.safetensors") == {"a": 1}
