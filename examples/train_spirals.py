"""Train a small MLP on two interleaved spirals with raw gradflow tensors (no nn, no optim).

This is autograd at its barest: parameters are plain tensors with requires_grad,
the model is a function, and the update is written out (SGD with momentum).

    python examples/train_spirals.py --device cpu --steps 300
    python examples/train_spirals.py --short          # a few steps (CI)
"""

from __future__ import annotations

import math
import time

import numpy as np

import gradflow as gf


def make_spirals(points_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in 2-D with a little noise; labels 0 and 1."""
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.1, 1.0, points_per_class)
    features, labels = [], []
    for label in (0, 1):
        angle = radius * 3 * math.pi + label * math.pi + rng.normal(0, 0.15, points_per_class)
        features.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        labels.append(np.full(points_per_class, label))
    return np.concatenate(features).astype(np.float32), np.concatenate(labels).astype(np.float32)


def init_mlp(sizes: list[int], device) -> list[gf.Tensor]:
    """Weights drawn on the host (same values on every device) with PyTorch's default Linear scale."""
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        weight = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        bias = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        params += [
            gf.tensor(weight, device=device, requires_grad=True),
            gf.tensor(bias, device=device, requires_grad=True),
        ]
    return params


def forward(params: list[gf.Tensor], x: gf.Tensor) -> gf.Tensor:
    """tanh hidden layers, one logit out."""
    for index in range(0, len(params) - 2, 2):
        x = (x @ params[index] + params[index + 1]).tanh()
    return (x @ params[-2] + params[-1]).reshape(-1)


def bce_with_logits(logits: gf.Tensor, targets: gf.Tensor) -> gf.Tensor:
    """Mean binary cross-entropy on logits, in the stable max(z,0) - z*y + log1p(exp(-|z|)) form."""
    return (logits.relu() - logits * targets + (-logits.abs()).exp().log1p()).mean()


def run(steps: int = 300, device: str = "auto", lr: float = 0.5, momentum: float = 0.9, log_every: int = 50) -> dict:
    """Train and return the final loss, accuracy, device and wall time."""
    chosen = gf.device(device)
    features, labels = make_spirals(200)
    x = gf.tensor(features, device=chosen)
    y = gf.tensor(labels, device=chosen)
    params = init_mlp([2, 32, 32, 1], chosen)
    velocities = [gf.zeros_like(p) for p in params]
    print(f"gradflow {gf.__version__}: training a 2-32-32-1 MLP on {len(labels)} spiral points on {chosen}")
    start = time.perf_counter()
    loss = None
    for step in range(1, steps + 1):
        loss = bce_with_logits(forward(params, x), y)
        for p in params:
            p.grad = None
        loss.backward()
        with gf.no_grad():
            for p, v in zip(params, velocities):
                v.mul_(momentum).add_(p.grad)
                p.sub_(v * lr)
        if step == 1 or step % log_every == 0 or step == steps:
            print(f"  step {step:4d}  loss {loss.item():.4f}")
    chosen.backend.synchronize()
    elapsed = time.perf_counter() - start
    with gf.no_grad():
        accuracy = ((forward(params, x) > 0).float() == y).float().mean().item()
    print(f"done on {chosen}: final loss {loss.item():.4f}, accuracy {accuracy:.1%}, {elapsed:.2f} s")
    return {"device": str(chosen), "loss": loss.item(), "accuracy": accuracy, "seconds": elapsed}


if __name__ == "__main__":
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Train a 2-32-32-1 MLP on two spirals with raw gradflow tensors.")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--short", action="store_true", help="a few steps only (also GRADFLOW_EXAMPLE_SHORT=1)")
    args = parser.parse_args()
    short = args.short or os.environ.get("GRADFLOW_EXAMPLE_SHORT") == "1"
    run(steps=5 if short else args.steps, device=args.device, log_every=1 if short else 50)
