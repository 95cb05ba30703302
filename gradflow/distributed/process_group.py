"""The default process group: ``init_process_group`` and the questions PyTorch's ``torch.distributed`` answers.

Processes are started by MPI (``mpiexec -n 4 python train.py`` or ``gradflow run --nproc 4
train.py``); rank and world size come from MPI, never from a home-made rendezvous. The backend
is 'mpi' (CPU collectives through mpi4py) or 'nccl' (GPU collectives through CuPy's NCCL, with
NCCL's unique id shared over MPI); 'auto' picks 'nccl' when this process's device is CUDA.

After ``init_process_group`` an uncaught exception in any rank aborts the whole job
(``MPI_Abort``) once its traceback is printed, so the other ranks never wait for a dead peer.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from datetime import timedelta

from .. import cuda
from ..device import get_default_device
from ..errors import DistributedError
from .nccl_backend import NcclCommunicator, preload_nccl_wheel
from .transport import MpiTransport, load_mpi

# PyTorch's default (gloo and the collectives of init_process_group without NCCL).
DEFAULT_TIMEOUT = timedelta(minutes=30)
_BACKENDS = ("auto", "mpi", "nccl")


class ProcessGroup:
    """The ranks of the job and the backend that carries their collectives."""

    def __init__(self, backend: str, transport: MpiTransport, nccl=None):
        self.backend = backend
        self.transport = transport
        self.nccl = nccl

    def rank(self) -> int:
        return self.transport.rank

    def size(self) -> int:
        return self.transport.size


_group: ProcessGroup | None = None


def is_available() -> bool:
    """True when mpi4py is installed, so ``init_process_group`` can run (MPI is not started by asking)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available() -> bool:
    """True when the 'mpi' backend can be used (mpi4py is installed)."""
    return is_available()


def is_nccl_available() -> bool:
    """True when CuPy with NCCL is importable and a GPU is usable."""
    if not cuda.is_available():
        return False
    preload_nccl_wheel()
    try:
        from cupy.cuda import nccl  # optional third-party import: CuPy's NCCL bindings
    except ImportError:
        return False
    return bool(getattr(nccl, "available", False))


def is_initialized() -> bool:
    """True between ``init_process_group`` and ``destroy_process_group``."""
    return _group is not None


def init_process_group(backend: str | None = "auto", timeout=None, **_ignored) -> None:
    """Join the job's process group, as ``torch.distributed.init_process_group``.

    ``backend``: 'mpi' (CPU tensors, and CUDA tensors with a CUDA-aware MPI), 'nccl' (CUDA tensors;
    CPU tensors still go over MPI) or 'auto' (the default: 'nccl' when the default device is CUDA).
    ``timeout`` (a ``timedelta`` or seconds, default 30 minutes) bounds every collective's wait.
    PyTorch's rendezvous arguments (``init_method``, ``world_size``, ``rank``, ``store``) are
    accepted and ignored: MPI already knows the ranks. Sets ``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` in the environment when they are not set.
    """
    global _group
    if _group is not None:
        raise DistributedError(
            "init_process_group: the default process group is already initialized; call destroy_process_group() first"
        )
    backend = "auto" if backend is None else str(backend).lower()
    if backend not in _BACKENDS:
        raise DistributedError(f"init_process_group: unknown backend {backend!r}; use one of {', '.join(_BACKENDS)}")
    if backend == "auto":
        backend = "nccl" if get_default_device().type == "cuda" else "mpi"
    seconds = _timeout_seconds(timeout)
    mpi = load_mpi()
    transport = MpiTransport(mpi, seconds)
    _export_environment(transport)
    nccl = None
    if backend == "nccl":
        nccl = NcclCommunicator(transport)
    _group = ProcessGroup(backend, transport, nccl)
    _install_abort_on_exception(mpi)


def _timeout_seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not seconds > 0:
        raise DistributedError(f"init_process_group: timeout must be positive, got {timeout!r}")
    return seconds


def _export_environment(transport: MpiTransport) -> None:
    # Scripts written for torchrun read these; mpiexec sets its own names, not PyTorch's.
    values = {
        "RANK": transport.rank,
        "WORLD_SIZE": transport.size,
        "LOCAL_RANK": transport.local_rank,
        "LOCAL_WORLD_SIZE": transport.local_size,
    }
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


def _install_abort_on_exception(mpi) -> None:
    """Make an uncaught exception print its traceback, then abort every rank of the job."""
    if getattr(sys.excepthook, "_gradflow_aborts", False):
        return
    previous = sys.excepthook

    def abort_job(kind, value, trace):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, trace)
        else:
            rank = mpi.COMM_WORLD.Get_rank()
            lines = traceback.format_exception(kind, value, trace)
            sys.stderr.write(f"[rank {rank}] " + "".join(lines))
            sys.stderr.write(f"[rank {rank}] gradflow.distributed: aborting the job (MPI_Abort) after this error\n")
        sys.stderr.flush()
        sys.stdout.flush()
        mpi.COMM_WORLD.Abort(1)

    abort_job._gradflow_aborts = True
    sys.excepthook = abort_job


def destroy_process_group() -> None:
    """Leave the process group (MPI itself stays initialised until the process exits)."""
    global _group
    group = require_group("destroy_process_group")
    _group = None
    if group.nccl is not None:
        group.nccl.destroy()
    if group.transport.broken is None:
        group.transport.free()


def require_group(op: str) -> ProcessGroup:
    """The default group, or the typed error every collective raises before ``init_process_group``."""
    if _group is None:
        raise DistributedError(
            f"{op}: the default process group has not been initialized; call "
            "gradflow.distributed.init_process_group() first (and start the script with "
            "'mpiexec -n N python script.py' or 'gradflow run --nproc N script.py')"
        )
    return _group


def get_rank(group=None) -> int:
    """This process's rank (0 .. world size - 1)."""
    return require_group("get_rank").rank()


def get_world_size(group=None) -> int:
    """The number of processes in the job."""
    return require_group("get_world_size").size()


def get_backend(group=None) -> str:
    """'mpi' or 'nccl'."""
    return require_group("get_backend").backend


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """This process's rank among the processes on its machine (``LOCAL_RANK``), as in PyTorch."""
    if "LOCAL_RANK" in os.environ:
        return int(os.environ["LOCAL_RANK"])
    if _group is not None:
        return _group.transport.local_rank
    if fallback_rank is not None:
        return int(fallback_rank)
    raise DistributedError(
        "get_node_local_rank: LOCAL_RANK is not set; start the job with 'gradflow run' or call "
        "init_process_group() first, or pass fallback_rank="
    )
