"""Gradient accumulation: k small batches, one optimizer step, the gradients of one big batch.

When a batch does not fit in memory, split it into k equal micro-batches, call
``(loss / k).backward()`` on each and step the optimizer once: ``.grad`` sums the k
contributions, and for a mean-reduced loss the mean of k equal-sized means is the mean
of the whole batch, so the gradients equal those of the big batch (up to float32
rounding: the additions happen in a different order). This holds for models whose
samples do not interact (no BatchNorm) and that draw no randomness (no Dropout).

The script computes both gradients for an MLP classifier, prints the largest difference
per parameter and checks it is rounding-sized; then it trains with an optimizer step
every k micro-batches.

Run it from the repository root (``pip install -e .`` or ``PYTHONPATH=.``)::

    python examples/grad_accumulation.py --device auto
    python examples/grad_accumulation.py --device cpu --short   # or GRADFLOW_EXAMPLE_SHORT=1
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn, optim
from gradflow.utils.data import DataLoader, TensorDataset

FEATURES, CLASSES = 8, 4


def make_mlp(device: gf.Device) -> nn.Module:
    """A small MLP with no Dropout or BatchNorm, so micro-batches are independent."""
    model = nn.Sequential(nn.Linear(FEATURES, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, CLASSES))
    return model.to(device)


def make_data(samples: int, device: gf.Device) -> TensorDataset:
    """Gaussian points labelled by which of 4 fixed random directions they lean towards most."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(FEATURES, CLASSES))
    x = rng.normal(size=(samples, FEATURES)).astype(np.float32)
    y = (x @ directions).argmax(axis=1).astype(np.int64)
    return TensorDataset(gf.tensor(x, device=device), gf.tensor(y, device=device))


def compare_gradients(device: gf.Device, batch_size: int, k: int) -> float:
    """Big-batch gradients against k accumulated micro-batch gradients; returns the largest difference."""
    print(f"== one batch of {batch_size} vs {k} micro-batches of {batch_size // k} ==")
    gf.manual_seed(0)
    model = make_mlp(device)
    x, y = make_data(batch_size, device).tensors

    # One big batch.
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    big_batch = {name: p.grad.cpu().numpy().copy() for name, p in model.named_parameters()}

    # k micro-batches: each loss is divided by k, and .grad sums the k backward passes.
    model.zero_grad()
    for x_micro, y_micro in zip(x.chunk(k), y.chunk(k)):
        loss = F.cross_entropy(model(x_micro), y_micro) / k
        loss.backward()

    worst = 0.0
    for name, p in model.named_parameters():
        difference = np.abs(p.grad.cpu().numpy() - big_batch[name]).max()
        scale = np.abs(big_batch[name]).max()
        print(f"  {name:10s} max |grad difference| = {difference:.2e}   (max |grad| = {scale:.2e})")
        # float32 keeps ~7 digits: a few ulps of the gradient's size is rounding, not a bug.
        assert difference <= 1e-5 * scale + 1e-7, f"{name}: accumulated gradient differs by {difference}"
        worst = max(worst, difference)
    print(f"accumulated gradients equal the big batch's within float32 rounding (max difference {worst:.2e})")
    return worst


def train_with_accumulation(device: gf.Device, epochs: int, micro_batch: int, k: int) -> None:
    """The training loop: backward every micro-batch, step and zero_grad every k of them."""
    print(f"\n== training with micro-batches of {micro_batch}, an optimizer step every {k} ==")
    gf.manual_seed(0)
    model = make_mlp(device)
    dataset = make_data(2048, device)
    loader = DataLoader(dataset, batch_size=micro_batch, shuffle=True, drop_last=True)
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    x_all, y_all = dataset.tensors
    first_loss = None
    for epoch in range(1, epochs + 1):
        optimizer.zero_grad()
        running, steps = 0.0, 0
        for index, (inputs, targets) in enumerate(loader, start=1):
            loss = F.cross_entropy(model(inputs), targets) / k
            loss.backward()
            running += loss.item()  # k of these sum to the effective batch's mean loss
            if index % k == 0:
                optimizer.step()
                optimizer.zero_grad()
                steps += 1
        # 2048 / 32 = 64 micro-batches per epoch: with k = 4 none is left over. With a k that does not
        # divide 64, the leftover gradients are dropped by the next epoch's zero_grad().
        with gf.no_grad():
            logits = model(x_all)
            accuracy = (logits.argmax(dim=1) == y_all).float().mean().item()
        mean_loss = running / steps
        first_loss = mean_loss if first_loss is None else first_loss
        print(f"epoch {epoch:2d}  {steps} optimizer steps  loss {mean_loss:.4f}  accuracy {accuracy:.3f}")
    assert mean_loss < first_loss, "the loss did not fall"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if it works, else CPU), 'cpu' or 'cuda'")
    parser.add_argument("--short", action="store_true", help="a few epochs only (also GRADFLOW_EXAMPLE_SHORT=1)")
    parser.add_argument("--k", type=int, default=4, help="micro-batches per optimizer step")
    args = parser.parse_args()
    short = args.short or os.environ.get("GRADFLOW_EXAMPLE_SHORT") == "1"
    device = gf.device(args.device)
    print(f"running on {device}")
    compare_gradients(device, batch_size=256, k=args.k)
    train_with_accumulation(device, epochs=2 if short else 15, micro_batch=32, k=args.k)


if __name__ == "__main__":
    main()
