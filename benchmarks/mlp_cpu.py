"""One training step of an MLP on the CPU: gradflow vs hand-written NumPy vs torch-cpu, in one run.

The step is forward, cross-entropy, backward and an Adam update of an MLP
784-1024-1024-10 (ReLU) at batch 128 in float32, the training issue's yardstick.
Each contender runs the same number of warm-up and timed steps on the same
data; the table reports the median and the spread, and the ratios to torch-cpu.
The target is gradflow <= 1.0x torch-cpu.

Run:  PYTHONPATH=. python benchmarks/mlp_cpu.py [--steps 30] [--warmup 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import date

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gradflow as gf  # noqa: E402

SIZES = (784, 1024, 1024, 10)
BATCH = 128
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], BATCH)


def _initial_weights(seed: int = 0) -> list[np.ndarray]:
    """PyTorch's default Linear initialisation, drawn once so every contender starts equal."""
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        weights.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    return weights


def _timed(step, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def framework_step(lib, as_tensor):
    """The step in an autograd framework with PyTorch's API: gradflow (``lib=gf``) or torch itself."""
    x_host, y_host = _data()
    model = lib.nn.Sequential(
        lib.nn.Linear(SIZES[0], SIZES[1]),
        lib.nn.ReLU(),
        lib.nn.Linear(SIZES[1], SIZES[2]),
        lib.nn.ReLU(),
        lib.nn.Linear(SIZES[2], SIZES[3]),
    )
    with lib.no_grad():
        for parameter, value in zip(model.parameters(), _initial_weights()):
            parameter.copy_(as_tensor(value))
    optimizer = lib.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    x, y = as_tensor(x_host), as_tensor(y_host)

    def step():
        loss = lib.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def numpy_step():
    """A straightforward hand-written step: the code a NumPy user would write, allocations included."""
    x, y = _data()
    params = _initial_weights()
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    step_count = [0]
    one_hot = np.eye(SIZES[-1], dtype=np.float32)[y]

    def step():
        w1, b1, w2, b2, w3, b3 = params
        h1 = np.maximum(x @ w1.T + b1, 0)
        h2 = np.maximum(h1 @ w2.T + b2, 0)
        logits = h2 @ w3.T + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_probs[np.arange(BATCH), y].mean()
        d_logits = (np.exp(log_probs) - one_hot) / BATCH
        d_h2 = (d_logits @ w3) * (h2 > 0)
        d_h1 = (d_h2 @ w2) * (h1 > 0)
        grads = [d_h1.T @ x, d_h1.sum(0), d_h2.T @ h1, d_h2.sum(0), d_logits.T @ h2, d_logits.sum(0)]
        step_count[0] += 1
        t = step_count[0]
        for p, g, m, v in zip(params, grads, moments, squares):
            m[...] = BETAS[0] * m + (1 - BETAS[0]) * g
            v[...] = BETAS[1] * v + (1 - BETAS[1]) * g * g
            m_hat = m / (1 - BETAS[0] ** t)
            v_hat = v / (1 - BETAS[1] ** t)
            p -= LR * m_hat / (np.sqrt(v_hat) + EPS)
        return float(loss)

    return step


def _summary(times: list[float]) -> dict:
    ms = sorted(t * 1e3 for t in times)
    return {
        "median_ms": statistics.median(ms),
        "min_ms": ms[0],
        "p90_ms": ms[int(0.9 * (len(ms) - 1))],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--machine-name", default=platform.node() or "unknown")
    args = parser.parse_args(argv)

    # The first losses must agree: the contenders compute the same thing.
    contenders = {"gradflow-cpu": framework_step(gf, gf.tensor), "numpy (hand-written)": numpy_step()}
    torch_version = None
    try:
        import torch

        contenders[f"torch-cpu {torch.__version__} ({torch.get_num_threads()} threads)"] = framework_step(
            torch, torch.from_numpy
        )
        torch_version = torch.__version__
    except ImportError:
        pass
    first_losses = {name: step() for name, step in contenders.items()}
    spread = max(first_losses.values()) - min(first_losses.values())
    if spread > 1e-4:
        print(f"warning: the contenders' first losses differ by {spread:.2e}: {first_losses}")
    results = {name: _summary(_timed(step, args.warmup, args.steps)) for name, step in contenders.items()}

    torch_name = next((name for name in results if name.startswith("torch")), None)
    width = max(len(name) for name in results)
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32: one training step (forward, CE, backward, Adam)")
    print(f"{'':<{width}}  median ms   min ms   p90 ms   vs torch")
    for name, summary in results.items():
        ratio = summary["median_ms"] / results[torch_name]["median_ms"] if torch_name else float("nan")
        summary["ratio_vs_torch"] = ratio if torch_name else None
        print(
            f"{name:<{width}}  {summary['median_ms']:9.2f}  {summary['min_ms']:7.2f}  {summary['p90_ms']:7.2f}  "
            f"{ratio:8.2f}x"
        )
    if torch_name:
        print(f"\ntarget: gradflow-cpu <= 1.0x torch-cpu; measured {results['gradflow-cpu']['ratio_vs_torch']:.2f}x")

    record = {
        "suite": "mlp_cpu",
        "date": date.today().isoformat(),
        "machine": {
            "name": args.machine_name,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "config": {"sizes": SIZES, "batch": BATCH, "steps": args.steps, "warmup": args.warmup},
        "first_losses": first_losses,
        "results": results,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"mlp_cpu-{args.machine_name}-{record['date']}.json")
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
