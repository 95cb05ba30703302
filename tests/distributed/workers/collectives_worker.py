"""Every collective against NumPy on the CPU (run by tests/distributed/test_collectives.py under mpiexec)."""

from __future__ import annotations

import numpy as np
from _checks import run_checks

import gradflow as gf
import gradflow.distributed as dist
from gradflow.distributed import ReduceOp

dist.init_process_group(backend="mpi", timeout=30)
rank, world = dist.get_rank(), dist.get_world_size()


def values(of_rank: int, shape=(2, 3), dtype=np.float32) -> np.ndarray:
    """Rank ``of_rank``'s input: distinct, exactly representable numbers."""
    return (np.arange(np.prod(shape)).reshape(shape) + 1 + 10 * of_rank).astype(dtype)


def everyone(shape=(2, 3), dtype=np.float32) -> np.ndarray:
    return np.stack([values(r, shape, dtype) for r in range(world)])


def check_all_reduce_each_op():
    expected = {
        ReduceOp.SUM: everyone().sum(0),
        ReduceOp.AVG: everyone().mean(0),
        ReduceOp.PRODUCT: everyone().prod(0),
        ReduceOp.MIN: everyone().min(0),
        ReduceOp.MAX: everyone().max(0),
    }
    for op, want in expected.items():
        tensor = gf.tensor(values(rank))
        assert dist.all_reduce(tensor, op=op) is None
        np.testing.assert_allclose(tensor.numpy(), want, rtol=1e-6, err_msg=str(op))


def check_all_reduce_integers_and_float64():
    tensor = gf.tensor(values(rank, dtype=np.int64))
    dist.all_reduce(tensor)
    assert tensor.dtype is gf.int64
    np.testing.assert_array_equal(tensor.numpy(), everyone(dtype=np.int64).sum(0))
    tensor = gf.tensor(values(rank, dtype=np.float64))
    dist.all_reduce(tensor, ReduceOp.MAX)
    np.testing.assert_array_equal(tensor.numpy(), everyone(dtype=np.float64).max(0))


def check_all_reduce_float16_and_strided_view():
    tensor = gf.tensor(values(rank, dtype=np.float16))
    dist.all_reduce(tensor)
    np.testing.assert_array_equal(tensor.numpy(), everyone(dtype=np.float16).sum(0))
    base = gf.tensor(values(rank, (4, 6)))
    view = base[:, ::2]  # not contiguous: reduced through a staging copy, written back into the base
    dist.all_reduce(view)
    np.testing.assert_array_equal(base.numpy()[:, ::2], everyone((4, 6)).sum(0)[:, ::2])
    np.testing.assert_array_equal(base.numpy()[:, 1::2], values(rank, (4, 6))[:, 1::2])


def check_broadcast_from_each_root():
    for root in range(world):
        tensor = gf.tensor(values(rank))
        dist.broadcast(tensor, src=root)
        np.testing.assert_array_equal(tensor.numpy(), values(root))


def check_all_gather():
    outputs = [gf.zeros(2, 3) for _ in range(world)]
    dist.all_gather(outputs, gf.tensor(values(rank)))
    for r, output in enumerate(outputs):
        np.testing.assert_array_equal(output.numpy(), values(r))


def check_all_gather_into_tensor_both_layouts():
    stacked = gf.zeros(world, 2, 3)
    dist.all_gather_into_tensor(stacked, gf.tensor(values(rank)))
    np.testing.assert_array_equal(stacked.numpy(), everyone())
    concatenated = gf.zeros(world * 2, 3)
    dist.all_gather_into_tensor(concatenated, gf.tensor(values(rank)))
    np.testing.assert_array_equal(concatenated.numpy(), everyone().reshape(world * 2, 3))


def check_reduce_scatter_tensor():
    full = np.stack([values(rank * 100 + block) for block in range(world)])  # world blocks of (2, 3)
    output = gf.zeros(2, 3)
    dist.reduce_scatter_tensor(output, gf.tensor(full.reshape(world * 2, 3)))
    want = sum(values(r * 100 + rank) for r in range(world))
    np.testing.assert_array_equal(output.numpy(), want)
    average = gf.zeros(2, 3)
    dist.reduce_scatter_tensor(average, gf.tensor(full), op=ReduceOp.AVG)
    np.testing.assert_allclose(average.numpy(), want / world, rtol=1e-6)


def check_reduce_to_each_root():
    for root in range(world):
        tensor = gf.tensor(values(rank))
        dist.reduce(tensor, dst=root, op=ReduceOp.SUM)
        if rank == root:
            np.testing.assert_array_equal(tensor.numpy(), everyone().sum(0))
        else:
            np.testing.assert_array_equal(tensor.numpy(), values(rank))


def check_gather_and_scatter():
    root = world - 1
    gathered = [gf.zeros(2, 3) for _ in range(world)] if rank == root else None
    dist.gather(gf.tensor(values(rank)), gathered, dst=root)
    if rank == root:
        for r, output in enumerate(gathered):
            np.testing.assert_array_equal(output.numpy(), values(r))
    pieces = [gf.tensor(values(100 + r)) for r in range(world)] if rank == 0 else None
    received = gf.zeros(2, 3)
    dist.scatter(received, pieces, src=0)
    np.testing.assert_array_equal(received.numpy(), values(100 + rank))


def check_barrier_and_async_work_handles():
    dist.barrier()
    tensors = [gf.tensor(values(rank)) for _ in range(3)]
    works = [dist.all_reduce(tensor, async_op=True) for tensor in tensors]
    assert all(isinstance(work, dist.Work) for work in works)
    for work in reversed(works):
        assert work.wait() is True
        assert work.is_completed()
    for tensor in tensors:
        np.testing.assert_array_equal(tensor.numpy(), everyone().sum(0))
    work = dist.barrier(async_op=True)
    work.wait()
    broadcast_work = dist.broadcast(tensors[0], src=0, async_op=True)
    broadcast_work.wait()
    np.testing.assert_array_equal(tensors[0].numpy(), everyone().sum(0))


def check_object_collectives():
    objects = [None] * world
    dist.all_gather_object(objects, {"rank": rank, "text": "x" * rank})
    assert objects == [{"rank": r, "text": "x" * r} for r in range(world)]
    shared = [f"from {rank}", rank] if rank == 0 else [None, None]
    dist.broadcast_object_list(shared, src=0)
    assert shared == ["from 0", 0]


def check_environment_and_queries():
    import os

    assert dist.is_initialized() and dist.get_backend() == "mpi"
    assert int(os.environ["RANK"]) == rank and int(os.environ["WORLD_SIZE"]) == world
    assert int(os.environ["LOCAL_RANK"]) == dist.get_node_local_rank() == rank  # one machine


def check_mismatched_dtype_raises_typed_error():
    tensor = gf.zeros(3, dtype=gf.float32 if rank == 0 else gf.float64)
    try:
        dist.all_reduce(tensor)
    except gf.errors.DistributedError as error:
        message = str(error)
        assert "all_reduce" in message and "float32" in message and "float64" in message, message
        assert "rank 0" in message and "rank 1" in message, message
    else:
        raise AssertionError("all_reduce with float32 on one rank and float64 on another did not raise")


def check_cuda_tensor_on_mpi_without_cuda_aware_mpi_raises():
    from gradflow.device import Device
    from gradflow.tensor import Tensor

    # A tensor that claims to live on a GPU (only its device is read before the error).
    on_gpu = Tensor._wrap(np.zeros(3, dtype=np.float32), Device("cuda", 0))
    try:
        dist.all_reduce(on_gpu)
    except gf.errors.DistributedError as error:
        assert "not CUDA-aware" in str(error) and "backend='nccl'" in str(error), str(error)
    else:
        raise AssertionError("a CUDA tensor on the MPI backend without CUDA-aware MPI did not raise")


run_checks({name[len("check_") :]: check for name, check in globals().items() if name.startswith("check_")}, rank)
dist.destroy_process_group()
