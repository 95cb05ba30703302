"""Every collective on 2 ranks (mpiexec -n 2) against NumPy: workers/collectives_worker.py runs them once."""

from __future__ import annotations

import pytest

from .conftest import check_run

CHECKS = [
    "all_reduce_each_op",
    "all_reduce_integers_and_float64",
    "all_reduce_float16_and_strided_view",
    "broadcast_from_each_root",
    "all_gather",
    "all_gather_into_tensor_both_layouts",
    "reduce_scatter_tensor",
    "reduce_to_each_root",
    "gather_and_scatter",
    "barrier_and_async_work_handles",
    "object_collectives",
    "environment_and_queries",
    "mismatched_dtype_raises_typed_error",
    "cuda_tensor_on_mpi_without_cuda_aware_mpi_raises",
]


@pytest.mark.parametrize("check", CHECKS)
def test_collective_on_two_ranks(check):
    check_run("collectives_worker.py", nproc=2).get(check)
