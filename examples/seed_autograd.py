"""The three flows to learn autograd with: gradients, a training loop, a learning-rate schedule.

1. Gradients: an ``nn.Linear`` under ``nn.MSELoss`` on a tiny batch. ``loss.backward()``
   fills ``weight.grad`` and ``bias.grad``; we print them and check them against the
   closed form  dL/dW = 2/N (Wx + b - y) x^T,  dL/db = 2/N sum(Wx + b - y).
2. Training: SGD with momentum fits a noisy line y = 3x - 1 with the usual loop
   ``optimizer.zero_grad(); loss.backward(); optimizer.step()``; the loss falls.
3. Scheduling: ``CosineAnnealingLR`` drives the same loop; the learning rate of every
   epoch is printed and checked against
   eta_min + (eta_max - eta_min) * (1 + cos(pi * t / T_max)) / 2.

Run it from the repository root (``pip install -e .`` or ``PYTHONPATH=.``); ``--short``
or GRADFLOW_EXAMPLE_SHORT=1 trains for a few epochs only::

    python examples/seed_autograd.py --device auto
    python examples/seed_autograd.py --device cpu --short
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np

import gradflow as gf
from gradflow import nn, optim
from gradflow.optim import lr_scheduler
from gradflow.utils.data import DataLoader, TensorDataset


def gradients_of_a_linear_layer(device: gf.Device) -> None:
    """Flow 1: backward through Linear + MSELoss, checked against the closed form."""
    print("== 1. gradients of nn.Linear under nn.MSELoss ==")
    model = nn.Linear(3, 1).to(device)
    x = gf.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 2.0], [3.0, 0.5, -1.0], [-2.0, 1.0, 1.0]], device=device)
    y = gf.tensor([[1.0], [-1.0], [2.0], [0.5]], device=device)

    loss = nn.MSELoss()(model(x), y)  # mean over the N = 4 samples
    loss.backward()
    print(f"loss        = {loss.item():.6f}")
    print(f"weight.grad = {model.weight.grad.tolist()}")
    print(f"bias.grad   = {model.bias.grad.tolist()}")

    # The same gradients by hand, in float64 NumPy: L = 1/N sum (Wx + b - y)^2.
    x_np, y_np = x.cpu().numpy().astype(np.float64), y.cpu().numpy().astype(np.float64)
    weight = model.weight.detach().cpu().numpy().astype(np.float64)  # (1, 3)
    bias = model.bias.detach().cpu().numpy().astype(np.float64)  # (1,)
    residual = x_np @ weight.T + bias - y_np  # (N, 1)
    n = x_np.shape[0]
    expected_weight_grad = 2 / n * residual.T @ x_np
    expected_bias_grad = 2 / n * residual.sum(axis=0)
    weight_error = np.abs(model.weight.grad.cpu().numpy() - expected_weight_grad).max()
    bias_error = np.abs(model.bias.grad.cpu().numpy() - expected_bias_grad).max()
    print(f"closed form: max |autograd - 2/N (Wx+b-y) x^T| = {weight_error:.2e}, bias {bias_error:.2e}")
    # float32 autograd against a float64 reference: agreement to float32 rounding.
    assert weight_error < 1e-5 and bias_error < 1e-5, "autograd disagrees with the closed-form gradient"
    print("gradients match the closed form")


def noisy_line(samples: int, device: gf.Device) -> TensorDataset:
    """Points on y = 3x - 1 with a little Gaussian noise."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (samples, 1)).astype(np.float32)
    y = (3 * x - 1 + rng.normal(0, 0.1, (samples, 1))).astype(np.float32)
    return TensorDataset(gf.tensor(x, device=device), gf.tensor(y, device=device))


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: optim.Optimizer) -> float:
    """One pass over the data with the standard loop; returns the mean loss of the epoch."""
    loss_fn = nn.MSELoss()
    total, batches = 0.0, 0
    for inputs, targets in loader:
        optimizer.zero_grad()  # gradients accumulate in .grad, so clear them first
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / batches


def sgd_training_loop(device: gf.Device, epochs: int) -> None:
    """Flow 2: SGD with momentum fits the noisy line."""
    print("\n== 2. SGD with momentum fits y = 3x - 1 ==")
    gf.manual_seed(0)
    model = nn.Linear(1, 1).to(device)
    loader = DataLoader(noisy_line(256, device), batch_size=32, shuffle=True)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for epoch in range(1, epochs + 1):
        losses.append(train_epoch(model, loader, optimizer))
        print(f"epoch {epoch:2d}  loss {losses[-1]:.5f}")
    print(f"learned y = {model.weight.item():.3f} x {model.bias.item():+.3f}  (true: y = 3x - 1)")
    assert losses[-1] < losses[0], "the loss did not fall"
    print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")


def cosine_schedule(device: gf.Device, epochs: int) -> None:
    """Flow 3: CosineAnnealingLR sets the learning rate of each epoch; compare with the closed form."""
    print("\n== 3. CosineAnnealingLR drives the loop ==")
    gf.manual_seed(0)
    model = nn.Linear(1, 1).to(device)
    loader = DataLoader(noisy_line(256, device), batch_size=32, shuffle=True)
    eta_max, eta_min = 0.05, 0.001
    optimizer = optim.SGD(model.parameters(), lr=eta_max, momentum=0.9)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min)
    worst = 0.0
    for epoch in range(epochs):
        lr = scheduler.get_last_lr()[0]
        closed_form = eta_min + (eta_max - eta_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2
        worst = max(worst, abs(lr - closed_form))
        loss = train_epoch(model, loader, optimizer)
        print(f"epoch {epoch + 1:2d}  lr {lr:.6f}  (closed form {closed_form:.6f})  loss {loss:.5f}")
        scheduler.step()  # once per epoch, after the optimizer steps
    # The scheduler uses PyTorch's recursive form; it equals the closed form up to float64 rounding.
    assert worst < 1e-10, f"the schedule strays {worst} from the closed form"
    print(f"learning rates match the closed form (max difference {worst:.1e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if it works, else CPU), 'cpu' or 'cuda'")
    parser.add_argument("--short", action="store_true", help="a few epochs only (also GRADFLOW_EXAMPLE_SHORT=1)")
    args = parser.parse_args()
    short = args.short or os.environ.get("GRADFLOW_EXAMPLE_SHORT") == "1"
    device = gf.device(args.device)
    print(f"running on {device}")
    gf.manual_seed(0)
    gradients_of_a_linear_layer(device)
    sgd_training_loop(device, epochs=3 if short else 20)
    cosine_schedule(device, epochs=4 if short else 20)


if __name__ == "__main__":
    main()
