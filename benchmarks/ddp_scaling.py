"""DistributedDataParallel scaling on the CPU: 1 vs N ranks, gradflow (MPI) vs torch (gloo) on the same model.

Each framework trains the same MLP (weak scaling: a fixed batch per rank, one BLAS thread per
rank) under the same launcher (`mpiexec` through gradflow's `gradflow run` command; torch
ranks rendezvous over TCP on localhost with gloo). Reported per framework:

- samples/s on 1 and N ranks, and the scaling efficiency = samples/s(N) / (N * samples/s(1));
- overlap on N ranks: the time of backward with its gradient all-reduce (DDP) against backward
  alone (``no_sync()``) and the all-reduce alone (one flat buffer of all gradients); the
  fraction of the all-reduce hidden behind backward is
  1 - (backward_with_allreduce - backward_alone) / allreduce_alone.

    PYTHONPATH=. python benchmarks/ddp_scaling.py                       # prints a table
    PYTHONPATH=. python benchmarks/ddp_scaling.py --json out.json --ranks 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (256, 512, 512, 10)  # MLP 256-512-512-10: 0.4 M parameters, 1.6 MB of gradients
BATCH_PER_RANK = 64
WARMUP, STEPS, REPEATS = 5, 40, 3


# -- the worker: one rank of one framework -----------------------------------------------------------
def batches(rank: int):
    generator = np.random.default_rng(rank)
    x = generator.standard_normal((BATCH_PER_RANK, WIDTHS[0])).astype(np.float32)
    y = generator.integers(0, WIDTHS[-1], BATCH_PER_RANK)
    return x, y


def median_ms(run, steps: int) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(steps):
            run()
        times.append((time.perf_counter() - start) / steps * 1e3)
    return float(np.median(times))


def gradflow_worker() -> dict:
    import gradflow as gf
    import gradflow.distributed as dist
    import gradflow.nn.functional as F  # noqa: N812 - PyTorch's alias
    from gradflow import nn
    from gradflow.nn.parallel import DistributedDataParallel

    dist.init_process_group(backend="mpi")
    return train_and_measure(gf, nn, F, dist, DistributedDataParallel, gf.tensor)


def torch_worker() -> dict:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F  # noqa: N812 - PyTorch's alias
    from torch import nn

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    return train_and_measure(torch, nn, F, dist, nn.parallel.DistributedDataParallel, torch.from_numpy)


def train_and_measure(framework, nn, F, dist, ddp, from_numpy) -> dict:  # noqa: N803 - PyTorch's alias
    """The same DDP program for both frameworks: only the modules passed in differ."""
    rank, world = dist.get_rank(), dist.get_world_size()
    framework.manual_seed(0)
    layers = []
    for width_in, width_out in zip(WIDTHS[:-1], WIDTHS[1:]):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    model = ddp(nn.Sequential(*layers[:-1]))
    optimizer = framework.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = (from_numpy(array) for array in batches(rank))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def backward_synced():
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()

    def backward_alone():
        model.zero_grad()
        with model.no_sync():
            F.cross_entropy(model(x), y).backward()

    def forward_only():
        with framework.no_grad():
            F.cross_entropy(model(x), y)

    flat = framework.zeros(sum(p.numel() for p in model.parameters()))
    return measure(step, backward_synced, backward_alone, forward_only, lambda: dist.all_reduce(flat), dist, world)


def measure(step, backward_synced, backward_alone, forward_only, allreduce, dist, world: int) -> dict:
    for _ in range(WARMUP):
        step()
    dist.barrier()
    step_ms = median_ms(step, STEPS)
    result = {"world": world, "step_ms": step_ms, "samples_per_s": world * BATCH_PER_RANK / step_ms * 1e3}
    if world > 1:
        forward_ms = median_ms(forward_only, STEPS)
        dist.barrier()
        result["allreduce_ms"] = median_ms(allreduce, STEPS)
        dist.barrier()
        result["backward_alone_ms"] = median_ms(backward_alone, STEPS) - forward_ms
        dist.barrier()
        result["backward_with_allreduce_ms"] = median_ms(backward_synced, STEPS) - forward_ms
    return result


def worker(framework: str) -> None:
    result = gradflow_worker() if framework == "gradflow" else torch_worker()
    if int(os.environ.get("RANK", "0")) == 0:
        print("RESULT " + json.dumps(result), flush=True)


# -- the driver: every (framework, ranks) job, one after the other ---------------------------------------
def run_job(framework: str, ranks: int) -> dict:
    sys.path.insert(0, str(REPO_ROOT))
    from gradflow.distributed.launch import mpiexec_command

    with socket.socket() as probe:  # a free port for torch's TCP rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        environment.pop(name, None)
    command = mpiexec_command(ranks, [str(Path(__file__).resolve()), "--worker", framework])
    output = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    for line in output.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{framework} on {ranks} ranks failed:\n{output.stdout}\n{output.stderr}")


def summarise(jobs: dict, ranks: int) -> dict:
    single, multi = jobs[1], jobs[ranks]
    efficiency = multi["samples_per_s"] / (ranks * single["samples_per_s"])
    exposed = multi["backward_with_allreduce_ms"] - multi["backward_alone_ms"]
    hidden = 1.0 - exposed / multi["allreduce_ms"] if multi["allreduce_ms"] > 0 else float("nan")
    return {"runs": jobs, "scaling_efficiency": efficiency, "allreduce_hidden_fraction": hidden}


def main() -> None:
    parser = argparse.ArgumentParser(description="DDP scaling: gradflow (MPI) vs torch (gloo)")
    parser.add_argument("--worker", choices=("gradflow", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--ranks", type=int, default=2, help="the multi-rank job's size (default: 2)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    results = {}
    for framework in ("gradflow", "torch"):
        jobs = {ranks: run_job(framework, ranks) for ranks in (1, args.ranks)}
        results[framework] = summarise(jobs, args.ranks)
    import torch

    record = {
        "suite": "ddp_scaling",
        "model": f"MLP {'-'.join(map(str, WIDTHS))}, SGD momentum, float32, batch {BATCH_PER_RANK} per rank",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        # Other jobs on the machine distort a 2-rank run on 2 cores; the load says how quiet it was.
        "load_average_1_5_15_min": list(os.getloadavg()),
        "versions": {"numpy": np.__version__, "torch": torch.__version__},
        "blas_threads_per_rank": 1,
        "results": results,
    }
    print(
        f"{'':10} {'1 rank':>10} {f'{args.ranks} ranks':>10} {'efficiency':>10} {'bwd ms':>8} "
        f"{'bwd+ar ms':>10} {'ar ms':>7} {'hidden':>7}"
    )
    for framework, summary in results.items():
        single, multi = summary["runs"][1], summary["runs"][args.ranks]
        print(
            f"{framework:10} {single['samples_per_s']:>10,.0f} {multi['samples_per_s']:>10,.0f} "
            f"{summary['scaling_efficiency']:>10.2f} {multi['backward_alone_ms']:>8.2f} "
            f"{multi['backward_with_allreduce_ms']:>10.2f} {multi['allreduce_ms']:>7.2f} "
            f"{summary['allreduce_hidden_fraction']:>7.0%}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
