"""Resuming training from a checkpoint in a fresh Python process gives bit-identical parameters on the CPU.

The test process trains an MLP for K + N steps without stopping. A second run
trains K steps, saves model, optimizer and scheduler state with gradflow.save,
and a new interpreter (subprocess) rebuilds everything from scratch, loads the
checkpoint, trains N more steps and saves the final parameters. Both must
agree bit for bit.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np

import gradflow as gf
from gradflow import nn, optim, serialization
from gradflow.optim.lr_scheduler import StepLR

save = getattr(gf, "save", serialization.save)
load = getattr(gf, "load", serialization.load)

K_STEPS, N_STEPS = 4, 5
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _data():
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((32, 4)).astype(np.float32)
    targets = (inputs @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype=np.float32)).astype(np.float32)
    return gf.tensor(inputs), gf.tensor(targets)


def build(seed: int):
    """A fresh model, optimizer and scheduler; ``seed`` only decides the initial weights."""
    gf.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    scheduler = StepLR(optimizer, step_size=3, gamma=0.5)
    return model, optimizer, scheduler


def train(model, optimizer, scheduler, steps: int) -> None:
    inputs, targets = _data()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((model(inputs) - targets) ** 2).mean()
        loss.backward()
        optimizer.step()
        scheduler.step()


def resume_and_continue(checkpoint_path: str, output_path: str, steps: int) -> None:
    """Run in the fresh process: rebuild with other initial weights, load the checkpoint, continue, save."""
    model, optimizer, scheduler = build(seed=12345)
    checkpoint = load(checkpoint_path)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optim"])
    scheduler.load_state_dict(checkpoint["sched"])
    train(model, optimizer, scheduler, steps)
    final = {"model": model.state_dict(), "step": checkpoint["step"] + steps, "lr": optimizer.param_groups[0]["lr"]}
    save(final, output_path)


def _parameters(model) -> dict:
    return {name: value.detach().numpy().copy() for name, value in model.state_dict().items()}


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    model, optimizer, scheduler = build(seed=0)
    train(model, optimizer, scheduler, K_STEPS + N_STEPS)
    expected, expected_lr = _parameters(model), optimizer.param_groups[0]["lr"]

    model, optimizer, scheduler = build(seed=0)
    train(model, optimizer, scheduler, K_STEPS)
    checkpoint = tmp_path / "step4.safetensors"
    state = {"model": model.state_dict(), "optim": optimizer.state_dict(), "sched": scheduler.state_dict()}
    save({**state, "step": K_STEPS}, checkpoint)

    output = tmp_path / "final.safetensors"
    script = (
        "import sys; from tests.test_resume import resume_and_continue; "
        "resume_and_continue(sys.argv[1], sys.argv[2], int(sys.argv[3]))"
    )
    environment = {**os.environ, "GRADFLOW_DEVICE": "cpu", "PYTHONPATH": str(REPO_ROOT)}
    finished = subprocess.run(
        [sys.executable, "-c", script, str(checkpoint), str(output), str(N_STEPS)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr

    final = load(output)
    assert final["step"] == K_STEPS + N_STEPS and final["lr"] == expected_lr
    assert list(final["model"]) == list(expected)
    for name, value in final["model"].items():
        assert np.array_equal(value.numpy(), expected[name]), name


def test_resuming_without_the_optimizer_state_would_differ(tmp_path):
    # Guards the test above: the comparison is sensitive to a lost Adam state.
    model, optimizer, scheduler = build(seed=0)
    train(model, optimizer, scheduler, K_STEPS + N_STEPS)
    expected = _parameters(model)

    model, optimizer, scheduler = build(seed=0)
    train(model, optimizer, scheduler, K_STEPS)
    save({"model": model.state_dict()}, tmp_path / "model_only.safetensors")
    fresh, fresh_optimizer, fresh_scheduler = build(seed=1)
    fresh.load_state_dict(load(tmp_path / "model_only.safetensors")["model"])
    train(fresh, fresh_optimizer, fresh_scheduler, N_STEPS)
    assert any(not np.array_equal(value, expected[name]) for name, value in _parameters(fresh).items())
