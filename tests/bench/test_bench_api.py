"""gradflow.bench.compare on the CPU (GPU paths under the cuda mark): structure, never timings."""

from __future__ import annotations

import io
import json
import math
import re
import sys

import pytest

import gradflow as gf
from gradflow import cuda
from gradflow.bench import BenchResult, compare
from gradflow.bench.flops import forward_flops, training_step_flops
from gradflow.bench.models import MODELS, workload
from gradflow.bench.result import Cell

PHASES = ("forward", "backward", "optimizer", "total")
STATS = ("median_ms", "q1_ms", "q3_ms", "min_ms", "max_ms")
MACHINE = {"machine": "test"}  # to_json asks gradflow.info only when no description is attached


class TinyNet(gf.nn.Module):
    """A user-defined model: not one of the built-in workloads."""

    def __init__(self):
        super().__init__()
        self.first = gf.nn.Linear(6, 8)
        self.second = gf.nn.Linear(8, 3)

    def forward(self, x):
        return self.second(gf.nn.functional.relu(self.first(x)))


def tiny_inputs(batch_size, device):
    return gf.randn(batch_size, 6, device=device), gf.randint(0, 3, (batch_size,), device=device)


def run_tiny(**options):
    settings = {"devices": ("cpu",), "batch_sizes": (2, 4), "steps": 2, "warmup": 1, "progress": False}
    return compare(TinyNet, tiny_inputs, **{**settings, **options})


def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def test_user_defined_model_is_measured_on_the_cpu():
    result = run_tiny()
    assert isinstance(result, BenchResult)
    for batch in (2, 4):
        cell = result.cell("gradflow", "cpu", batch)
        assert cell["status"] == "ok" and cell["reason"] is None
        for phase in PHASES:
            stats = cell["phases_ms"][phase]
            assert stats["min_ms"] <= stats["q1_ms"] <= stats["median_ms"] <= stats["q3_ms"] <= stats["max_ms"]
        assert cell["samples_per_second"] == pytest.approx(batch / (cell["phases_ms"]["total"]["median_ms"] / 1e3))
        # two Linear layers: 2 * (6*8 + 8*3) per sample forward, 3x for the step
        assert cell["flops_per_step"] == 3 * 2 * (6 * 8 + 8 * 3) * batch
        assert cell["peak_memory_bytes"] > 0 and "tracemalloc" in cell["peak_memory_measure"]


def test_json_has_every_key_and_only_finite_numbers(tmp_path):
    result = run_tiny()
    result.machine = MACHINE
    path = tmp_path / "bench.json"
    text = result.to_json(path)
    data = json.loads(text)
    assert json.loads(path.read_text()) == data
    expected = {"model", "dtype", "steps", "warmup", "phases", "timing", "flops", "machine", "cells"}
    assert expected | {"speedup_over_cpu", "crossover", "torch_ratio", "profiles"} <= set(data)
    assert data["machine"] == MACHINE and data["steps"] == 2 and data["warmup"] == 1
    assert len(data["cells"]) == 2
    for cell in data["cells"]:
        assert {"framework", "device", "batch_size", "status", "samples_per_second", "flops_per_second"} <= set(cell)
        assert {"peak_memory_bytes", "peak_memory_measure", "flops_per_step", "reason"} <= set(cell)
        assert set(cell["phases_ms"]) == set(PHASES)
        assert all(set(stats) == set(STATS) for stats in cell["phases_ms"].values())
    assert all(math.isfinite(number) for number in _numbers(data))


def test_to_json_describes_the_machine_with_gradflow_info(monkeypatch):
    info = pytest.importorskip("gradflow.info")
    # describe() probes the whole machine (slow); the bench only has to embed what it returns
    monkeypatch.setattr(info, "describe", lambda: {"gpu": None, "python": "3.x"})
    data = json.loads(run_tiny(batch_sizes=(2,)).to_json())
    assert data["machine"] == {"gpu": None, "python": "3.x"}


def test_plot_is_a_png(tmp_path):
    path = tmp_path / "bench.png"
    run_tiny().plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_lists_every_cell():
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(run_tiny(devices=("cpu", "tpu")).table())
    text = console.export_text()
    assert "samples/s" in text and "unknown device 'tpu'" in text
    assert text.count("gradflow") >= 3  # title + two measured rows (+ the merged unavailable row)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bar_only_on_a_terminal(terminal, monkeypatch):
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    run_tiny(progress=True)
    assert ("2/2" in stream.getvalue()) is terminal  # a log gets nothing, not a line per redraw


def test_printed_table_is_the_table_as_text(capsys):
    table = run_tiny(devices=("cpu", "tpu")).table()
    print(table)
    out = capsys.readouterr().out
    assert "rich.table.Table object" not in out and out == str(table) + "\n"
    lines = out.splitlines()
    assert lines[0].strip().startswith("gradflow bench: float32, 2 timed steps after 1 warm-up")
    header = next(line for line in lines if "framework" in line)
    for column in ("device", "batch", "forward", "samples/s", "vs cpu", "gradflow/torch", "note"):
        assert column in header  # one header line: printed at the width the table needs, never wrapped
    assert sum(re.match(r"│ gradflow +│ cpu +│", line) is not None for line in lines) == 2
    assert all(line == line.rstrip() for line in lines)
    assert table.rich.row_count == 3 and table.row_count == 3  # the rich Table stays reachable


@pytest.mark.skipif(cuda.is_available(), reason="checks the report of a missing GPU")
def test_missing_cuda_is_unavailable_with_the_reason_and_the_cpu_still_runs():
    result = run_tiny(devices=("cpu", "cuda"))
    assert result.cell("gradflow", "cpu", 2)["status"] == "ok"
    cell = result.cell("gradflow", "cuda", 2)
    assert cell["status"] == "unavailable" and cuda.unavailable_reason() in cell["reason"]
    assert cell["samples_per_second"] is None
    assert result.speedup_over_cpu() == {"cuda": {2: None, 4: None}}
    crossover = result.crossover()["cuda"]
    assert crossover["batch_size"] is None and cuda.unavailable_reason() in crossover["reason"]


def test_unknown_device_string_is_a_row_not_an_error():
    result = run_tiny(devices=("tpu", "cpu"), batch_sizes=(2,))
    assert "unknown device 'tpu'" in result.cell("gradflow", "tpu", 2)["reason"]
    assert result.cell("gradflow", "cpu", 2)["status"] == "ok"


def test_float16_on_the_cpu_is_reported_unavailable():
    cell = run_tiny(dtype="float16", batch_sizes=(2,)).cell("gradflow", "cpu", 2)
    assert cell["status"] == "unavailable" and "float16" in cell["reason"]


def test_out_of_memory_is_recorded_for_that_cell_only():
    def input_fn(batch_size, device):
        if batch_size == 4:
            raise gf.errors.OutOfMemoryError("out of memory allocating 1 TiB")
        return tiny_inputs(batch_size, device)

    result = compare(TinyNet, input_fn, devices=("cpu",), batch_sizes=(2, 4), steps=1, warmup=0, progress=False)
    assert result.cell("gradflow", "cpu", 2)["status"] == "ok"
    cell = result.cell("gradflow", "cpu", 4)
    assert cell["status"] == "out_of_memory" and "1 TiB" in cell["reason"]


def test_custom_loss_optimizer_and_flops_fn_are_used():
    calls = {"loss": 0, "optimizer": 0}

    def loss_fn(output, target):
        calls["loss"] += 1
        return (output**2).mean()

    def optimizer(params):
        calls["optimizer"] += 1
        return gf.optim.SGD(params, lr=0.1)

    result = run_tiny(loss_fn=loss_fn, optimizer=optimizer, flops_fn=lambda batch: 1000 * batch, batch_sizes=(2,))
    assert calls["optimizer"] == 1 and calls["loss"] == 1 + 2 + 1  # warm-up, timed steps, memory step
    assert result.cell("gradflow", "cpu", 2)["flops_per_step"] == 2000


@pytest.mark.parametrize(
    "options",
    [
        {"batch_sizes": (0,)},
        {"batch_sizes": (2.5,)},
        {"steps": 0},
        {"warmup": -1},
        {"dtype": "int8"},
        {"baseline": "jax"},
        {"baseline": "torch"},
    ],
)
def test_bad_arguments_raise_value_error(options):
    with pytest.raises(ValueError, match="compare"):
        run_tiny(**options)


def test_crossover_is_the_first_batch_size_that_stays_ahead():
    def cells(framework, device, step_ms):
        made = []
        for batch, ms in step_ms.items():
            cell = Cell(framework, device, batch)
            stats = dict.fromkeys(STATS, ms)
            cell.measured({phase: stats for phase in PHASES}, 0, "test", None)
            made.append(cell)
        return made

    cpu = cells("gradflow", "cpu", {1: 1.0, 2: 2.0, 4: 4.0, 8: 8.0})
    ahead_then_behind_then_ahead = cells("gradflow", "cuda:0", {1: 0.5, 2: 3.0, 4: 2.0, 8: 2.0})
    never = cells("gradflow", "cuda:1", {1: 2.0, 2: 4.0, 4: 8.0, 8: 9.0})
    result = BenchResult(cpu + ahead_then_behind_then_ahead + never)
    assert result.speedup_over_cpu()["cuda:0"] == {1: 2.0, 2: pytest.approx(2 / 3), 4: 2.0, 8: 4.0}
    found = result.crossover()
    assert found["cuda:0"] == {"batch_size": 4, "reason": None}
    assert found["cuda:1"]["batch_size"] is None and "never" in found["cuda:1"]["reason"]


@pytest.mark.parametrize("name", MODELS)
def test_builtin_models_count_flops(name):
    chosen = workload(name)
    model = chosen.model_fn()
    inputs, targets = chosen.input_fn(2, gf.device("cpu"))
    assert model(inputs).shape == (2, 10) and targets.shape == (2,)
    forward = forward_flops(model, inputs)
    assert forward > 0 and training_step_flops(model, inputs) == 3 * forward
    assert forward_flops(model, chosen.input_fn(4, gf.device("cpu"))[0]) == 2 * forward  # linear in the batch


def test_mlp_flops_match_the_formula():
    chosen = workload("mlp")
    inputs, _ = chosen.input_fn(3, gf.device("cpu"))
    assert forward_flops(chosen.model_fn(), inputs) == 3 * 2 * (784 * 1024 + 1024 * 1024 + 1024 * 10)


def test_attention_flops_match_the_formula():
    attention = gf.nn.MultiheadAttention(8, 2, batch_first=True)
    x = gf.randn(3, 5, 8)
    tokens = 3 * 5
    projections = 2 * tokens * 8 * 8 * 4  # q, k, v and the output projection
    matmuls = 2 * 2 * 3 * 5 * 5 * 8  # Q K^T and weights @ V
    assert forward_flops(attention, x, x, x) == projections + matmuls


def test_torch_baseline_yields_ratios():
    torch = pytest.importorskip("torch")
    chosen = workload("mlp")
    result = compare(
        chosen.model_fn,
        chosen.input_fn,
        devices=("cpu",),
        batch_sizes=(2,),
        steps=1,
        warmup=0,
        baseline="torch",
        progress=False,
    )
    cell = result.cell("torch", "cpu", 2)
    assert cell["status"] == "ok" and cell["peak_memory_bytes"] is None
    ratio = result.torch_ratios()["cpu"][2]
    gradflow_ms = result.cell("gradflow", "cpu", 2)["phases_ms"]["total"]["median_ms"]
    assert ratio == pytest.approx(gradflow_ms / cell["phases_ms"]["total"]["median_ms"])
    assert torch.__version__


def _torch_twins():
    """The torch model and input builders matching TinyNet and tiny_inputs."""
    torch = pytest.importorskip("torch")

    def torch_model():
        return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    def torch_inputs(batch_size, device):
        return torch.randn(batch_size, 6, device=device), torch.randint(0, 3, (batch_size,), device=device)

    return torch, torch_model, torch_inputs


def test_torch_baseline_for_a_user_model_through_baseline_fns():
    _, torch_model, torch_inputs = _torch_twins()
    result = run_tiny(baseline="torch", baseline_fns=(torch_model, torch_inputs), batch_sizes=(2,))
    assert result.torch_ratios()["cpu"][2] > 0


@pytest.mark.cuda
def test_cuda_cells_are_timed_with_events():
    result = run_tiny(devices=("cpu", "cuda"), batch_sizes=(2,))
    cell = result.cell("gradflow", "cuda:0", 2)
    assert cell["status"] == "ok" and cell["peak_memory_bytes"] > 0
    assert "CuPy" in cell["peak_memory_measure"]
    assert result.speedup_over_cpu()["cuda:0"][2] > 0


@pytest.mark.cuda
def test_cuda_event_times_gpu_work():
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    x = gf.randn(512, 512, device="cuda")
    start.record()
    for _ in range(10):
        x = x @ x * 0.001
    end.record()
    end.synchronize()
    assert end.query() and start.elapsed_time(end) > 0
    cuda.reset_peak_memory_stats()
    before = cuda.max_memory_allocated()
    y = gf.zeros(1024, 1024, device="cuda")
    assert cuda.max_memory_allocated() >= before + 1024 * 1024 * 4
    del y


def test_cuda_event_without_a_gpu_or_record():
    event = cuda.Event(enable_timing=True)
    assert event.query()  # an unrecorded event has nothing to wait for
    with pytest.raises(gf.errors.GraphError, match="recorded"):
        event.elapsed_time(cuda.Event(enable_timing=True))
    with pytest.raises(gf.errors.GraphError, match="enable_timing"):
        cuda.Event().elapsed_time(event)
    if not cuda.is_available():
        with pytest.raises(gf.errors.DeviceUnavailableError, match="CUDA is not usable"):
            event.record()


def test_profile_reports_its_figures_per_training_step():
    result = run_tiny(batch_sizes=(4,), profile=True)
    report = result.profiles["cpu"]
    assert "steps 1" in report and "per step" in report
    assert "no steps marked" not in report


@pytest.mark.parametrize("name", MODELS)
def test_torch_twins_have_the_same_architecture_and_parameter_count(name):
    pytest.importorskip("torch")
    chosen = workload(name)
    ours = [(key, tuple(value.shape)) for key, value in chosen.model_fn().named_parameters()]
    theirs = [(key, tuple(value.shape)) for key, value in chosen.torch_model_fn().named_parameters()]
    assert ours == theirs
    assert sum(math.prod(shape) for _, shape in ours) == {"mlp": 1863690, "cnn": 50186, "transformer": 402442}[name]


def test_conv_flops_match_the_formula():
    chosen = workload("cnn")
    inputs, _ = chosen.input_fn(2, gf.device("cpu"))
    conv1 = 2 * 1 * 9 * (2 * 32 * 28 * 28)  # 2 * C_in * k*k per output element (N * C_out * H * W)
    conv2 = 2 * 32 * 9 * (2 * 64 * 14 * 14)
    linear = 2 * 2 * 64 * 7 * 7 * 10
    assert forward_flops(chosen.model_fn(), inputs) == conv1 + conv2 + linear
    grouped = gf.nn.Conv2d(4, 6, (3, 2), groups=2)
    assert forward_flops(grouped, gf.randn(1, 4, 5, 5)) == 2 * (4 // 2) * 3 * 2 * (6 * 3 * 4)


def test_custom_optimizer_or_loss_needs_its_torch_twin_for_the_baseline():
    from gradflow.optim import SGD

    torch, torch_model, torch_inputs = _torch_twins()

    sgd = lambda params: SGD(params, lr=0.1)  # noqa: E731
    with pytest.raises(ValueError, match="custom optimizer= with baseline='torch' needs its torch twin"):
        run_tiny(baseline="torch", baseline_fns=(torch_model, torch_inputs), optimizer=sgd)
    with pytest.raises(ValueError, match="custom loss_fn= with baseline='torch'"):
        run_tiny(baseline="torch", baseline_fns=(torch_model, torch_inputs), loss_fn=lambda out, t: out.sum())
    used = []

    def torch_sgd(params):
        used.append(True)
        return torch.optim.SGD(params, lr=0.1)

    result = run_tiny(
        baseline="torch", baseline_fns=(torch_model, torch_inputs, None, torch_sgd), optimizer=sgd, batch_sizes=(2,)
    )
    assert used and result.cell("torch", "cpu", 2)["status"] == "ok"
