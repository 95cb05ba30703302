"""The `gradflow` command and the digits main job."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradflow import cli, demo


def test_digits_split_is_fixed_and_scaled():
    (train_x, train_y), (test_x, test_y) = demo.load_digits_split()
    assert train_x.shape == (1438, 1, 8, 8) and test_x.shape == (359, 1, 8, 8)
    assert train_x.dtype.name == "float32" and 0.0 <= train_x.min() and train_x.max() <= 1.0
    assert set(test_y.tolist()) == set(range(10))
    (again, _), _ = demo.load_digits_split()
    assert (again == train_x).all()


def test_demo_short_run_learns_and_reports(capsys, tmp_path):
    result = demo.run(device="cpu", epochs=2, plot_path=str(tmp_path / "curves.png"), progress=False)
    out = capsys.readouterr().out
    assert "on cpu" in out and "samples/s" in out and "test accuracy" in out
    for name in ("MLP", "CNN"):
        history = result["models"][name]
        assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
        assert history["test_accuracy"][-1] > 0.7  # ten classes: chance is 10%
        assert history["samples_per_second"] > 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_demo_short_without_plot(capsys):
    assert cli.main(["demo", "--device", "cpu", "--short", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "for 1 epoch(s) on cpu" in out and "CNN: test accuracy" in out


def test_short_mode_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("GRADFLOW_EXAMPLE_SHORT", "1")
    result = demo.run(device="cpu", plot_path=None, progress=False)
    assert result["epochs"] == 1


def test_cli_demo_rejects_an_unknown_device(capsys):
    assert cli.main(["demo", "--device", "tpu", "--short", "--no-plot"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--batch-size", "0"]])
def test_cli_demo_rejects_non_positive_sizes(option):
    with pytest.raises(SystemExit) as exited:
        cli.main(["demo", *option])
    assert exited.value.code == 2


def test_python_dash_m_gradflow_version():
    completed = subprocess.run(
        [sys.executable, "-m", "gradflow", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "0.1.0"
