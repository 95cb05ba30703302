"""DistributedDataParallel on 2 ranks (mpiexec -n 2): each rank trains on half of every batch and ends with
the weights one process gets on the whole batch (workers/ddp_worker.py runs the checks once)."""

from __future__ import annotations

import pytest

from .conftest import check_run

CHECKS = [
    "mlp_sgd_momentum_matches_one_process",
    "mlp_adam_matches_one_process",
    "cnn_sgd_momentum_matches_one_process",
    "cnn_adam_matches_one_process",
    "mlp_gradient_as_bucket_view_and_small_buckets_match",
    "wrap_broadcasts_rank0_parameters_and_buffers",
    "no_sync_accumulates_locally_then_averages",
    "reduction_starts_during_backward",
    "find_unused_parameters",
    "unused_parameter_without_find_unused_raises_next_iteration",
    "sync_batchnorm_matches_batchnorm_on_whole_batch",
    "checkpoint_saved_on_rank0_loads_everywhere",
]


@pytest.mark.parametrize("check", CHECKS)
def test_ddp_on_two_ranks(check):
    check_run("ddp_worker.py", nproc=2).get(check)
