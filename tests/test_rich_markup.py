"""Text that rich would read as markup (``'gradflow[cuda12]'``) reaches the reader as written.

Every table gradflow prints through rich (``gradflow info``, ``gradflow bench``, the profiler's
report) quotes text from outside: install commands in reasons, device names, users' range names.
"""

from __future__ import annotations

import io

from rich.console import Console

import gradflow as gf
from gradflow import info, profiler
from gradflow.bench import BenchResult
from gradflow.bench.result import Cell

PHASES = ("forward", "backward", "optimizer", "total")
INSTALL = "install the CUDA extra: pip install 'gradflow[cuda12]' or 'gradflow[cuda13]'"


def rendered(renderable) -> str:
    console = Console(file=io.StringIO(), width=300, color_system=None, force_terminal=False)
    console.print(renderable)
    return " ".join(console.file.getvalue().split())  # compare without rich's line breaks


def fake_machine(reason: str) -> dict:
    """``describe()``'s shape with CUDA missing for ``reason`` (no probing of this machine)."""
    no_gpu = {"available": False, "reason": reason, "runtime_version": None, "driver_version": None, "devices": []}
    return {
        "gradflow": {"version": "0.1.0", "location": "/site-packages/gradflow[x]"},
        "python": {"version": "3.12.0", "implementation": "CPython", "executable": "/usr/bin/python"},
        "platform": {"system": "Linux", "release": "6.0", "machine": "x86_64", "processor": None, "cpu_count": 2},
        "numpy": {"version": "2.0", "blas": {"name": "openblas", "version": "0.3", "threads": 2}},
        "scipy": {"version": "1.14", "status": "installed"},
        "cupy": {"version": None, "status": f"not installed ({reason})"},
        "cuda": no_gpu,
        "kernels": {
            "architecture": "compute_90",
            "architecture_source": "no GPU: default compute_90",
            "nvrtc": "cuda-python not installed (pip install 'gradflow[cuda12]')",
            "families": {},
            "all_ok": False,
        },
        "auto_device": {"device": "cpu", "reason": reason},
    }


def test_gradflow_info_keeps_bracketed_install_commands():
    text = rendered(info.render(fake_machine(INSTALL)))
    assert text.count("'gradflow[cuda12]' or 'gradflow[cuda13]'") == 3  # usable, CuPy, resolves to
    assert "pip install 'gradflow[cuda12]')" in text  # the NVRTC row
    assert "/site-packages/gradflow[x]" in text
    assert "'gradflow' or 'gradflow'" not in text


def test_bench_table_keeps_bracketed_reasons_and_device_names():
    cpu = Cell("gradflow", "cpu", 8)
    cpu.measured({p: dict.fromkeys(("median_ms", "q1_ms", "q3_ms"), 1.0) for p in PHASES}, None, "none", None)
    missing = Cell("gradflow", "cuda[cuda12]", 8)
    missing.unavailable(INSTALL)
    table = BenchResult([cpu, missing], steps=1, model="mlp[wide]").table()
    for text in (rendered(table), " ".join(str(table).split())):
        assert "unavailable: " + INSTALL in text
        assert "cuda[cuda12]" in text and "bench mlp[wide]:" in text
        assert f"no crossover (no batch size measured on both: {INSTALL})" in text


def test_profiler_report_keeps_bracketed_range_names():
    with profiler.profile() as prof:
        with profiler.record_function("load [bold]batch[/bold]"):
            gf.ones(2) + 1
    assert "load [bold]batch[/bold]" in prof.report()
    assert "load [bold]batch[/bold]" in rendered(prof.table())
