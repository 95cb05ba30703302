"""NCCL all-reduce bandwidth through gradflow.distributed, with nccl-tests' definitions, for 1..N GPUs.

For each message size: time = median over iterations of an in-place float32 ``all_reduce``
(CUDA events on the current stream, after warm-up), algbw = bytes / time and
busbw = algbw * 2 (n - 1) / n (nccl-tests' all_reduce_perf), the figure comparable across
world sizes and with the hardware's link bandwidth. Without arguments the driver starts one
job per world size 1..(GPUs on this machine) with the environment's mpiexec and writes JSON:

    PYTHONPATH=. python3 benchmarks/nccl_allreduce.py --json benchmarks/results/nccl_allreduce-h200-DATE.json
    gradflow run --nproc 2 benchmarks/nccl_allreduce.py --worker       # one job by hand
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SIZES = [2**power for power in range(12, 31, 2)]  # 4 KiB .. 1 GiB
WARMUP, ITERATIONS = 5, 20


def worker() -> None:
    import gradflow as gf
    import gradflow.distributed as dist

    gf.cuda.set_device(dist.get_node_local_rank(fallback_rank=0))
    dist.init_process_group(backend="nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = gf.device("cuda")
    rows = []
    for size in SIZES:
        tensor = gf.ones(size // 4, device=device)
        for _ in range(WARMUP):
            dist.all_reduce(tensor)
        start, end = gf.cuda.Event(enable_timing=True), gf.cuda.Event(enable_timing=True)
        times = []
        for _ in range(ITERATIONS):
            start.record()
            dist.all_reduce(tensor)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        seconds = float(np.median(times))
        algbw = size / seconds / 1e9
        busbw = algbw * 2 * (world - 1) / world
        rows.append({"bytes": size, "time_us": seconds * 1e6, "algbw_GBps": algbw, "busbw_GBps": busbw})
        if rank == 0:
            print(
                f"{world} GPU(s) {size:>12,d} B  {seconds * 1e6:>10.1f} us  algbw {algbw:8.2f}  busbw {busbw:8.2f} GB/s"
            )
    if rank == 0:
        print("RESULT " + json.dumps({"world": world, "rows": rows}), flush=True)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description="NCCL all-reduce bus bandwidth (nccl-tests' definition)")
    parser.add_argument("--worker", action="store_true", help="run as one rank of a job (under mpiexec)")
    parser.add_argument("--max-gpus", type=int, default=None, help="largest world size (default: every GPU)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    sys.path.insert(0, str(REPO_ROOT))
    import gradflow as gf
    from gradflow.distributed.launch import mpiexec_command

    gpus = args.max_gpus or gf.cuda.device_count()
    results = []
    for world in range(1, gpus + 1):
        command = mpiexec_command(world, [str(Path(__file__).resolve()), "--worker"])
        environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
        sys.stdout.write(done.stdout.replace("RESULT ", "# "))
        found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not found:
            raise SystemExit(f"world size {world} failed:\n{done.stderr}")
        results.append(json.loads(found[0][len("RESULT ") :]))
    if args.json:
        record = {"suite": "nccl_allreduce", "definition": "busbw = algbw * 2(n-1)/n (nccl-tests)", "runs": results}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
