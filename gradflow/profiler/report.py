"""Turn what a Recorder holds into rows (``OpStats``), totals (``Summary``) and a rich table."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field

CPU_DEVICE_NOTE = "no device time: no CUDA op was recorded (CPU ops run synchronously; host time is their time)"
LAUNCH_ESTIMATE_NOTE = (
    "estimate: CuPy exposes no launch counter, so each innermost CUDA op that launched no gradflow kernel "
    "counts as one launch (views launch none, some ops several)"
)


@dataclass
class OpStats:
    """One op name and kind: calls, host time (inclusive and self) and, on CUDA, device time (seconds)."""

    name: str
    kind: str  # "forward", "backward" or "range"
    count: int
    host_total: float
    host_self: float
    host_mean: float
    device_total: float | None = None
    device_self: float | None = None
    device_mean: float | None = None
    gradflow_kernel_launches: int = 0
    devices: list = field(default_factory=list)

    SORT_KEYS = ("host_total", "host_self", "host_mean", "device_total", "device_self", "count")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Summary:
    """Totals of one profile; ``None`` where a figure does not exist on the devices used."""

    wall_time: float
    steps: int | None
    host_in_ops: float  # host time inside outermost recorded ops (nested ops counted once)
    ops_recorded: int
    device_timing: bool
    device_busy: float | None  # sum of innermost CUDA ops' event spans
    host_overhead_share: float | None  # lower bound, see gradflow.profiler's docstring
    gradflow_kernel_launches: int  # exact
    estimated_cupy_launches: int | None
    notes: list = field(default_factory=list)

    def per_step(self, value):
        """``value`` divided by the number of steps (the whole profile when none were marked)."""
        if value is None:
            return None
        return value / (self.steps or 1)

    @property
    def kernel_launches_per_step(self) -> dict:
        exact = self.per_step(self.gradflow_kernel_launches)
        estimated = self.per_step(self.estimated_cupy_launches)
        return {
            "gradflow_kernels_exact": exact,
            "cupy_kernels_estimated": estimated,
            "total_estimated": None if estimated is None else exact + estimated,
        }

    def to_dict(self) -> dict:
        result = asdict(self)
        result["kernel_launches_per_step"] = self.kernel_launches_per_step
        result["per_step_unit"] = "training step" if self.steps else "whole profile (no steps marked)"
        return result


def _resolve_spans(recorder) -> dict:
    """Seconds of every recorded CUDA event pair, by id of its span tuple (the device is synchronized)."""
    if not recorder.saw_cuda:
        return {}
    import cupy

    seconds = {}
    for record in recorder.records.values():
        for span in record.event_spans:
            seconds[id(span)] = cupy.cuda.get_elapsed_time(span[0], span[1]) / 1000.0
    return seconds


def build_rows(recorder) -> list[OpStats]:
    """One OpStats per recorded (name, kind), device figures filled from the synchronized events."""
    seconds = _resolve_spans(recorder)
    recorder.span_seconds = seconds
    rows = []
    for record in recorder.records.values():
        device_total = device_self = device_mean = None
        if seconds and record.event_spans:
            device_total = sum(seconds[id(span)] for span in record.event_spans)
            children = sum(seconds[id(child)] for span in record.event_spans for child in span[2])
            device_self = max(device_total - children, 0.0)
            device_mean = device_total / len(record.event_spans)
        rows.append(
            OpStats(
                name=record.name,
                kind=record.kind,
                count=record.count,
                host_total=record.host_total,
                host_self=record.host_self,
                host_mean=record.host_total / record.count,
                device_total=device_total,
                device_self=device_self,
                device_mean=device_mean,
                gradflow_kernel_launches=record.launches,
                devices=sorted(record.devices),
            )
        )
    return rows


def build_summary(recorder, rows: list[OpStats], wall_time: float, steps: int | None) -> Summary:
    """Totals over the profile; device figures only when a CUDA op was recorded."""
    notes = []
    device_busy = overhead = estimated = None
    seconds = getattr(recorder, "span_seconds", {})
    if seconds:
        # Innermost spans only: a parent's span contains its children's and the gaps between them.
        device_busy = sum(
            seconds[id(span)] for record in recorder.records.values() for span in record.event_spans if not span[2]
        )
        overhead = max(0.0, 1.0 - device_busy / wall_time) if wall_time > 0 else None
        estimated = sum(record.leaf_ops for record in recorder.records.values())
        notes.append("host overhead share is a lower bound (an op's event span includes the device waiting for it)")
        notes.append(LAUNCH_ESTIMATE_NOTE)
    else:
        notes.append(CPU_DEVICE_NOTE)
    if not steps:
        notes.append("no steps marked (call prof.step() or pass steps=): per-step figures cover the whole profile")
    return Summary(
        wall_time=wall_time,
        steps=steps,
        host_in_ops=recorder.top_host,
        ops_recorded=sum(row.count for row in rows if row.kind != "range"),
        device_timing=bool(seconds),
        device_busy=device_busy,
        host_overhead_share=overhead,
        gradflow_kernel_launches=recorder.kernel_launches,
        estimated_cupy_launches=estimated,
        notes=notes,
    )


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def render_table(rows: list[OpStats], summary: Summary):
    """A rich Table of ``rows``; the device columns appear only when device time was measured."""
    from rich.markup import escape  # op names are users' Function names: '[' in one is not markup
    from rich.table import Table

    unit = "step" if summary.steps else "profile"
    table = Table(title="gradflow profiler: top ops", title_justify="left")
    table.add_column("op", no_wrap=True)  # names are what the reader scans for: never cut them
    table.add_column("kind")
    table.add_column(f"calls/{unit}", justify="right", no_wrap=True)
    table.add_column("host total", justify="right")
    table.add_column("host self", justify="right")
    table.add_column("host mean", justify="right")
    if summary.device_timing:
        table.add_column("device total", justify="right")
        table.add_column("device self", justify="right")
        table.add_column("device mean", justify="right")
    table.add_column("gf kernels", justify="right")
    for row in rows:
        cells = [
            escape(row.name),
            escape(row.kind),
            f"{summary.per_step(row.count):g}",
            _time(row.host_total),
            _time(row.host_self),
            _time(row.host_mean),
        ]
        if summary.device_timing:
            cells += [_time(row.device_total), _time(row.device_self), _time(row.device_mean)]
        cells.append(str(row.gradflow_kernel_launches))
        table.add_row(*cells)
    return table


def summary_lines(summary: Summary) -> list[str]:
    """The totals as readable lines (under the table in ``report()``)."""
    unit = "per step" if summary.steps else "per profile (no steps marked)"
    lines = [
        f"wall time {_time(summary.wall_time)}; steps {summary.steps or '-'}; "
        f"{summary.ops_recorded} ops recorded ({summary.per_step(summary.ops_recorded):g} {unit})",
        f"host time inside ops {_time(summary.host_in_ops)} "
        f"({_share(summary.host_in_ops, summary.wall_time)} of wall; the rest is Python between ops)",
    ]
    if summary.device_timing:
        lines.append(
            f"device busy {_time(summary.device_busy)}; host overhead (wall time the device was not busy) "
            f">= {summary.host_overhead_share:.1%}"
        )
        launches = summary.kernel_launches_per_step
        lines.append(
            f"kernel launches {unit}: {launches['gradflow_kernels_exact']:g} gradflow kernels (exact) + "
            f"~{launches['cupy_kernels_estimated']:g} CuPy kernels (estimated) = ~{launches['total_estimated']:g}"
        )
    else:
        lines.append("device time: absent (" + CPU_DEVICE_NOTE + ")")
        lines.append(
            f"kernel launches {unit}: {summary.per_step(summary.gradflow_kernel_launches):g} (CPU ops launch none)"
        )
    lines += [f"note: {note}" for note in summary.notes if note != CPU_DEVICE_NOTE]
    return lines


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole > 0 else "-"


def render_report(table, summary: Summary, width: int) -> str:
    """The table and the summary lines as plain text."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(table)
    for line in summary_lines(summary):
        console.print(line, highlight=False, markup=False)
    return buffer.getvalue()
