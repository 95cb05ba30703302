"""The terminal table (rich) and the PNG plot (matplotlib, Agg canvas) of a BenchResult."""

from __future__ import annotations

import io
import shutil
import sys


class TextTable:
    """A rich Table that also prints as itself: ``print(table)`` writes the rendered text (no colour).

    ``console.print(table)`` renders it in colour (``__rich__``); ``str(table)`` is the plain text without
    trailing spaces, at the width the table needs (no wrapping: what a log or a file wants), or at most the
    terminal's width when stdout is a terminal; other attributes are the rich Table's (``title``, ``caption``,
    ``columns``, ``row_count``, ...).
    """

    def __init__(self, table):
        self.rich = table

    def __rich__(self):
        return self.rich

    def __getattr__(self, name):
        if name == "rich":  # not set yet (copy/pickle): do not recurse
            raise AttributeError(name)
        return getattr(self.rich, name)

    def __str__(self) -> str:
        from rich.console import Console
        from rich.measure import Measurement

        measuring = Console(file=io.StringIO(), width=10_000, color_system=None, force_terminal=False)
        width = Measurement.get(measuring, measuring.options, self.rich).maximum
        if sys.stdout is not None and sys.stdout.isatty():  # a reader at a terminal: fit it, as rich would
            width = min(width, shutil.get_terminal_size().columns)
        console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
        console.print(self.rich)
        return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())

    def __repr__(self) -> str:
        return f"<TextTable {self.rich.title!r}: {self.rich.row_count} rows; print() it to read it>"


def _ms(summary: dict) -> str:
    return f"{summary['median_ms']:.2f} [{summary['q1_ms']:.2f}-{summary['q3_ms']:.2f}]"


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _merge_skipped(cells):
    """(cell, batch label) pairs; a run of skipped cells with one reason becomes one row."""
    merged = []
    for cell in cells:
        previous = merged[-1][0] if merged else None
        same = previous is not None and not cell.ok and not previous.ok
        if same and (previous.framework, previous.device, previous.reason) == (
            cell.framework,
            cell.device,
            cell.reason,
        ):
            merged[-1][1].append(cell.batch_size)
        else:
            merged.append((cell, [cell.batch_size]))
    return [(cell, ",".join(str(b) for b in batches)) for cell, batches in merged]


def build_table(result) -> TextTable:
    """One row per cell: phase times (median [IQR] ms), samples/s, GFLOP/s, peak memory, ratios.

    Every text from outside (device names, reasons, the model name) is escaped: rich would read
    ``'gradflow[cuda12]'`` in a reason as markup and print ``'gradflow'``.
    """
    from rich.markup import escape
    from rich.table import Table

    title = f"gradflow bench{' ' + result.model if result.model else ''}: {result.dtype}, {result.steps} timed steps"
    table = Table(title=escape(f"{title} after {result.warmup} warm-up, times in ms: median [IQR]"))
    for name in ("framework", "device", "batch", "forward", "backward", "optimizer", "step"):
        table.add_column(name, justify="right" if name not in ("framework", "device") else "left")
    for name in ("samples/s", "GFLOP/s", "peak MiB", "vs cpu", "gradflow/torch", "note"):
        table.add_column(name, justify="right" if name != "note" else "left")
    speedups = {f: result.speedup_over_cpu(f) for f in ("gradflow", "torch")}
    ratios = result.torch_ratios()
    for cell, batches in _merge_skipped(result.cells):
        if not cell.ok:
            table.add_row(
                escape(cell.framework),
                escape(cell.device),
                batches,
                *["-"] * 9,
                escape(f"{cell.status}: {cell.reason}"),
            )
            continue
        flops = cell.flops_per_second
        peak = cell.peak_memory_bytes
        table.add_row(
            escape(cell.framework),
            escape(cell.device),
            str(cell.batch_size),
            *(_ms(cell.phases[phase]) for phase in ("forward", "backward", "optimizer", "total")),  # digits only
            f"{cell.samples_per_second:,.0f}",
            "-" if flops is None else f"{flops / 1e9:,.1f}",
            "-" if peak is None else f"{peak / 2**20:,.1f}",
            _ratio(speedups[cell.framework].get(cell.device, {}).get(cell.batch_size)),
            _ratio(ratios.get(cell.device, {}).get(cell.batch_size)) if cell.framework == "gradflow" else "",
            "",
        )
    lines = []
    for device, found in result.crossover().items():
        if found["batch_size"] is not None:
            lines.append(f"{device} overtakes the CPU from batch {found['batch_size']}")
        else:
            lines.append(f"{device}: no crossover ({found['reason']})")
    table.caption = escape("\n".join(lines)) or None
    return TextTable(table)


def write_plot(result, path) -> None:
    """samples/s against batch size (log-log), one line per (framework, device) with measured cells."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on an Agg canvas: no pyplot, so the user's interactive backend is left alone.
    figure = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    lines = 0
    for framework in dict.fromkeys(cell.framework for cell in result.cells):
        for device, by_batch in result._rows(framework).items():
            points = sorted((b, c.samples_per_second) for b, c in by_batch.items() if c.ok)
            if points:
                style = "-o" if framework == "gradflow" else "--s"
                axes.plot(*zip(*points), style, label=f"{framework} {device}")
                lines += 1
    axes.set_xscale("log", base=2)
    if lines:
        axes.set_yscale("log")
        axes.legend()
    else:
        axes.text(0.5, 0.5, "no cell was measured", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("batch size")
    axes.set_ylabel("samples/s (median step)")
    axes.set_title(f"gradflow bench{' ' + result.model if result.model else ''} ({result.dtype})")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png")
