"""The 'nccl' backend on a GPU machine: world size 1, and 2 ranks where there are 2 GPUs (skipped without CUDA)."""

from __future__ import annotations

import pytest

import gradflow as gf
import gradflow.distributed as dist

from .conftest import check_run

pytestmark = pytest.mark.cuda

CHECKS = [
    "backend_is_nccl_on_the_local_gpu",
    "all_reduce_each_op_on_the_gpu",
    "broadcast_gathers_and_scatters_on_the_gpu",
    "async_work_and_barrier",
    "cpu_tensors_still_go_over_mpi",
    "ddp_on_the_gpu_matches_one_process",
]


def _skip_without_nccl(gpus: int) -> None:
    if not gf.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gf.cuda.unavailable_reason()}")
    if not dist.is_nccl_available():
        pytest.skip("CuPy's NCCL bindings are not available (install the CUDA extra with nvidia-nccl)")
    if gf.cuda.device_count() < gpus:
        pytest.skip(f"needs {gpus} GPUs, this machine has {gf.cuda.device_count()}")


@pytest.mark.parametrize("check", CHECKS)
def test_nccl_on_one_gpu(check):
    _skip_without_nccl(1)
    check_run("nccl_worker.py", nproc=1).get(check)


@pytest.mark.parametrize("check", CHECKS)
def test_nccl_on_two_gpus(check):
    _skip_without_nccl(2)
    check_run("nccl_worker.py", nproc=2).get(check)
