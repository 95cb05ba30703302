"""Every script in examples/ runs to completion in its short mode on the CPU and prints what it shows.

Each script runs as a user would run it: a subprocess started in the repository root with
``--short --device cpu`` (and GRADFLOW_EXAMPLE_SHORT=1), gradflow importable from the
checkout. New scripts are picked up by the glob; give them a key line in KEY_LINES.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py"))

# Arguments beyond --short --device cpu: the digits job would otherwise write a PNG into the checkout.
EXTRA_ARGS = {"train_digits.py": ["--no-plot"]}

# What each script must print when it worked (its own checks passed before it printed these).
KEY_LINES = {
    "seed_autograd.py": [
        "gradients match the closed form",
        "loss fell from",
        "learning rates match the closed form",
    ],
    "grad_accumulation.py": [
        "accumulated gradients equal the big batch's within float32 rounding",
        "optimizer steps",
    ],
    "checkpoint_memory.py": ["checkpointed step  peak", "of the plain step's peak", "gradients bitwise identical"],
    "tiny_transformer.py": ["unigram entropy", "step    5  loss", "sample (temperature"],
    "train_spirals.py": ["done on cpu"],
    "train_digits.py": ["test accuracy"],
    "train_ddp.py": ["epoch 1/1", "1 process(es) on cpu: test accuracy"],
}


def run_example(script: str, *args: str, short_env: bool = True) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    environment.pop("GRADFLOW_EXAMPLE_SHORT", None)
    if short_env:
        environment["GRADFLOW_EXAMPLE_SHORT"] = "1"
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_examples_folder_holds_the_training_examples():
    assert {"seed_autograd.py", "grad_accumulation.py", "checkpoint_memory.py", "tiny_transformer.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_in_short_mode_on_cpu(script):
    result = run_example(script, "--short", "--device", "cpu", *EXTRA_ARGS.get(script, []))
    report = f"{script} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, report
    for line in KEY_LINES.get(script, []):
        assert line in result.stdout, f"{script} did not print {line!r}\n{report}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_has_a_docstring_saying_how_to_run_it(script):
    docstring = ast.get_docstring(ast.parse((EXAMPLES / script).read_text(encoding="utf-8")))
    assert docstring, f"{script} has no module docstring"
    assert f"examples/{script}" in docstring or "--short" in docstring, f"{script}'s docstring shows no command"


def test_short_mode_environment_variable_alone_shortens_a_run():
    result = run_example("tiny_transformer.py", "--device", "cpu", short_env=True)
    assert result.returncode == 0, result.stderr
    assert "5 steps of batch" in result.stdout


def test_checkpoint_memory_docstring_reports_the_measured_saving():
    docstring = ast.get_docstring(ast.parse((EXAMPLES / "checkpoint_memory.py").read_text(encoding="utf-8")))
    assert "2026-11-27" in docstring
    assert "saved" in docstring and "%" in docstring
