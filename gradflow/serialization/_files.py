"""The file side of checkpoints: atomic writes, sweeping orphaned temporary files, and safe opening.

Atomic write: the payload goes to a temporary file beside the target, is flushed and
fsync'ed, renamed over the target with ``os.replace``, and the folder is fsync'ed. On any
Python-level failure the temporary file is removed and an existing target is left as it was.

Orphans: a writer killed mid-save (SIGKILL, power loss) cannot remove its temporary file.
Each temporary file is named ``.<target>.<host>-<pid>-<random>.tmp`` (``<host>`` is a short
hash of the host name) and its writer holds an exclusive ``flock`` on it from just after it
is created until after it is renamed. The next save to the same target removes a
temporary file of that target only when all three say that its writer is gone:

1. it was made on this host (a pid means nothing on another machine sharing the folder);
2. no process with its pid runs here (``os.kill(pid, 0)``), which also covers the instant
   between a live writer creating its file and locking it;
3. a non-blocking ``flock`` on it succeeds, so no live writer holds it (this covers a writer
   in another pid namespace, e.g. a container on the same kernel, whose pid means something
   else here).

A reused pid only delays the sweep (the orphan is kept while that pid lives), it never
removes a live writer's file. Files that are not regular files, symlinks, and temporary
files in the older ``.<target>.<random>.tmp`` form (no pid to check) are left alone. The
sweep is best effort: an error while sweeping never fails the save. Without ``fcntl``
(Windows) nothing is swept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import stat

try:  # POSIX only; without it the orphan sweep is skipped (see the module docstring).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from ..errors import CheckpointFormatError

_CHUNK_BYTES = 64 << 20
_TEMPORARY = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{12}\.tmp")


def host_tag() -> str:
    """Eight hex digits that name this host in temporary file names."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def write_all(handle, payload: bytes) -> None:
    """Write ``payload`` in chunks (large checkpoints need no second contiguous buffer per write)."""
    view = memoryview(payload)
    for start in range(0, len(view), _CHUNK_BYTES):
        handle.write(view[start : start + _CHUNK_BYTES])


def _create_temporary(directory: str, name: str) -> tuple[int, str]:
    """An exclusive new file beside the target, locked; 0o666 so the umask decides its mode, as open() would."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = os.path.join(directory, f".{name}.{host_tag()}-{os.getpid()}-{secrets.token_hex(6)}.tmp")
        try:
            descriptor = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pass  # a file system without flock: the pid check alone protects this file
        return descriptor, temporary


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists but is someone else's, or not a pid we can ask about: keep its file
    return True


def _remove_if_orphaned(path: str) -> None:
    """Remove ``path`` if no writer holds its lock; it is opened without following links or blocking."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # a live writer holds it (or this file system cannot tell): keep it
        # Still holding the lock: a writer cannot have taken this file over in between.
        if os.path.samestat(os.fstat(descriptor), os.lstat(path)):
            os.unlink(path)
    finally:
        os.close(descriptor)


def sweep_orphans(directory: str, name: str) -> list[str]:
    """Remove the temporary files of target ``name`` in ``directory`` left by dead writers; returns their paths."""
    if fcntl is None:
        return []
    prefix, here = f".{name}.", host_tag()
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    for entry in entries:
        found = _TEMPORARY.fullmatch(entry[len(prefix) :]) if entry.startswith(prefix) else None
        if found is None or found["host"] != here or _process_exists(int(found["pid"])):
            continue
        path = os.path.join(directory, entry)
        with contextlib.suppress(OSError):
            _remove_if_orphaned(path)
            if not os.path.lexists(path):
                removed.append(path)
    return removed


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; directories cannot be opened for fsync on Windows.
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: str, payload: bytes) -> None:
    """Replace ``path`` by a file holding ``payload``, atomically; sweeps the target's orphans first."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: the folder {directory!r} of {path!r} does not exist; create it first")
    name = os.path.basename(path)
    sweep_orphans(directory, name)  # first, so that the space they hold is free for this write
    descriptor, temporary = _create_temporary(directory, name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write_all(handle, payload)
            handle.flush()
            os.fsync(handle.fileno())
            if os.name == "posix":
                # Renamed while still open and locked, so no sweeper can take it between close and rename.
                os.replace(temporary, path)
        if os.name != "posix":
            os.replace(temporary, path)  # Windows cannot rename an open file
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def check_regular_file(path: str) -> os.stat_result:
    """The stat of ``path`` if it is a regular file (links followed); typed errors otherwise, before any open.

    Opening a FIFO for reading blocks until a writer appears, and a device or socket is no
    checkpoint, so ``load`` refuses them up front.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no checkpoint file at {path!r}") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"load: {path!r} is a folder, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointFormatError(
            f"load: {path!r} is a {_kind(info.st_mode)}, not a regular file; gradflow.load reads checkpoint files "
            "written by gradflow.save (copy the data to a file first)"
        )
    return info


def open_regular(path: str) -> tuple[int, str]:
    """A read-only descriptor of the regular file ``path`` and a path that names that same open file.

    The descriptor is opened without blocking (a FIFO swapped in after the stat cannot hang
    the open) and checked again with ``fstat``. On Linux the returned path is
    ``/proc/self/fd/N``, so the reader opens exactly the file that was checked; elsewhere it
    is ``path``. The caller closes the descriptor.
    """
    check_regular_file(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise CheckpointFormatError(
                f"load: {path!r} became a {_kind(mode)} while being opened; it is no checkpoint"
            )
    except BaseException:
        os.close(descriptor)
        raise
    alias = f"/proc/self/fd/{descriptor}"
    return descriptor, alias if os.path.exists(alias) else path


def _kind(mode: int) -> str:
    for test, word in (
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "folder"),
    ):
        if test(mode):
            return word
    return "special file"
