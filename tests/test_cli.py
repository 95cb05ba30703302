"""The `gradflow` command and the quick-start demo."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradflow import cli, demo


def test_demo_trains_and_reports_loss_and_device(capsys):
    result = demo.run(steps=150, device="cpu", log_every=50)
    out = capsys.readouterr().out
    assert "on cpu" in out and "loss" in out
    assert result["device"] == "cpu" and result["loss"] < 0.69 and result["accuracy"] > 0.6


def test_cli_demo_on_cpu(capsys):
    assert cli.main(["demo", "--device", "cpu", "--steps", "5"]) == 0
    assert "final loss" in capsys.readouterr().out


def test_cli_demo_rejects_an_unknown_device(capsys):
    assert cli.main(["demo", "--device", "tpu", "--steps", "5"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_cli_demo_rejects_zero_steps():
    with pytest.raises(SystemExit) as exited:
        cli.main(["demo", "--steps", "0"])
    assert exited.value.code == 2


def test_python_dash_m_gradflow_version():
    completed = subprocess.run(
        [sys.executable, "-m", "gradflow", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "0.1.0"
