"""Timing, environment and report helpers of ``kernels_gpu.py`` (the sections live there).

``GpuTimer`` times batches of calls with CUDA events while a spin kernel holds the GPU back
until each batch is queued; ``environment`` describes the machine; ``headlines`` and
``format_table`` judge a results record against the targets; ``write_json`` writes it
atomically. Nothing here imports CuPy at module level: the tests use these on CPU machines.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
import traceback
from datetime import datetime, timezone

import numpy as np

SECTIONS = ("copy", "adam", "rowwise", "mlp")
COPY_BYTES = 1 << 30
ADAM_PARAMS, ADAM_TENSORS, ADAM_BYTES_PER_PARAM = 64 * 2**20, 100, 28
ROW_SHAPES = ((4096, 4096), (65536, 1024))
ROTATE = 3  # input buffers cycled through, each larger than the L2
TARGETS = {"adam": 0.80, "rowwise": 0.70, "mlp": 1.5}

_SPIN_SOURCE = r"""
extern "C" __global__ void gf_bench_spin(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now)); } while (now - start < ns);
}
"""


def _error(exc: BaseException) -> dict:
    """What a failed section records: the error line and the last frames of its traceback."""
    return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=-4)}


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # every section records its failure and the run goes on
        return _error(exc)


def environment() -> dict:
    """GPU, driver, CUDA runtime, library versions and the date; missing pieces say why."""
    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        import cupy

        info["cupy"] = cupy.__version__
        runtime = cupy.cuda.runtime
        props = runtime.getDeviceProperties(0)
        name = props["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["compute_capability"] = f"{props['major']}.{props['minor']}"
        info["sm_count"] = int(props["multiProcessorCount"])
        info["memory_bytes"] = int(props["totalGlobalMem"])
        info["l2_bytes"] = int(props["l2CacheSize"])
        info["cuda_driver_api"] = int(runtime.driverGetVersion())
        info["cuda_runtime"] = int(runtime.runtimeGetVersion())
    except Exception as exc:
        info["cuda_error"] = f"{type(exc).__name__}: {exc}"
    try:
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip()
        info["driver"] = info["nvidia_smi"].split(",")[1].strip()
    except Exception as exc:
        info["driver_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["torch_cuda_available"] = bool(torch.cuda.is_available())
    except Exception as exc:
        info["torch_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import gradflow

        info["gradflow"] = getattr(gradflow, "__version__", None)
        info["gradflow_cuda_unavailable"] = gradflow.cuda.unavailable_reason()
    except Exception as exc:
        info["gradflow_error"] = f"{type(exc).__name__}: {exc}"
    return info


class GpuTimer:
    """CUDA-event timing of batches of calls, with the GPU held back until each batch is queued."""

    def __init__(self, cupy, quick: bool = False):
        self.cupy = cupy
        self.quick = quick
        self.spin = None
        self.spin_error = None
        try:
            spin = cupy.RawKernel(_SPIN_SOURCE, "gf_bench_spin")
            spin((1,), (1,), (np.uint64(1000),))
            cupy.cuda.runtime.deviceSynchronize()
            self.spin = spin
        except Exception as exc:  # without the spin, events include the host's launch gaps
            self.spin_error = f"{type(exc).__name__}: {exc}"

    def _events(self, kind: str):
        if kind == "torch":
            import torch

            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            return start, end, lambda: start.elapsed_time(end)
        start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
        return start, end, lambda: self.cupy.cuda.get_elapsed_time(start, end)

    def measure(self, fn, calls: int = 10, batches: int = 11, warmup: int = 3, events: str = "cupy") -> dict:
        """Median per-call milliseconds of ``fn(i)`` (``i`` picks the rotated buffer) over ``batches``."""
        if self.quick:
            calls, batches, warmup = max(1, calls // 4), 3, 1
        sync = self.cupy.cuda.runtime.deviceSynchronize
        for i in range(warmup):
            fn(i)
        sync()
        started = time.perf_counter()
        for i in range(calls):
            fn(i)
        host_s = time.perf_counter() - started  # how long the host takes to queue one batch
        sync()
        spin_ns = int(min(max(2.0 * host_s * 1e9 + 2e5, 1e5), 5e8))
        per_call, host_bound = [], 0
        for batch in range(batches):
            start, end, elapsed = self._events(events)
            if self.spin is not None:
                self.spin((1,), (1,), (np.uint64(spin_ns),))
            queued = time.perf_counter()
            start.record()
            for i in range(calls):
                fn(batch * calls + i)
            end.record()
            host_bound += (time.perf_counter() - queued) * 1e9 > spin_ns
            end.synchronize()
            per_call.append(elapsed() / calls)
        return {
            "median_ms": statistics.median(per_call),
            "min_ms": min(per_call),
            "max_ms": max(per_call),
            "calls_per_batch": calls,
            "batches": batches,
            "host_bound_batches": int(host_bound) if self.spin is not None else None,
        }


def bandwidth(nbytes: float, ms: float | None) -> float | None:
    """GB/s (1e9 bytes) moving ``nbytes`` in ``ms`` milliseconds."""
    return None if not ms else nbytes / (ms * 1e-3) / 1e9


def _free(cupy) -> None:
    cupy.get_default_memory_pool().free_all_blocks()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def headlines(record: dict) -> list[dict]:
    """One line per target: what was measured, the target, and whether it was met (None: not measured)."""
    sections = record.get("sections", {})
    lines = []
    copy = sections.get("copy", {})
    lines.append({"name": "copy bandwidth", "value": copy.get("gb_per_s"), "unit": "GB/s", "target": None})
    adam = sections.get("adam", {})
    frac = adam.get("gradflow_fused", {}).get("fraction_of_copy")
    lines.append({"name": "adam fused, % of copy", "value": _pct(frac), "unit": "%", "target": ">= 80%"})
    lines[-1]["met"] = None if frac is None else frac >= TARGETS["adam"]
    speed = adam.get("speedup_vs_torch_fused")
    lines.append({"name": "adam fused, speedup vs torch fused", "value": speed, "unit": "x", "target": "> 1"})
    lines[-1]["met"] = None if speed is None else speed > 1.0
    for key, entry in sections.get("rowwise", {}).items():
        if not isinstance(entry, dict) or "gradflow" not in entry:
            continue
        frac, ratio = entry["gradflow"].get("fraction_of_copy"), entry.get("ratio_vs_torch")
        met = None if frac is None else frac >= TARGETS["rowwise"] and (ratio is None or ratio <= 1.0)
        value = f"{_fmt(_pct(frac))}% copy, {_fmt(ratio)}x torch"
        lines.append({"name": key, "value": value, "unit": "", "target": ">= 70%, <= 1x", "met": met})
    ratio = sections.get("mlp", {}).get("ratio_vs_torch")
    lines.append({"name": "mlp step vs torch", "value": ratio, "unit": "x", "target": "<= 1.5x"})
    lines[-1]["met"] = None if ratio is None else ratio <= TARGETS["mlp"]
    return lines


def _pct(fraction):
    return None if fraction is None else 100.0 * fraction


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def format_table(record: dict, max_errors: int = 8) -> str:
    """The headline table, plain text; errors of sections listed under it."""
    rows = [("measure", "value", "target", "met")]
    for line in headlines(record):
        value = _fmt(line["value"]) + (line["unit"] if line["value"] is not None and line["unit"] != "x" else "")
        if line["unit"] == "x" and line["value"] is not None:
            value += "x"
        met = {True: "yes", False: "NO", None: "-"}[line.get("met")]
        rows.append((line["name"], value, line["target"] or "", met))
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    text = [f"kernels_gpu on {record.get('environment', {}).get('gpu', 'unknown GPU')}"]
    text += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    errors = [
        f"error in {where}: {entry}"
        for name, sec in record.get("sections", {}).items()
        for where, entry in _errors(sec, name)
    ]
    if record.get("error"):
        errors.insert(0, f"error: {record['error']}")
    text += errors[:max_errors]
    if len(errors) > max_errors:
        text.append(f"... and {len(errors) - max_errors} more errors (see the JSON)")
    return "\n".join(text)


def _errors(node, where: str):
    if isinstance(node, dict):
        if "error" in node:
            yield where, node["error"]
        for key, value in node.items():
            yield from _errors(value, f"{where}.{key}")


def write_json(record: dict, path: str | None) -> None:
    """Write atomically (a timeout mid-run leaves the previous complete file)."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        json.dump(record, handle, indent=2, default=str)
    os.replace(temporary, path)
