"""Per-op overhead of the engine on tiny tensors, against raw NumPy and torch-cpu, in one run.

A chain of ``y = y * a + b`` on 16 float32 elements is pure overhead: the
arithmetic costs nanoseconds, so what is measured is the Python (or C++) work of
creating tensors, recording nodes and replaying them. Reports microseconds per
op (each chain step is two ops) for:

- gradflow forward with grad mode on and inputs requiring grad (records the tape),
- gradflow forward + backward,
- gradflow forward under ``no_grad`` (records nothing),
- raw NumPy doing the same arithmetic (the floor any NumPy-backed engine pays),
- torch-cpu forward and forward + backward, when torch is installed,

and the ratios the autograd issue holds gradflow to: forward + backward <= 0.5x
torch-cpu per op, and backward <= 10 us per node.

Run:  PYTHONPATH=. python benchmarks/overhead.py [--steps 2000] [--repeats 7] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from datetime import date

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gradflow as gf  # noqa: E402

SIZE = 16


def _best(run, repeats: int) -> float:
    """Best wall time of ``repeats`` runs (seconds); the minimum is the least disturbed reading."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def framework_chain(lib, steps: int):
    """Forward, forward + backward and no-grad forward of the chain in gradflow (``lib=gf``) or torch."""
    a = lib.full((SIZE,), 1.0001, requires_grad=True)
    b = lib.full((SIZE,), 0.0001, requires_grad=True)
    x = lib.ones(SIZE, requires_grad=True)

    def forward():
        y = x
        for _ in range(steps):
            y = y * a + b
        return y

    def forward_backward():
        forward().sum().backward()
        a.grad = b.grad = x.grad = None

    def forward_no_grad():
        with lib.no_grad():
            forward()

    return forward, forward_backward, forward_no_grad


def numpy_chain(steps: int):
    a = np.full(SIZE, 1.0001, np.float32)
    b = np.full(SIZE, 0.0001, np.float32)
    x = np.ones(SIZE, np.float32)

    def forward():
        y = x
        for _ in range(steps):
            y = y * a + b
        return y

    return forward


def measure(steps: int, repeats: int) -> dict:
    ops = 2 * steps
    per_op = lambda seconds: seconds / ops * 1e6
    forward, forward_backward, forward_no_grad = framework_chain(gf, steps)
    forward_backward()  # warm-up: imports, first-call caches
    results = {
        "gradflow_forward_us": per_op(_best(forward, repeats)),
        "gradflow_forward_backward_us": per_op(_best(forward_backward, repeats)),
        "gradflow_forward_no_grad_us": per_op(_best(forward_no_grad, repeats)),
        "numpy_us": per_op(_best(numpy_chain(steps), repeats)),
    }
    results["gradflow_backward_us"] = results["gradflow_forward_backward_us"] - results["gradflow_forward_us"]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        results["gradflow_forward_backward_gc_off_us"] = per_op(_best(forward_backward, repeats))
    finally:
        if gc_was_enabled:
            gc.enable()
    try:
        import torch
    except ImportError:
        results["torch"] = None
        return results
    torch.set_num_threads(1)  # tiny tensors: threads only add hand-offs
    torch_forward, torch_forward_backward, _ = framework_chain(torch, steps)
    torch_forward_backward()
    results["torch"] = torch.__version__
    results["torch_forward_us"] = per_op(_best(torch_forward, repeats))
    results["torch_forward_backward_us"] = per_op(_best(torch_forward_backward, repeats))
    results["ratio_forward_backward_vs_torch"] = (
        results["gradflow_forward_backward_us"] / results["torch_forward_backward_us"]
    )
    results["ratio_forward_vs_torch"] = results["gradflow_forward_us"] / results["torch_forward_us"]
    return results


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gradflow": gf.__version__,
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def print_table(results: dict) -> None:
    rows = [
        ("gradflow forward (recording)", results["gradflow_forward_us"]),
        ("gradflow backward (per node)", results["gradflow_backward_us"]),
        ("gradflow forward + backward", results["gradflow_forward_backward_us"]),
        ("gradflow forward + backward, GC off", results["gradflow_forward_backward_gc_off_us"]),
        ("gradflow forward, no_grad", results["gradflow_forward_no_grad_us"]),
        ("raw NumPy forward", results["numpy_us"]),
    ]
    if results.get("torch"):
        rows += [
            (f"torch {results['torch']} forward", results["torch_forward_us"]),
            (f"torch {results['torch']} forward + backward", results["torch_forward_backward_us"]),
        ]
    width = max(len(name) for name, _ in rows)
    print(f"{'per op (16 float32 elements)':<{width}}  us/op")
    for name, value in rows:
        print(f"{name:<{width}}  {value:6.2f}")
    if results.get("torch"):
        ratio = results["ratio_forward_backward_vs_torch"]
        print(f"\ngradflow / torch, forward + backward: {ratio:.2f}x (target <= 0.5x)")
        print(f"gradflow / torch, forward:            {results['ratio_forward_vs_torch']:.2f}x")
    backward = results["gradflow_backward_us"]
    print(f"gradflow backward per node:           {backward:.2f} us (target <= 10 us)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="chain length (each step is two ops)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per measurement; the best is reported")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--machine-name", default=platform.node() or "unknown", help="name used in the JSON file")
    args = parser.parse_args(argv)
    results = measure(args.steps, args.repeats)
    print_table(results)
    record = {
        "suite": "overhead",
        "date": date.today().isoformat(),
        "machine": {"name": args.machine_name, **machine()},
        "steps": args.steps,
        "repeats": args.repeats,
        "results": results,
        "median_note": "each figure is the best of `repeats` runs",
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"overhead-{args.machine_name}-{record['date']}.json")
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
