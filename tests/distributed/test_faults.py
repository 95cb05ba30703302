"""What happens when a job goes wrong on 2 ranks: typed errors, fail-fast abort, timeouts naming the absent rank."""

from __future__ import annotations

from .conftest import run_mpi

# Far below the worker's 60 s collective timeout: a job that ends in this time failed fast.
FAST_SECONDS = 20


def test_mismatched_parameter_shapes_raise_the_typed_error_naming_the_first_mismatch():
    result, _ = run_mpi("faults_worker.py", args=["mismatch"])
    assert result.returncode == 0, result.stderr
    expected = (
        "raised DistributedError: DistributedDataParallel: parameter 2 differs between ranks: rank 0 has "
        "'1.weight' of shape [4, 16] (float32) but rank 1 has '1.weight' of shape [6, 16] (float32)"
    )
    for rank in (0, 1):
        assert f"rank {rank} {expected}" in result.stdout, result.stdout


def test_an_exception_in_one_rank_aborts_the_job_in_seconds_with_its_error():
    result, seconds = run_mpi("faults_worker.py", args=["raise"], timeout=90)
    assert result.returncode != 0
    assert seconds < FAST_SECONDS, f"the job took {seconds:.1f} s to fail"
    assert "ValueError: rank 1 failed on purpose" in result.stderr
    assert "[rank 1]" in result.stderr and "aborting the job" in result.stderr
    assert "did not fail fast" not in result.stdout


def test_an_exception_before_init_process_group_also_ends_the_job():
    result, seconds = run_mpi("faults_worker.py", args=["raise_before_init"], timeout=90)
    assert result.returncode != 0
    assert seconds < FAST_SECONDS, f"the job took {seconds:.1f} s to fail"
    assert "rank 1 failed on purpose before init" in result.stderr


def test_a_missing_peer_times_out_with_the_typed_error_naming_the_op_and_the_rank():
    result, seconds = run_mpi("faults_worker.py", args=["timeout"], timeout=90)
    assert result.returncode != 0
    assert seconds < FAST_SECONDS, f"the job took {seconds:.1f} s: the timeout did not end it"
    assert "DistributedError: all_reduce: timed out after 2 s on rank 0" in result.stderr, result.stderr
    assert "rank(s) [1] did not arrive" in result.stderr
