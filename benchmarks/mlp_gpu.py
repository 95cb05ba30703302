"""One MLP training step on the GPU: gradflow-cuda eager against torch-cuda eager, in one run.

The step of ``mlp_cpu.py`` (forward, cross-entropy, backward, Adam; MLP
784-1024-1024-10 with ReLU at batch 128, float32), with every tensor on the
GPU. Both frameworks start from the same weights and data; the first losses
must agree. The time of a step is wall-clock from its start until the GPU has
finished it (synchronised each step), the median over the timed steps. Target:
gradflow <= 1.5x torch.

Kernels launched per step are counted two ways when available: gradflow's own
profiler (``gradflow.profiler.profile``; it may count only gradflow's custom
kernels) and CUPTI through ``torch.profiler`` (every kernel on the GPU, CuPy's
and cuBLAS's included, and torch's for the torch step).

Run:  PYTHONPATH=. python3 benchmarks/mlp_gpu.py [--json out.json] [--steps 40] [--warmup 8]
Normally run as the ``mlp`` section of ``kernels_gpu.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from mlp_cpu import BATCH, BETAS, EPS, LR, SIZES, _data, _initial_weights


def build_step(lib, device_name: str = "cuda"):
    """``step()`` of one training step of the MLP in ``lib`` (gradflow or torch: the same API) on
    ``device_name``, from the shared initial weights and data; it returns the loss tensor (no host read)."""
    device = lib.device(device_name)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [lib.nn.Linear(fan_in, fan_out, device=device), lib.nn.ReLU()]
    model = lib.nn.Sequential(*layers[:-1])
    with lib.no_grad():
        for parameter, value in zip(model.parameters(), _initial_weights(), strict=True):
            parameter.copy_(lib.tensor(value, device=device))
    # torch's default for CUDA parameters (foreach); fused is reported by kernels_gpu's adam section.
    optimizer = lib.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    x_host, y_host = _data()
    x, y = lib.tensor(x_host, device=device), lib.tensor(y_host, device=device)

    def step():
        loss = lib.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def _gradflow_step():
    """(step, sync) for gradflow on the GPU; ``step()`` returns the loss tensor."""
    import gradflow as gf

    return build_step(gf), gf.cuda.synchronize


def _torch_step():
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch has no CUDA here")
    return build_step(torch), torch.cuda.synchronize


def time_steps(step, sync, steps: int, warmup: int) -> dict:
    """Median wall-clock milliseconds of a step, each one synchronised."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - started) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "steps": steps}


def gradflow_profiler_launches(step, sync) -> dict:
    """Launches of one step as gradflow.profiler counts them (its own kernels exactly, CuPy's estimated)."""
    from gradflow import profiler

    with profiler.profile(steps=1) as prof:
        step()
        sync()
    summary = prof.summary()
    return {"per_step": summary.kernel_launches_per_step, "summary": summary.to_dict()}


def cupti_kernels(step, sync) -> dict:
    """GPU kernels of one step seen by CUPTI (torch.profiler), memcpy/memset counted apart."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    sync()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        sync()
    names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    copies = [n for n in names if n.lower().startswith(("memcpy", "memset"))]
    return {"kernels": len(names) - len(copies), "memcpy_memset": len(copies)}


def _guard(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # a failure is recorded, the rest still runs
        return {"error": f"{type(exc).__name__}: {exc}"}


def section_mlp(steps: int = 40, warmup: int = 8) -> dict:
    """gradflow-cuda and torch-cuda step times, their ratio, first losses and launch counts."""
    out = {"config": {"sizes": SIZES, "batch": BATCH, "steps": steps, "warmup": warmup}}
    contenders = {"gradflow": _guard(_gradflow_step), "torch": _guard(_torch_step)}
    first_losses = {}
    for name, made in contenders.items():
        if isinstance(made, dict):  # the setup failed
            out[name] = made
            continue
        step, sync = made
        first_losses[name] = _guard(lambda s=step: float(s().item()))
        out[name] = _guard(time_steps, step, sync, steps, warmup)
    out["first_losses"] = first_losses
    mine, theirs = out["gradflow"].get("median_ms"), out["torch"].get("median_ms")
    out["ratio_vs_torch"] = mine / theirs if mine and theirs else None
    # Launch counts last: a profiler failure must not cost the timings.
    if not isinstance(contenders["gradflow"], dict):
        out["gradflow"]["launches_gradflow_profiler"] = _guard(gradflow_profiler_launches, *contenders["gradflow"])
        out["gradflow"]["launches_cupti"] = _guard(cupti_kernels, *contenders["gradflow"])
    if not isinstance(contenders["torch"], dict):
        out["torch"]["launches_cupti"] = _guard(cupti_kernels, *contenders["torch"])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the result here")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=8)
    args = parser.parse_args(argv)
    from kernels_gpu_common import environment, write_json

    import gradflow

    reason = gradflow.cuda.unavailable_reason()
    if reason is not None:
        print(f"no CUDA: {reason}; nothing to measure")
        return 0
    record = {"suite": "mlp_gpu", "environment": environment(), "mlp": section_mlp(args.steps, args.warmup)}
    print(json.dumps(record["mlp"], indent=2, default=str))
    write_json(record, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
