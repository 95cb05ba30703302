"""The main job: train an MLP and a small CNN on handwritten digits, on the best device.

Run with ``gradflow demo`` (or ``python examples/train_digits.py``). The data is
scikit-learn's 8x8 digits set, which ships inside its package (no download):
1,797 images, of which a fixed 20% are held out for testing. Both models train
with Adam and cross-entropy on CUDA when a GPU works, otherwise on the CPU
(saying why). A progress bar shows each epoch; at the end the command prints
each model's test accuracy and training throughput and writes a PNG of the
loss and accuracy curves.
"""

from __future__ import annotations

import os
import time

import numpy as np

import gradflow as gf
from gradflow import nn
from gradflow.utils.data import DataLoader, TensorDataset

SHORT_ENV = "GRADFLOW_EXAMPLE_SHORT"


def load_digits_split(test_fraction: float = 0.2, seed: int = 0):
    """Images scaled to [0, 1] as (N, 1, 8, 8) float32 and int64 labels, split into train and test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    test_count = int(len(labels) * test_fraction)
    test, train = order[:test_count], order[test_count:]
    return (images[train], labels[train]), (images[test], labels[test])


def build_mlp() -> nn.Module:
    """64 -> 128 -> 64 -> 10 with ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def build_cnn() -> nn.Module:
    """Two 3x3 convolutions, a 2x2 max-pool, then a small classifier with dropout."""
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(64, 10),
    )


def evaluate(model: nn.Module, images: gf.Tensor, labels: gf.Tensor) -> float:
    """Fraction of correctly classified images (eval mode, no graph)."""
    model.eval()
    with gf.no_grad():
        predictions = model(images).argmax(dim=1)
    model.train()
    return (predictions == labels).float().mean().item()


def train(name: str, model: nn.Module, data, device, epochs: int, batch_size: int, lr: float, progress: bool) -> dict:
    """Train ``model`` with Adam and a cosine schedule.

    Returns the per-epoch training loss and test accuracy, the training throughput and the parameter count.
    """
    from tqdm import tqdm

    (train_x, train_y), (test_x, test_y) = data
    loader = DataLoader(
        TensorDataset(gf.tensor(train_x), gf.tensor(train_y)),
        batch_size=batch_size,
        shuffle=True,
        device=device,
    )
    test_images, test_labels = gf.tensor(test_x, device=device), gf.tensor(test_y, device=device)
    model.to(device)
    optimizer = gf.optim.Adam(model.parameters(), lr=lr)
    # Cosine annealing to zero over the run lets the last epochs settle instead of bouncing.
    schedule = gf.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    history = {"loss": [], "test_accuracy": []}
    seen, busy = 0, 0.0
    bar = tqdm(range(1, epochs + 1), desc=f"{name:>3} on {device}", unit="epoch", disable=not progress)
    for _ in bar:
        start = time.perf_counter()
        total, batches = 0.0, 0
        for images, labels in loader:
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()  # .item() waits for the device, so the timing below is honest
            batches += 1
            seen += len(labels)
        busy += time.perf_counter() - start
        schedule.step()
        history["loss"].append(total / batches)
        history["test_accuracy"].append(evaluate(model, test_images, test_labels))
        bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", test_acc=f"{history['test_accuracy'][-1]:.1%}")
    history["samples_per_second"] = seen / busy if busy > 0 else float("nan")
    history["parameters"] = sum(p.numel() for p in model.parameters())
    return history


def plot(histories: dict, path: str, device) -> str:
    """Loss and test accuracy per epoch, one line per model, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for name, history in histories.items():
        epochs = range(1, len(history["loss"]) + 1)
        loss_axis.plot(epochs, history["loss"], marker="o", label=name)
        accuracy_axis.plot(epochs, [100 * a for a in history["test_accuracy"]], marker="o", label=name)
    loss_axis.set(title="training loss (cross-entropy)", xlabel="epoch", ylabel="loss", yscale="log")
    accuracy_axis.set(title="test accuracy", xlabel="epoch", ylabel="%")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"gradflow {gf.__version__}: 8x8 digits on {device}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(
    device: str = "auto",
    epochs: int | None = None,
    batch_size: int = 32,
    lr: float = 2e-3,
    plot_path: str | None = "gradflow-digits.png",
    short: bool | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train both models and return their histories; ``short`` (or GRADFLOW_EXAMPLE_SHORT=1) trains one epoch."""
    if short is None:
        short = os.environ.get(SHORT_ENV) == "1"
    if epochs is None:
        epochs = 1 if short else 20
    chosen = gf.device(device)
    gf.manual_seed(seed)
    data = load_digits_split(seed=seed)
    (train_x, _), (test_x, _) = data
    print(
        f"gradflow {gf.__version__}: training an MLP and a CNN on {len(train_x)} 8x8 digit images "
        f"({len(test_x)} held out) for {epochs} epoch(s) on {chosen}"
    )
    histories = {}
    for name, build in (("MLP", build_mlp), ("CNN", build_cnn)):
        histories[name] = train(name, build(), data, chosen, epochs, batch_size, lr, progress)
    for name, history in histories.items():
        print(
            f"{name}: test accuracy {history['test_accuracy'][-1]:.1%}, final loss {history['loss'][-1]:.4f}, "
            f"{history['samples_per_second']:,.0f} samples/s, {history['parameters']:,} parameters"
        )
    result = {"device": str(chosen), "epochs": epochs, "models": histories}
    if plot_path:
        result["plot"] = plot(histories, plot_path, chosen)
        print(f"wrote {plot_path}")
    return result
