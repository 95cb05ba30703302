"""The result of ``compare``: one cell per (framework, device, batch size), with tables, JSON and a plot."""

from __future__ import annotations

import json
import math

from .. import info
from ..errors import ArgumentKeyError
from .report import TextTable, build_table, write_plot

__all__ = ["BenchResult", "Cell"]

_PHASES = ("forward", "backward", "optimizer", "total")


class Cell:
    """One measured (or skipped) combination; ``status`` is 'ok', 'unavailable' or 'out_of_memory'."""

    def __init__(self, framework: str, device: str, batch_size: int):
        self.framework, self.device, self.batch_size = framework, device, batch_size
        self.status = "ok"
        self.reason: str | None = None
        self.phases: dict | None = None
        self.peak_memory_bytes: int | None = None
        self.peak_memory_measure: str | None = None
        self.flops_per_step: int | None = None

    def unavailable(self, reason: str) -> None:
        self.status, self.reason = "unavailable", reason

    def out_of_memory(self, reason: str) -> None:
        self.status, self.reason = "out_of_memory", reason

    def measured(self, phases: dict, peak_bytes, peak_measure: str, flops) -> None:
        self.phases, self.peak_memory_bytes, self.peak_memory_measure = phases, peak_bytes, peak_measure
        self.flops_per_step = flops

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def step_seconds(self) -> float | None:
        return self.phases["total"]["median_ms"] / 1e3 if self.ok else None

    @property
    def samples_per_second(self) -> float | None:
        return self.batch_size / self.step_seconds if self.ok and self.step_seconds > 0 else None

    @property
    def flops_per_second(self) -> float | None:
        if not self.ok or self.flops_per_step is None or self.step_seconds <= 0:
            return None
        return self.flops_per_step / self.step_seconds

    def to_dict(self) -> dict:
        return {
            "framework": self.framework,
            "device": self.device,
            "batch_size": self.batch_size,
            "status": self.status,
            "reason": self.reason,
            "phases_ms": self.phases,
            "samples_per_second": self.samples_per_second,
            "flops_per_step": self.flops_per_step,
            "flops_per_second": self.flops_per_second,
            "peak_memory_bytes": self.peak_memory_bytes,
            "peak_memory_measure": self.peak_memory_measure,
        }


class BenchResult:
    """Everything ``compare`` measured: ``.table()``, ``.to_json()``, ``.plot(path)`` and the derived ratios.

    ``speedup_over_cpu()``: samples/s of each device over the CPU's, per batch size;
    ``crossover()``: the smallest batch size from which a device beats the CPU and stays ahead;
    ``torch_ratios()``: gradflow's step time over torch's, per device and batch size (>1: gradflow slower).
    """

    def __init__(self, cells, dtype="float32", steps=0, warmup=0, profiles=None, model=None, machine=None):
        self.cells = list(cells)
        self.dtype, self.steps, self.warmup, self.model = dtype, steps, warmup, model
        self.profiles = dict(profiles or {})
        self.machine = machine

    def cell(self, framework: str, device: str, batch_size: int) -> dict:
        """The figures of one cell as a dict (KeyError when there is no such cell)."""
        for cell in self.cells:
            if (cell.framework, cell.device, cell.batch_size) == (framework, device, batch_size):
                return cell.to_dict()
        raise ArgumentKeyError(f"BenchResult.cell: no cell ({framework!r}, {device!r}, {batch_size})")

    def _rows(self, framework: str) -> dict:
        rows: dict = {}
        for cell in self.cells:
            if cell.framework == framework:
                rows.setdefault(cell.device, {})[cell.batch_size] = cell
        return rows

    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys(cell.device for cell in self.cells))

    @property
    def batch_sizes(self) -> list[int]:
        return sorted({cell.batch_size for cell in self.cells})

    def speedup_over_cpu(self, framework: str = "gradflow") -> dict:
        """{device: {batch_size: samples/s over the CPU's, or None where either was not measured}}."""
        rows = self._rows(framework)
        cpu = rows.get("cpu", {})
        speedups = {}
        for device, by_batch in rows.items():
            if device == "cpu":
                continue
            speedups[device] = {}
            for batch, cell in by_batch.items():
                base = cpu.get(batch)
                ok = cell.ok and base is not None and base.ok
                speedups[device][batch] = cell.samples_per_second / base.samples_per_second if ok else None
        return speedups

    def crossover(self, framework: str = "gradflow") -> dict:
        """{device: {"batch_size": b or None, "reason": why None}} for each non-CPU device."""
        rows = self._rows(framework)
        found = {}
        for device, speedups in self.speedup_over_cpu(framework).items():
            measured = {batch: ratio for batch, ratio in sorted(speedups.items()) if ratio is not None}
            if not measured:
                cells = [rows.get("cpu", {}).get(b) for b in speedups] + list(rows[device].values())
                reasons = sorted({c.reason for c in cells if c is not None and c.reason})
                why = "; ".join(reasons) or "the CPU was not measured"
                found[device] = {"batch_size": None, "reason": f"no batch size measured on both: {why}"}
                continue
            batch = None
            for candidate in measured:
                if all(ratio > 1 for b, ratio in measured.items() if b >= candidate):
                    batch = candidate
                    break
            reason = None
            if batch is None:
                best = max(measured, key=measured.get)
                reason = (
                    f"{device} never stays ahead of the CPU at the batch sizes measured "
                    f"(best: {measured[best]:.2f}x at batch {best}); try larger batch sizes"
                )
            found[device] = {"batch_size": batch, "reason": reason}
        return found

    def torch_ratios(self) -> dict:
        """{device: {batch_size: gradflow step time / torch step time, or None}} (empty without a baseline)."""
        torch_rows = self._rows("torch")
        ratios = {}
        for device, by_batch in self._rows("gradflow").items():
            if device not in torch_rows:
                continue
            ratios[device] = {}
            for batch, cell in by_batch.items():
                other = torch_rows[device].get(batch)
                ok = cell.ok and other is not None and other.ok and other.step_seconds > 0
                ratios[device][batch] = cell.step_seconds / other.step_seconds if ok else None
        return ratios

    def to_dict(self) -> dict:
        """Every figure, the derived ratios and the machine description (``gradflow.info.describe()``)."""
        if self.machine is None:
            self.machine = info.describe()
        frameworks = list(dict.fromkeys(cell.framework for cell in self.cells))
        return _finite(
            {
                "model": self.model,
                "dtype": self.dtype,
                "steps": self.steps,
                "warmup": self.warmup,
                "phases": "forward = model + loss; backward = loss.backward(); optimizer = step() + zero_grad()",
                "timing": "CUDA events on GPUs (one synchronisation per step), time.perf_counter on the CPU",
                "flops": "counted matmul/conv/attention FLOPs of the forward, backward = 2x forward",
                "machine": self.machine,
                "cells": [cell.to_dict() for cell in self.cells],
                "speedup_over_cpu": {f: _keys_to_str(self.speedup_over_cpu(f)) for f in frameworks},
                "crossover": {f: self.crossover(f) for f in frameworks},
                "torch_ratio": _keys_to_str(self.torch_ratios()),
                "profiles": self.profiles,
            }
        )

    def to_json(self, path=None, indent: int = 2) -> str:
        """The JSON text of ``to_dict()`` (every number finite); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        return text

    def table(self) -> TextTable:
        """Every cell as a table, with the crossover batch sizes as its caption.

        ``print(result.table())`` prints it as text; ``rich.console.Console().print(...)`` in colour;
        its ``.rich`` is the ``rich.table.Table``.
        """
        return build_table(self)

    def plot(self, path) -> None:
        """Write a PNG of samples/s against batch size: one line per (framework, device) that ran."""
        write_plot(self, path)


def _keys_to_str(nested: dict) -> dict:
    return {outer: {str(key): value for key, value in inner.items()} for outer, inner in nested.items()}


def _finite(value):
    """Replace NaN and infinities (never expected, but JSON has no spelling for them) with None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
