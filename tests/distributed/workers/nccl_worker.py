"""The 'nccl' backend on CUDA tensors (run by test_nccl.py on a GPU machine, one rank per GPU)."""

from __future__ import annotations

import numpy as np
from _checks import run_checks

import gradflow as gf
import gradflow.distributed as dist
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.distributed import ReduceOp
from gradflow.nn.parallel import DistributedDataParallel

local_rank = dist.get_node_local_rank(fallback_rank=0)
gf.cuda.set_device(local_rank)
gf.set_default_device("cuda")  # so that backend='auto' picks NCCL
dist.init_process_group(backend="auto", timeout=120)
rank, world = dist.get_rank(), dist.get_world_size()
CUDA = gf.device("cuda")


def values(of_rank: int, shape=(2, 3), dtype=np.float32) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) + 1 + 10 * of_rank).astype(dtype)


def everyone(shape=(2, 3), dtype=np.float32) -> np.ndarray:
    return np.stack([values(r, shape, dtype) for r in range(world)])


def on_gpu(array: np.ndarray):
    return gf.tensor(array, device=CUDA)


def host(tensor) -> np.ndarray:
    return tensor.detach().to("cpu").numpy()


def check_backend_is_nccl_on_the_local_gpu():
    assert dist.get_backend() == "nccl"
    assert CUDA.index == local_rank


def check_all_reduce_each_op_on_the_gpu():
    expected = {
        ReduceOp.SUM: everyone().sum(0),
        ReduceOp.AVG: everyone().mean(0),
        ReduceOp.PRODUCT: everyone().prod(0),
        ReduceOp.MIN: everyone().min(0),
        ReduceOp.MAX: everyone().max(0),
    }
    for op, want in expected.items():
        tensor = on_gpu(values(rank))
        pointer = tensor._data.data.ptr
        dist.all_reduce(tensor, op=op)
        assert tensor._data.data.ptr == pointer  # in place on the tensor's own device memory
        np.testing.assert_allclose(host(tensor), want, rtol=1e-6, err_msg=str(op))


def check_broadcast_gathers_and_scatters_on_the_gpu():
    tensor = on_gpu(values(rank))
    dist.broadcast(tensor, src=world - 1)
    np.testing.assert_array_equal(host(tensor), values(world - 1))
    outputs = [gf.zeros(2, 3, device=CUDA) for _ in range(world)]
    dist.all_gather(outputs, on_gpu(values(rank)))
    for r, output in enumerate(outputs):
        np.testing.assert_array_equal(host(output), values(r))
    stacked = gf.zeros(world, 2, 3, device=CUDA)
    dist.all_gather_into_tensor(stacked, on_gpu(values(rank)))
    np.testing.assert_array_equal(host(stacked), everyone())
    full = np.stack([values(rank * 100 + block) for block in range(world)])
    output = gf.zeros(2, 3, device=CUDA)
    dist.reduce_scatter_tensor(output, on_gpu(full.reshape(world * 2, 3)))
    np.testing.assert_array_equal(host(output), sum(values(r * 100 + rank) for r in range(world)))
    reduced = on_gpu(values(rank))
    dist.reduce(reduced, dst=0)
    if rank == 0:
        np.testing.assert_array_equal(host(reduced), everyone().sum(0))
    gathered = [gf.zeros(2, 3, device=CUDA) for _ in range(world)] if rank == 0 else None
    dist.gather(on_gpu(values(rank)), gathered, dst=0)
    if rank == 0:
        for r, piece in enumerate(gathered):
            np.testing.assert_array_equal(host(piece), values(r))
    pieces = [on_gpu(values(50 + r)) for r in range(world)] if rank == 0 else None
    received = gf.zeros(2, 3, device=CUDA)
    dist.scatter(received, pieces, src=0)
    np.testing.assert_array_equal(host(received), values(50 + rank))


def check_async_work_and_barrier():
    tensors = [on_gpu(values(rank)) for _ in range(3)]
    works = [dist.all_reduce(tensor, async_op=True) for tensor in tensors]
    for work in works:
        work.wait()
    for tensor in tensors:
        np.testing.assert_array_equal(host(tensor), everyone().sum(0))
    dist.barrier()


def check_cpu_tensors_still_go_over_mpi():
    tensor = gf.tensor(values(rank), device="cpu")  # the default device is cuda in this worker
    dist.all_reduce(tensor)
    np.testing.assert_array_equal(tensor.numpy(), everyone().sum(0))


def check_ddp_on_the_gpu_matches_one_process():
    def make():
        gf.manual_seed(7)
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).to(CUDA)

    generator = np.random.default_rng(0)
    data = [(generator.standard_normal((8 * world, 64)).astype(np.float32), generator.integers(0, 10, 8 * world))]
    data = data * 5
    reference = make()
    optimizer = gf.optim.Adam(reference.parameters(), lr=1e-2)
    for x, y in data:
        optimizer.zero_grad()
        F.cross_entropy(reference(on_gpu(x)), on_gpu(y)).backward()
        optimizer.step()
    model = DistributedDataParallel(make(), device_ids=[local_rank])
    optimizer = gf.optim.Adam(model.parameters(), lr=1e-2)
    for x, y in data:
        mine = slice(rank * 8, (rank + 1) * 8)
        optimizer.zero_grad()
        F.cross_entropy(model(on_gpu(x[mine])), on_gpu(y[mine])).backward()
        optimizer.step()
    for ours, theirs in zip(model.module.parameters(), reference.parameters()):
        np.testing.assert_allclose(host(ours), host(theirs), rtol=1e-4, atol=1e-5)


run_checks({name[len("check_") :]: check for name, check in globals().items() if name.startswith("check_")}, rank)
dist.destroy_process_group()
