"""Where the host time of one gradflow-cuda training step goes: cProfile over the MLP step.

The step of ``mlp_gpu.py`` (Linear 784-1024-1024-10 with ReLU, batch 128, float32,
cross-entropy, backward, Adam, zero_grad) runs ``--warmup`` times, then ``--steps`` times
under cProfile. Printed (and written to ``--out``): the top ``--top`` functions by tottime and
by cumtime, and the host time per step measured twice without the profiler: steps issued
back to back (only the host's work, as long as the GPU keeps up), and each step followed by
``cupy.cuda.runtime.deviceSynchronize()`` (host work plus whatever device time it does not
hide). The step's own synchronisations (host reads of device data) count in both.

On a machine without CUDA it says so and exits 0.

Run:  PYTHONPATH=. python3 benchmarks/profile_mlp_gpu.py [--steps 30] [--warmup 5] [--out profile.txt]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # gradflow from the source tree; mlp_cpu, mlp_gpu beside this file

from mlp_cpu import BATCH, SIZES  # noqa: E402
from mlp_gpu import build_step  # noqa: E402 - the same step mlp_gpu.py times


def per_step_ms(step, sync, steps: int, sync_each: bool) -> dict:
    """Median, min and mean wall-clock ms per step (each synchronised when ``sync_each``)."""
    sync()
    times = []
    started_all = time.perf_counter()
    for _ in range(steps):
        started = time.perf_counter()
        step()
        if sync_each:
            sync()
        times.append((time.perf_counter() - started) * 1e3)
    sync()
    total = (time.perf_counter() - started_all) * 1e3
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "mean_ms_incl_final_sync": total / steps,
    }


def profile_text(step, sync, steps: int, top: int) -> str:
    """cProfile of ``steps`` steps: top ``top`` functions by tottime, then by cumtime."""
    profiler = cProfile.Profile()
    sync()
    profiler.enable()
    for _ in range(steps):
        step()
    sync()
    profiler.disable()
    parts = []
    for key in ("tottime", "cumtime"):
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats(key).print_stats(top)
        parts.append(f"== top {top} by {key} over {steps} steps (divide times by {steps} for one step) ==")
        parts.append(buffer.getvalue())
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="profiled and timed steps (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compiles kernels; default 5)")
    parser.add_argument("--top", type=int, default=35, help="functions listed per ordering (default 35)")
    parser.add_argument("--out", help="also write the report to this path")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to check the script itself")
    args = parser.parse_args(argv)

    import gradflow as gf

    if args.device == "cpu":
        name = "cpu"

        def sync():
            pass

    else:
        if not gf.cuda.is_available():
            print(f"profile_mlp_gpu: no CUDA device here ({gf.cuda.unavailable_reason()}); nothing to profile")
            return 0
        import cupy

        name = repr(cupy.cuda.runtime.getDeviceProperties(0)["name"])

        def sync():
            cupy.cuda.runtime.deviceSynchronize()

    step = build_step(gf, args.device)
    for _ in range(args.warmup):
        step()
    sync()
    first_loss = float(step().item())
    lines = [
        f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, Adam; device: {name}",
        f"loss after {args.warmup + 1} steps: {first_loss:.6f}",
    ]
    for label, sync_each in (("steps back to back (host time)", False), ("deviceSynchronize after each step", True)):
        timing = per_step_ms(step, sync, args.steps, sync_each)
        lines.append(
            f"{label}: median {timing['median_ms']:.3f} ms, min {timing['min_ms']:.3f} ms, "
            f"mean incl. final sync {timing['mean_ms_incl_final_sync']:.3f} ms per step"
        )
    lines.append(profile_text(step, sync, args.steps, args.top))
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
