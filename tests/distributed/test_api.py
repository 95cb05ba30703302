"""gradflow.distributed in this process, without starting MPI: imports, errors before init, the launcher."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gradflow as gf
import gradflow.distributed as dist
from gradflow.distributed import launch
from gradflow.errors import DistributedError, MissingDependencyError

from .conftest import REPO_ROOT, environment, mpi_or_skip


def test_import_gradflow_does_not_import_mpi4py():
    code = "import sys, gradflow, gradflow.distributed, gradflow.nn.parallel; print('mpi4py' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_is_available_tells_whether_mpi4py_is_installed():
    import importlib.util

    assert dist.is_available() is (importlib.util.find_spec("mpi4py") is not None)
    assert not dist.is_initialized()


@pytest.mark.parametrize(
    "call",
    [
        lambda: dist.all_reduce(gf.ones(2)),
        lambda: dist.broadcast(gf.ones(2), src=0),
        lambda: dist.all_gather([gf.ones(2)], gf.ones(2)),
        lambda: dist.barrier(),
        lambda: dist.get_rank(),
        lambda: dist.get_world_size(),
        lambda: gf.nn.parallel.DistributedDataParallel(gf.nn.Linear(2, 2)),
    ],
    ids=["all_reduce", "broadcast", "all_gather", "barrier", "get_rank", "get_world_size", "DDP"],
)
def test_collectives_before_init_raise_the_typed_error_saying_the_fix(call):
    with pytest.raises(DistributedError, match="init_process_group"):
        call()


def test_unknown_backend_is_a_typed_error():
    with pytest.raises(DistributedError, match="unknown backend 'gloo'"):
        dist.init_process_group(backend="gloo")


def test_reduce_ops_have_pytorchs_names():
    assert [op.name for op in dist.ReduceOp] == ["SUM", "AVG", "PRODUCT", "MIN", "MAX"]


def test_sync_batchnorm_without_a_process_group_is_batchnorm():
    gf.manual_seed(0)
    plain = gf.nn.BatchNorm1d(3)
    synced = gf.nn.SyncBatchNorm.convert_sync_batchnorm(gf.nn.Sequential(plain))[0]
    assert isinstance(synced, gf.nn.SyncBatchNorm) and synced.weight is plain.weight
    x = gf.randn(6, 3)
    expected = gf.nn.functional.batch_norm(x, None, None, plain.weight, plain.bias, training=True)
    np.testing.assert_allclose(synced(x).detach().numpy(), expected.detach().numpy(), rtol=1e-6)


def test_launcher_environment_comes_from_mpich_or_open_mpi_variables():
    mpich = {"PMI_RANK": "3", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2"}
    launch.export_launcher_environment(mpich)
    assert (mpich["RANK"], mpich["WORLD_SIZE"], mpich["LOCAL_RANK"], mpich["LOCAL_WORLD_SIZE"]) == ("3", "4", "1", "2")
    open_mpi = {"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "1"}
    launch.export_launcher_environment(open_mpi)
    assert (open_mpi["RANK"], open_mpi["WORLD_SIZE"], open_mpi["LOCAL_RANK"]) == ("5", "8", "1")


def test_missing_mpiexec_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"pip install 'gradflow\[distributed\]'"):
        launch.find_mpiexec()


def test_mpiexec_command_runs_the_per_rank_launcher():
    command = launch.mpiexec_command(3, ["train.py", "--lr", "1"], mpiexec="/nowhere/mpiexec", hosts="a,b")
    assert command[0] == "/nowhere/mpiexec"
    assert command[-8:] == ["-n", "3", sys.executable, "-m", "gradflow.distributed.launch", "train.py", "--lr", "1"]
    assert "a,b" in command


def test_gradflow_run_starts_n_ranks_with_pytorchs_environment_variables(tmp_path):
    mpi_or_skip()
    script = tmp_path / "show_env.py"
    script.write_text("import os, sys\nprint('ENV', os.environ['RANK'], os.environ['WORLD_SIZE'], sys.argv[1:])\n")
    result = subprocess.run(
        [sys.executable, "-m", "gradflow.cli", "run", "--nproc", "2", str(script), "--lr", "3"],
        cwd=REPO_ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = sorted(line for line in result.stdout.splitlines() if line.startswith("ENV"))
    assert lines == ["ENV 0 2 ['--lr', '3']", "ENV 1 2 ['--lr', '3']"]


def test_train_ddp_example_runs_on_two_ranks():
    mpi_or_skip()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradflow.cli",
            "run",
            "--nproc",
            "2",
            "examples/train_ddp.py",
            "--short",
            "--device",
            "cpu",
        ],
        cwd=REPO_ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "2 process(es) on cpu: test accuracy" in result.stdout
