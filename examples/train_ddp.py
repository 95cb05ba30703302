"""Data-parallel training of an MLP or a small CNN on scikit-learn's 8x8 digits, on any number of processes.

Each process (rank) trains a replica on its share of every epoch (DistributedSampler) and
DistributedDataParallel averages the gradients, so all replicas stay identical; rank 0
evaluates and saves the checkpoint. On GPUs each process drives the GPU of its LOCAL_RANK and
the gradients travel over NCCL; on CPUs over MPI.

    gradflow run --nproc 2 examples/train_ddp.py               # 2 processes on this machine
    mpiexec -n 4 python examples/train_ddp.py --model cnn      # the same with MPI's own launcher
    mpiexec -hosts a,b -n 8 python examples/train_ddp.py       # 8 processes on machines a and b
    python examples/train_ddp.py --short --device cpu          # one process, one short epoch (CI)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.datasets import load_digits

import gradflow as gf
import gradflow.distributed as dist
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.nn.parallel import DistributedDataParallel
from gradflow.utils.data import DataLoader, DistributedSampler, TensorDataset


def build_model(kind: str) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="per process (the global batch is N times this)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--checkpoint", default=None, help="where rank 0 saves the model (default: none)")
    parser.add_argument("--short", action="store_true", help="one short epoch, for CI (also GRADFLOW_EXAMPLE_SHORT=1)")
    args = parser.parse_args()
    short = args.short or os.environ.get("GRADFLOW_EXAMPLE_SHORT") == "1"

    # One GPU per process: LOCAL_RANK is set by `gradflow run` (and by init_process_group otherwise).
    device = gf.device(args.device)
    if device.type == "cuda":
        gf.cuda.set_device(dist.get_node_local_rank(fallback_rank=0))
        device = gf.device("cuda")
    gf.set_default_device(device)
    dist.init_process_group()  # 'nccl' on CUDA, 'mpi' on the CPU
    rank, world = dist.get_rank(), dist.get_world_size()

    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    if args.model == "cnn":
        images = images.reshape(-1, 1, 8, 8)
    split = int(0.8 * len(images))
    train = TensorDataset(gf.tensor(images[:split]), gf.tensor(digits.target[:split]))
    test_x, test_y = gf.tensor(images[split:], device=device), gf.tensor(digits.target[split:], device=device)
    if short:
        train = TensorDataset(train.tensors[0][:256], train.tensors[1][:256])

    gf.manual_seed(0)
    model = build_model(args.model).to(device)
    if args.model == "cnn" and world > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # statistics over the global batch
    model = DistributedDataParallel(model)  # copies rank 0's weights to every rank
    optimizer = gf.optim.Adam(model.parameters(), lr=args.lr)
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler, device=device)

    epochs = 1 if short else args.epochs
    start = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()  # returns with the gradients averaged over the ranks
            optimizer.step()
        summed = gf.tensor([loss.item()])
        dist.all_reduce(summed, op=dist.ReduceOp.AVG)
        if rank == 0:
            print(f"epoch {epoch + 1}/{epochs}  loss (mean of the ranks' last batch) {summed.item():.4f}", flush=True)
    seconds = time.perf_counter() - start

    samples = epochs * len(sampler) * world
    if rank == 0:
        model.eval()
        with gf.no_grad():
            accuracy = (model.module(test_x).argmax(dim=1) == test_y).float().mean().item()
        print(f"{world} process(es) on {device}: test accuracy {accuracy:.3f}, {samples / seconds:,.0f} samples/s")
        if args.checkpoint:
            gf.save(model.module.state_dict(), args.checkpoint)  # rank 0 saves; load it on every rank
            print(f"saved {args.checkpoint}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
