"""Helpers for the multi-process tests: start ``mpiexec -n N python worker.py`` and read what the ranks report.

The workers print one line per check, ``CHECK <rank> <name> ok`` or ``CHECK <rank> <name> FAIL <why>``;
``run_checks`` runs a worker once per test session and each test looks up its checks.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

# The workers are scripts that mpiexec runs (they read their arguments and join MPI at import):
# pytest's --doctest-modules must not import them.
collect_ignore = ["workers"]

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"


def mpi_or_skip() -> str:
    """The mpiexec to use, or skip the test when the 'distributed' extra is not installed."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed: pip install 'gradflow[distributed]'")
    from gradflow.distributed.launch import find_mpiexec
    from gradflow.errors import MissingDependencyError

    try:
        return find_mpiexec()
    except MissingDependencyError as error:
        pytest.skip(str(error))


def environment() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    # One BLAS thread per rank: two ranks share this machine's cores.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(name, None)
    return env


def run_mpi(worker: str, nproc: int = 2, args=(), timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``workers/<worker>`` on ``nproc`` ranks through gradflow's launcher command; (result, seconds)."""
    mpiexec = mpi_or_skip()
    from gradflow.distributed.launch import mpiexec_command

    command = mpiexec_command(nproc, [str(WORKERS / worker), *map(str, args)], mpiexec=mpiexec)
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment(), capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - start


def parse_checks(output: str) -> dict:
    """{(rank, name): (ok, detail)} from the CHECK reports in a worker's output.

    Two ranks share one stdout, so a report may not start a line: find them anywhere.
    """
    checks = {}
    for rank, name, status, detail in _CHECK.findall(output):
        checks[(int(rank), name)] = (status == "ok", detail.strip())
    return checks


_CHECK = re.compile(r"CHECK (\d+) (\w+) (ok|FAIL)(.*?)(?=CHECK \d+ \w+ (?:ok|FAIL)|\n|$)")


class CheckRun:
    """One worker run whose checks several tests read."""

    def __init__(self, worker: str, nproc: int):
        self.worker, self.nproc = worker, nproc
        self.result = None

    def get(self, name: str) -> None:
        """Fail unless every rank reported check ``name`` as ok."""
        if self.result is None:
            self.result, _ = run_mpi(self.worker, self.nproc, timeout=120)
            self.checks = parse_checks(self.result.stdout)
        report = f"--- stdout\n{self.result.stdout[-4000:]}\n--- stderr\n{self.result.stderr[-4000:]}"
        for rank in range(self.nproc):
            found = self.checks.get((rank, name))
            assert found is not None, (
                f"rank {rank} did not report check {name} (exit {self.result.returncode})\n{report}"
            )
            assert found[0], f"rank {rank}: check {name} failed: {found[1]}\n{report}"


_runs: dict = {}


def check_run(worker: str, nproc: int = 2) -> CheckRun:
    """The session's single run of ``worker`` on ``nproc`` ranks."""
    key = (worker, nproc)
    if key not in _runs:
        _runs[key] = CheckRun(worker, nproc)
    return _runs[key]
