"""The `gradflow` command and the digits main job."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

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


@pytest.fixture
def no_training(monkeypatch):
    """The digits may not even be loaded: a bad option must be refused before any work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the demo loaded its data before refusing a bad option")

    monkeypatch.setattr(demo, "load_digits_split", refuse)


BAD_OPTIONS = {
    "--epochs -1": (["--epochs", "-1"], "--epochs must be an integer of at least 1, got -1"),
    "--epochs 0": (["--epochs", "0"], "--epochs must be an integer of at least 1, got 0"),
    "--batch-size 0": (["--batch-size", "0"], "--batch-size must be an integer of at least 1, got 0"),
    "--lr -1": (["--lr", "-1"], "--lr must be a positive number, got -1.0"),
    "--lr 0": (["--lr", "0"], "--lr must be a positive number, got 0.0"),
    "--lr nan": (["--lr", "nan"], "--lr must be a positive number, got nan"),
    "--seed -1": (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    "missing folder": (["--plot", "missing/dir/x.png"], "--plot: the folder 'missing/dir' does not exist"),
    "not a png": (["--plot", "curves.jpg"], "--plot writes a PNG: give a name ending in .png"),
    "a folder": (["--plot", "folder.png"], "--plot: 'folder.png' is a folder"),
    "unknown device": (["--device", "tpu"], "unknown device 'tpu'"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_cli_demo_refuses_a_bad_option_in_one_line_before_any_work(case, no_training, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.png").mkdir()
    option, message = BAD_OPTIONS[case]
    assert cli.main(["demo", "--short", *option]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[-1].startswith(f"gradflow demo: error: {message}"), captured.err
    assert lines[-1].endswith("(see gradflow demo --help)") and "Traceback" not in captured.err
    assert captured.out == "" and sorted(p.name for p in tmp_path.iterdir()) == ["folder.png"]


def test_demo_run_checks_its_options_before_loading_data(no_training, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        demo.run(device="cpu", plot_path=str(tmp_path / "missing" / "x.png"), progress=False)


def test_a_plot_name_without_suffix_gets_png_and_the_message_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--device", "cpu", "--short", "--plot", "noext"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "wrote noext.png"
    assert [p.name for p in tmp_path.iterdir()] == ["noext.png"]
    assert (tmp_path / "noext.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_plot_skips_checking_the_plot_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--device", "cpu", "--short", "--no-plot", "--plot", "missing/x.png"]) == 0
    assert "wrote" not in capsys.readouterr().out and list(tmp_path.iterdir()) == []


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bar_only_on_a_terminal(terminal, monkeypatch, capsys):
    """A log or CI (stderr not a terminal) gets no bar: tqdm would write a redrawn line per update."""
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    demo.run(device="cpu", epochs=2, plot_path=None, progress=True)
    bar = stream.getvalue()
    if terminal:
        assert "MLP on cpu" in bar and "CNN on cpu" in bar and "2/2" in bar
    else:
        assert bar == ""


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_training_runs_blas_on_one_thread_unless_the_user_chose(monkeypatch):
    for name in demo.THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)
    before = _blas_threads()
    seen = []
    real_train = demo.train

    def train(*args, **kwargs):
        seen.append(_blas_threads())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(demo, "train", train)
    demo.run(device="cpu", epochs=1, plot_path=None, progress=False)
    assert seen and all(threads and set(threads) == {1} for threads in seen)
    assert _blas_threads() == before  # restored afterwards
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # the user's choice stands
    with demo.blas_threads_for_small_matrices():
        assert _blas_threads() == before


def test_python_dash_m_gradflow_version():
    completed = subprocess.run(
        [sys.executable, "-m", "gradflow", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "0.1.0"
