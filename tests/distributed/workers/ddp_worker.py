"""DistributedDataParallel on N ranks against one process on the whole batch (run by test_ddp.py under mpiexec)."""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
from _checks import run_checks

import gradflow as gf
import gradflow.distributed as dist
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.errors import DistributedError
from gradflow.nn.parallel import DistributedDataParallel, consume_prefix_in_state_dict_if_present

dist.init_process_group(backend="mpi", timeout=60)
rank, world = dist.get_rank(), dist.get_world_size()
BATCH = 8 * world
STEPS = 10
# The check tolerance of the issue: the same training on N slices and on the whole batch agree to rtol 1e-5.
RTOL, ATOL = 1e-5, 1e-6


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)) if hasattr(nn, "Unflatten") else _Reshape(),
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )


class _Reshape(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], 1, 8, 8)


def batches(steps: int = STEPS, batch: int = BATCH):
    generator = np.random.default_rng(1234)  # the same data on every rank; each takes its slice
    for _ in range(steps):
        x = generator.standard_normal((batch, 64)).astype(np.float32)
        y = generator.integers(0, 10, batch)
        yield x, y


def my_slice(array: np.ndarray) -> np.ndarray:
    per_rank = array.shape[0] // world
    return array[rank * per_rank : (rank + 1) * per_rank]


def build(make, seed: int) -> nn.Module:
    gf.manual_seed(seed)
    return make()


def train(model: nn.Module, optimizer, sliced: bool) -> None:
    for x, y in batches():
        if sliced:
            x, y = my_slice(x), my_slice(y)
        optimizer.zero_grad()
        F.cross_entropy(model(gf.tensor(x)), gf.tensor(y)).backward()
        optimizer.step()


def compare_training(make, make_optimizer, **ddp_options) -> None:
    reference = build(make, seed=7)  # rank 0's initial weights, which DDP broadcasts at wrap
    train(reference, make_optimizer(reference.parameters()), sliced=False)
    model = DistributedDataParallel(build(make, seed=7 + rank), **ddp_options)
    train(model, make_optimizer(model.parameters()), sliced=True)
    for (name, ours), theirs in zip(model.module.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=name)


def sgd_momentum(params):
    return gf.optim.SGD(params, lr=0.1, momentum=0.9)


def adam(params):
    return gf.optim.Adam(params, lr=1e-2)


def check_mlp_sgd_momentum_matches_one_process():
    compare_training(mlp, sgd_momentum)


def check_mlp_adam_matches_one_process():
    compare_training(mlp, adam)


def check_cnn_sgd_momentum_matches_one_process():
    compare_training(cnn, sgd_momentum)


def check_cnn_adam_matches_one_process():
    compare_training(cnn, adam)


def check_mlp_gradient_as_bucket_view_and_small_buckets_match():
    compare_training(mlp, adam, gradient_as_bucket_view=True, bucket_cap_mb=0.001)


def gathered(array: np.ndarray) -> list:
    objects = [None] * world
    dist.all_gather_object(objects, array)
    return objects


def check_wrap_broadcasts_rank0_parameters_and_buffers():
    model = build(lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), seed=100 + rank)
    model[1].running_mean.fill_(float(rank))  # a buffer that differs between ranks
    before = gathered(model[0].weight.detach().numpy().copy())
    if world > 1:
        assert not np.array_equal(before[0], before[1]), "the test needs different weights on different ranks"
    DistributedDataParallel(model)
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), before[0])
    np.testing.assert_array_equal(model[1].running_mean.detach().numpy(), np.zeros(3, dtype=np.float32))


def check_no_sync_accumulates_locally_then_averages():
    model = DistributedDataParallel(build(mlp, seed=3))
    reference = build(mlp, seed=3)
    (first, first_y), (second, second_y) = batches(steps=2)
    with model.no_sync():
        F.cross_entropy(model(gf.tensor(my_slice(first))), gf.tensor(my_slice(first_y))).backward()
    local = model.module[0].weight.grad.detach().numpy().copy()
    F.cross_entropy(reference(gf.tensor(my_slice(first))), gf.tensor(my_slice(first_y))).backward()
    np.testing.assert_allclose(local, reference[0].weight.grad.detach().numpy(), rtol=RTOL, atol=ATOL)  # not averaged
    if world > 1:
        assert not np.allclose(gathered(local)[0], gathered(local)[1]), "no_sync must not synchronise"
    F.cross_entropy(model(gf.tensor(my_slice(second))), gf.tensor(my_slice(second_y))).backward()
    # Averaged over the ranks, the accumulated gradient is the whole batches' mean-loss gradients summed.
    whole = build(mlp, seed=3)
    for x, y in ((first, first_y), (second, second_y)):
        F.cross_entropy(whole(gf.tensor(x)), gf.tensor(y)).backward()
    for ours, theirs in zip(model.module.parameters(), whole.parameters()):
        np.testing.assert_allclose(ours.grad.detach().numpy(), theirs.grad.detach().numpy(), rtol=RTOL, atol=ATOL)


def check_reduction_starts_during_backward():
    model = DistributedDataParallel(build(mlp, seed=5), bucket_cap_mb=0.0001)  # one parameter per bucket
    assert len(model._reducer.buckets) == len(list(model.parameters()))
    launched_when_first_layer_ran = []
    x, y = next(batches(steps=1))
    hidden = model.module[0](gf.tensor(my_slice(x)))
    hidden.register_hook(lambda grad: launched_when_first_layer_ran.append(model._reducer.next_launch))
    output = model.module[4](model.module[3](model.module[2](model.module[1](hidden))))
    model._reducer.prepare([])  # what DDP.forward does after running the module
    F.cross_entropy(output, gf.tensor(my_slice(y))).backward()
    # By the time backward reaches the first layer, the later layers' buckets were already launched.
    assert launched_when_first_layer_ran[0] >= 4, launched_when_first_layer_ran
    assert model._reducer.next_launch == len(model._reducer.buckets) and not model._reducer.expecting


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 4)
        self.shared_head = nn.Linear(4, 2)
        self.rank0_head = nn.Linear(4, 2)  # used on rank 0 only
        self.never_used = nn.Linear(4, 2)

    def forward(self, x):
        hidden = self.body(x).relu()
        out = self.shared_head(hidden)
        if dist.get_rank() == 0:
            out = out + self.rank0_head(hidden)
        return out


def check_find_unused_parameters():
    model = DistributedDataParallel(build(TwoHeads, seed=11), find_unused_parameters=True)
    x = gf.tensor(np.random.default_rng(rank).standard_normal((4, 6)).astype(np.float32))
    model(x).sum().backward()
    head = model.module.rank0_head.weight.grad
    assert head is not None
    grads = gathered(head.detach().numpy().copy())
    np.testing.assert_array_equal(grads[0], grads[-1])  # averaged: rank 0's gradient / world on every rank
    assert model.module.never_used.weight.grad is None  # no rank used it: untouched, as in PyTorch
    model(x).sum().backward()  # a second iteration works


def check_unused_parameter_without_find_unused_raises_next_iteration():
    model = DistributedDataParallel(build(TwoHeads, seed=11))
    x = gf.tensor(np.ones((2, 6), dtype=np.float32))
    model(x).sum().backward()
    try:
        model(x)
    except DistributedError as error:
        assert "find_unused_parameters=True" in str(error) and "never_used.weight" in str(error), str(error)
    else:
        raise AssertionError("a forward after an unfinished reduction did not raise")


def check_sync_batchnorm_matches_batchnorm_on_whole_batch():
    make = lambda: nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))  # noqa: E731
    reference = build(make, seed=21)
    model = DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(build(make, seed=21)))
    assert isinstance(model.module[1], nn.SyncBatchNorm)
    assert model.module[1].weight is model.module[1].weight
    optimizer = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    reference_optimizer = gf.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for x, y in batches(steps=3):
        optimizer.zero_grad()
        reference_optimizer.zero_grad()
        ours = model(gf.tensor(my_slice(x)))
        theirs = reference(gf.tensor(x))
        np.testing.assert_allclose(ours.detach().numpy(), my_slice(theirs.detach().numpy()), rtol=1e-4, atol=1e-5)
        F.cross_entropy(ours, gf.tensor(my_slice(y))).backward()
        F.cross_entropy(theirs, gf.tensor(y)).backward()
        optimizer.step()
        reference_optimizer.step()
    for (name, ours), theirs in zip(model.module.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=name)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(
            getattr(model.module[1], name).detach().numpy(),
            getattr(reference[1], name).detach().numpy(),
            rtol=RTOL,
            atol=ATOL,
        )


def check_checkpoint_saved_on_rank0_loads_everywhere():
    model = DistributedDataParallel(build(mlp, seed=rank))
    assert all(key.startswith("module.") for key in model.state_dict())
    paths = [os.path.join(tempfile.gettempdir(), f"gradflow-ddp-{os.getpid()}.safetensors")]
    dist.broadcast_object_list(paths, src=0)
    if rank == 0:
        gf.save(model.module.state_dict(), paths[0])
    dist.barrier()  # the file is complete before anyone reads it
    bare = build(mlp, seed=99)
    bare.load_state_dict(gf.load(paths[0]))
    for ours, theirs in zip(bare.parameters(), model.module.parameters()):
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    prefixed = model.state_dict()
    consume_prefix_in_state_dict_if_present(prefixed, "module.")
    build(mlp, seed=98).load_state_dict(prefixed)
    dist.barrier()
    if rank == 0:
        os.remove(paths[0])


checks = {name[len("check_") :]: check for name, check in list(globals().items()) if name.startswith("check_")}
if len(sys.argv) > 1:
    checks = {name: checks[name] for name in sys.argv[1:]}
run_checks(checks, rank)
dist.destroy_process_group()
