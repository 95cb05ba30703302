"""Jobs that go wrong on purpose (run by test_faults.py): ``faults_worker.py MODE``.

mismatch           ranks wrap models of different shapes: DDP raises the typed error on every rank
raise              rank 1 raises while rank 0 waits in a collective: the job must end in seconds
raise_before_init  rank 1 raises before init_process_group: the job must end in seconds too
timeout            rank 1 sleeps past the 2 s timeout: rank 0's all_reduce names it and the job ends
"""

from __future__ import annotations

import sys
import time

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn
from gradflow.errors import DistributedError
from gradflow.nn.parallel import DistributedDataParallel

mode = sys.argv[1]
if mode == "raise_before_init" and int(__import__("os").environ["RANK"]) == 1:
    raise ValueError("rank 1 failed on purpose before init")
dist.init_process_group(backend="mpi", timeout=2 if mode == "timeout" else 60)
rank = dist.get_rank()

if mode == "mismatch":
    model = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 4 if rank == 0 else 6))
    try:
        DistributedDataParallel(model)
    except DistributedError as error:
        sys.stdout.write(f"rank {rank} raised DistributedError: {error}\n")  # one write: ranks share stdout
        sys.stdout.flush()
    dist.destroy_process_group()
elif mode in ("raise", "raise_before_init"):
    if rank == 1:
        time.sleep(0.5)
        raise ValueError("rank 1 failed on purpose")
    dist.all_reduce(gf.ones(3))  # would wait 60 s for rank 1 without the abort
    print("rank 0 finished the all_reduce: the job did not fail fast", flush=True)
elif mode == "timeout":
    if rank == 1:
        time.sleep(30)  # a peer that never arrives in time
    dist.all_reduce(gf.ones(3))
    print(f"rank {rank} finished the all_reduce", flush=True)
