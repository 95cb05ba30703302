"""The main job: train an MLP and a small CNN on handwritten digits, on the best device.

Run with ``gradflow demo`` (or ``python examples/train_digits.py``). The data is
scikit-learn's 8x8 digits set, which ships inside its package (no download):
1,797 images, of which a fixed 20% are held out for testing. Both models train
with Adam and cross-entropy on CUDA when a GPU works, otherwise on the CPU
(saying why). A progress bar shows each epoch (on a terminal only: logs stay
short); at the end the command prints each model's test accuracy and training
throughput and writes a PNG of the loss and accuracy curves.

Every option is checked before any data is loaded (``check_options``). The
matrices are small (a batch of 32), so BLAS runs on one thread during training
unless the user chose a thread count: more threads only wait on each other,
and spin on a machine whose cores are busy.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import numpy as np

import gradflow as gf
from gradflow import nn
from gradflow.errors import ArgumentValueError
from gradflow.utils.data import DataLoader, TensorDataset

SHORT_ENV = "GRADFLOW_EXAMPLE_SHORT"
# Any of these set: the user chose the BLAS thread count, and the demo keeps it.
THREAD_ENVS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def check_options(
    device: str = "auto",
    epochs: int | None = None,
    batch_size: int = 32,
    lr: float = 2e-3,
    plot_path: str | None = None,
    seed: int = 0,
):
    """Check every option before anything runs; returns the resolved device and the PNG path to write.

    Raises ``ArgumentValueError`` (a ``ValueError``) naming the option (``DeviceUnavailableError`` for a missing
    device).
    ``plot_path`` must be a ``.png`` file name in a folder that exists and is writable; a name without a
    suffix gets ``.png`` added (the returned path, which ``run`` reports), any other suffix is refused.

    >>> check_options("cpu", plot_path="curves")
    (device(type='cpu'), 'curves.png')
    >>> check_options("cpu", lr=-1.0)
    Traceback (most recent call last):
    ...
    gradflow.errors.ArgumentValueError: --lr must be a positive number, got -1.0
    """
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ArgumentValueError(f"{name} must be an integer of at least 1, got {value!r}")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (math.isfinite(lr) and lr > 0):
        raise ArgumentValueError(f"--lr must be a positive number, got {lr!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentValueError(f"--seed must be a non-negative integer, got {seed!r}")
    if plot_path is not None:
        plot_path = _png_path(str(plot_path))
    return gf.device(device), plot_path


def _png_path(path: str) -> str:
    stem, suffix = os.path.splitext(path)
    if not suffix:
        path = path + ".png"  # what matplotlib would write anyway: say so instead
    elif suffix.lower() != ".png":
        raise ArgumentValueError(f"--plot writes a PNG: give a name ending in .png (or no suffix), got {path!r}")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise ArgumentValueError(
            f"--plot: the folder {folder!r} does not exist; create it or give another path ({path!r})"
        )
    if os.path.isdir(path):
        raise ArgumentValueError(f"--plot: {path!r} is a folder; give a file name")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ArgumentValueError(f"--plot: cannot write {path!r} (no write permission)")
    return path


def blas_threads_for_small_matrices():
    """A context in which BLAS uses one thread, unless a ``*_NUM_THREADS`` variable chose a count.

    The demo's matrices (a batch of 32 by at most 512) are too small for threads to pay; on a machine
    whose cores are busy, OpenBLAS threads that spin waiting for a core made the demo 3-30x slower.
    """
    if any(os.environ.get(name) for name in THREAD_ENVS):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


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
    # disable=None: a bar on a terminal, nothing in a log file or a CI log (no stream of redrawn lines).
    bar = tqdm(range(1, epochs + 1), desc=f"{name:>3} on {device}", unit="epoch", disable=None if progress else True)
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
    """Train both models and return their histories; ``short`` (or GRADFLOW_EXAMPLE_SHORT=1) trains one epoch.

    The options are checked first (``check_options``): a bad one raises before any data is loaded.
    """
    chosen, plot_path = check_options(device, epochs, batch_size, lr, plot_path, seed)
    if short is None:
        short = os.environ.get(SHORT_ENV) == "1"
    if epochs is None:
        epochs = 1 if short else 20
    gf.manual_seed(seed)
    data = load_digits_split(seed=seed)
    (train_x, _), (test_x, _) = data
    print(
        f"gradflow {gf.__version__}: training an MLP and a CNN on {len(train_x)} 8x8 digit images "
        f"({len(test_x)} held out) for {epochs} epoch(s) on {chosen}"
    )
    histories = {}
    with blas_threads_for_small_matrices():
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
        print(f"wrote {result['plot']}")
    return result
