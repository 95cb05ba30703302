"""``gradflow bench`` on the CPU: short runs, the files it writes, and one-line errors for bad options."""

from __future__ import annotations

import json

import pytest

from gradflow import cli, cuda


@pytest.fixture(autouse=True)
def _quick_machine_description(monkeypatch):
    """gradflow.info.describe() probes the whole machine (slow): the bench only embeds what it returns."""
    info = pytest.importorskip("gradflow.info")
    monkeypatch.setattr(info, "describe", lambda: {"machine": "test"})


SHORT = ["bench", "--steps", "2", "--warmup", "1", "--batch-sizes", "2,4", "--no-progress"]


def test_bench_writes_json_and_png_and_prints_the_table(tmp_path, capsys):
    json_path, png_path = tmp_path / "bench.json", tmp_path / "bench.png"
    assert cli.main([*SHORT, "--devices", "cpu", "--json", str(json_path), "--plot", str(png_path)]) == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "gradflow bench mlp" in out
    data = json.loads(json_path.read_text())
    assert data["model"] == "mlp" and data["steps"] == 2 and data["machine"] == {"machine": "test"}
    assert [cell["batch_size"] for cell in data["cells"]] == [2, 4]
    assert all(cell["status"] == "ok" and cell["samples_per_second"] > 0 for cell in data["cells"])
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("model", ["cnn", "transformer"])
def test_bench_runs_the_other_models(model, tmp_path):
    json_path = tmp_path / "bench.json"
    assert cli.main([*SHORT, "--model", model, "--devices", "cpu", "--batch-sizes", "2", "--json", str(json_path)]) == 0
    cell = json.loads(json_path.read_text())["cells"][0]
    assert cell["status"] == "ok" and cell["flops_per_step"] > 0


@pytest.mark.skipif(cuda.is_available(), reason="checks the report of a missing GPU")
def test_missing_cuda_is_a_row_with_the_reason(tmp_path, capsys):
    json_path = tmp_path / "bench.json"
    assert cli.main([*SHORT, "--devices", "cpu,cuda", "--json", str(json_path)]) == 0
    cells = json.loads(json_path.read_text())["cells"]
    missing = [cell for cell in cells if cell["device"] == "cuda"]
    assert missing and all(cell["status"] == "unavailable" for cell in missing)
    assert all(cuda.unavailable_reason() in cell["reason"] for cell in missing)
    assert "unavailable" in capsys.readouterr().out


def test_only_a_missing_device_exits_non_zero(capsys):
    if cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    assert cli.main([*SHORT, "--devices", "cuda"]) == 1
    assert "no device could run" in capsys.readouterr().err


def test_float16_on_the_cpu_is_reported_not_run(tmp_path):
    json_path = tmp_path / "bench.json"
    assert cli.main([*SHORT, "--devices", "cpu,cpu", "--dtype", "float16", "--json", str(json_path)]) == 1
    assert all("float16" in cell["reason"] for cell in json.loads(json_path.read_text())["cells"])


def test_baseline_torch_reports_ratios(tmp_path):
    pytest.importorskip("torch")
    json_path = tmp_path / "bench.json"
    assert (
        cli.main([*SHORT, "--devices", "cpu", "--batch-sizes", "2", "--baseline", "torch", "--json", str(json_path)])
        == 0
    )
    data = json.loads(json_path.read_text())
    assert data["torch_ratio"]["cpu"]["2"] > 0
    assert {cell["framework"] for cell in data["cells"]} == {"gradflow", "torch"}


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--batch-sizes", "0"], "at least 1"),
        (["--batch-sizes", "-4"], "at least 1"),
        (["--batch-sizes", "16,x"], "must be integers"),
        (["--devices", "cpu,tpu"], "unknown device 'tpu'"),
        (["--steps", "0"], "must be at least 1"),
        (["--warmup", "-1"], "must be at least 0"),
        (["--dtype", "int8"], "invalid choice: 'int8'"),
    ],
)
def test_bad_options_exit_with_a_one_line_error(option, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["bench", *option])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # the error alone, not argparse's usage block before it
    assert lines[0].startswith("gradflow bench: error:") and message in lines[0]
    assert "gradflow bench --help" in lines[0]


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["bench", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--model",
        "--devices",
        "--batch-sizes",
        "--steps",
        "--warmup",
        "--dtype",
        "--baseline",
        "--json",
        "--plot",
        "--profile",
        "--no-progress",
    ):
        assert option in out
