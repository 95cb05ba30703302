"""Whole training runs agree across devices: same seed, same initial weights; 20 Adam steps track each other.

Parameter initialisation draws on the host (``gradflow.nn.init``), so one
``gradflow.manual_seed`` must give bit-identical weights on the CPU and on a
GPU. Training then differs only by float32 rounding (cuBLAS against OpenBLAS,
the fused kernels against their NumPy references), so 20 Adam steps of an MLP
and of a small CNN must track each other: every step's loss within rtol 1e-4,
the final weights within float32 tolerance.

The CPU cases run everywhere: gradflow on the CPU against torch on the CPU
(the same comparison, a different second implementation) and the seeding
contract. The ``cuda`` cases compare gradflow-cpu with gradflow-cuda directly.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn

STEPS = 20
LR = 1e-3
LOSS_RTOL = 1e-4
# Adam divides by sqrt(v): a float32 rounding difference in a gradient moves a weight by
# about lr * (relative error), so the final weights get a looser bound than the losses.
WEIGHT_RTOL, WEIGHT_ATOL = 1e-3, 1e-5


def _mlp(device):
    """64-128-10 MLP, built directly on ``device``."""
    return nn.Sequential(nn.Linear(64, 128, device=device), nn.ReLU(), nn.Linear(128, 10, device=device))


def _cnn(device):
    """Two convolutions, max pooling and a linear head on 1x8x8 inputs."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, device=device),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, device=device),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 10, device=device),
    )


MODELS = {"mlp": (_mlp, (32, 64)), "cnn": (_cnn, (16, 1, 8, 8))}


def _data(input_shape, seed: int = 1):
    """Host inputs and class labels (drawn with NumPy so every device sees the same numbers)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(input_shape).astype(np.float32), rng.integers(0, 10, input_shape[0])


def _weights(model) -> list[np.ndarray]:
    return [p.numpy(force=True).copy() for p in model.parameters()]


def _train_gradflow(name: str, device, seed: int = 0):
    """(per-step losses, initial weights, final weights) of 20 Adam steps on ``device``."""
    builder, input_shape = MODELS[name]
    gf.manual_seed(seed)
    model = builder(device)
    initial = _weights(model)
    x_host, y_host = _data(input_shape)
    x, y = gf.tensor(x_host, device=device), gf.tensor(y_host, device=device)
    optimizer = gf.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for _ in range(STEPS):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), initial, _weights(model)


def _train_torch(name: str, initial: list[np.ndarray]):
    """The same run in torch on the CPU, starting from gradflow's initial weights."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    if name == "mlp":
        model = tnn.Sequential(tnn.Linear(64, 128), tnn.ReLU(), tnn.Linear(128, 10))
    else:
        model = tnn.Sequential(
            tnn.Conv2d(1, 4, 3, padding=1),
            tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.Conv2d(4, 8, 3),
            tnn.ReLU(),
            tnn.Flatten(),
            tnn.Linear(8 * 2 * 2, 10),
        )
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), initial, strict=True):
            parameter.copy_(torch.from_numpy(value))
    x_host, y_host = _data(MODELS[name][1])
    x, y = torch.from_numpy(x_host), torch.from_numpy(y_host)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for _ in range(STEPS):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), [p.detach().numpy().copy() for p in model.parameters()]


def _assert_tracks(losses_a, weights_a, losses_b, weights_b, what: str) -> None:
    np.testing.assert_allclose(losses_a, losses_b, rtol=LOSS_RTOL, err_msg=f"{what}: per-step losses diverge")
    # Training must actually move: otherwise equal losses prove nothing.
    assert losses_a[-1] < losses_a[0], f"{what}: the loss did not decrease ({losses_a[0]} -> {losses_a[-1]})"
    assert len(weights_a) == len(weights_b)
    for index, (a, b) in enumerate(zip(weights_a, weights_b)):
        np.testing.assert_allclose(
            a, b, rtol=WEIGHT_RTOL, atol=WEIGHT_ATOL, err_msg=f"{what}: final parameter {index} differs"
        )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_seed_gives_the_same_initial_weights_on_every_device(device, name):
    builder = MODELS[name][0]
    gf.manual_seed(123)
    on_cpu = _weights(builder(gf.device("cpu")))
    gf.manual_seed(123)
    on_device = _weights(builder(device))
    assert [w.shape for w in on_device] == [w.shape for w in on_cpu]
    for a, b in zip(on_cpu, on_device):
        np.testing.assert_array_equal(a, b)  # bit-identical: drawn on the host, copied as is


@pytest.mark.parametrize("name", sorted(MODELS))
def test_different_seeds_give_different_initial_weights(device, name):
    builder = MODELS[name][0]
    gf.manual_seed(1)
    first = _weights(builder(device))
    gf.manual_seed(2)
    second = _weights(builder(device))
    assert all(not np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_twenty_adam_steps_track_torch_cpu(device, name):
    losses, initial, final = _train_gradflow(name, device)
    torch_losses, torch_final = _train_torch(name, initial)
    _assert_tracks(losses, final, torch_losses, torch_final, f"{name} gradflow-{device.type} vs torch-cpu")


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(MODELS))
def test_twenty_adam_steps_on_cuda_track_the_cpu(name):
    cpu_losses, cpu_initial, cpu_final = _train_gradflow(name, gf.device("cpu"))
    cuda_losses, cuda_initial, cuda_final = _train_gradflow(name, gf.device("cuda"))
    for a, b in zip(cpu_initial, cuda_initial):
        np.testing.assert_array_equal(a, b)
    _assert_tracks(cuda_losses, cuda_final, cpu_losses, cpu_final, f"{name} gradflow-cuda vs gradflow-cpu")


# -- the GPU benchmark script's pure-Python parts (benchmarks/kernels_gpu.py) -------------------------


@pytest.fixture(scope="module")
def kernels_gpu():
    """benchmarks/kernels_gpu.py as a module (it puts the repo root and benchmarks/ on sys.path; undone here)."""
    import importlib.util
    import pathlib
    import sys

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "kernels_gpu.py"
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("kernels_gpu_under_test", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def _fake_record() -> dict:
    timed = {"median_ms": 1.0}
    return {
        "environment": {"gpu": "NVIDIA H100 80GB HBM3"},
        "sections": {
            "copy": {"gb_per_s": 3000.0},
            "adam": {"gradflow_fused": {**timed, "fraction_of_copy": 0.85}, "speedup_vs_torch_fused": 1.2},
            "rowwise": {
                "softmax_fwd 4096x4096": {"gradflow": {**timed, "fraction_of_copy": 0.9}, "ratio_vs_torch": 0.95},
                "layer_norm_bwd 4096x4096": {"gradflow": {**timed, "fraction_of_copy": 0.5}, "ratio_vs_torch": 1.3},
                "cross_entropy_fwd 4096x4096": {"gradflow": {"error": "KeyError: boom"}, "torch": timed},
                "seconds": 3.5,
            },
            "mlp": {"ratio_vs_torch": 1.7},
        },
    }


def test_kernels_gpu_headlines_judge_each_target(kernels_gpu):
    lines = {line["name"]: line for line in kernels_gpu.headlines(_fake_record())}
    assert lines["copy bandwidth"]["value"] == 3000.0
    assert lines["adam fused, % of copy"]["value"] == pytest.approx(85.0)
    assert lines["adam fused, % of copy"]["met"] is True
    assert lines["adam fused, speedup vs torch fused"]["met"] is True
    assert lines["softmax_fwd 4096x4096"]["met"] is True
    assert lines["layer_norm_bwd 4096x4096"]["met"] is False  # 50% of copy and slower than torch
    assert lines["cross_entropy_fwd 4096x4096"]["met"] is None  # gradflow failed: not measured
    assert lines["mlp step vs torch"]["met"] is False  # 1.7x > 1.5x


def test_kernels_gpu_table_shows_values_targets_and_errors(kernels_gpu):
    table = kernels_gpu.format_table(_fake_record())
    assert table.splitlines()[0] == "kernels_gpu on NVIDIA H100 80GB HBM3"
    assert "85%" in table and "1.7x" in table and "NO" in table and "yes" in table
    assert "error in rowwise.cross_entropy_fwd 4096x4096.gradflow: KeyError: boom" in table
    empty = kernels_gpu.format_table({"sections": {}, "error": "no CUDA: none here"})
    assert "error: no CUDA: none here" in empty


def test_kernels_gpu_adam_sizes_are_uneven_and_sum_to_the_total(kernels_gpu):
    sizes = kernels_gpu.adam_sizes()
    assert len(sizes) == kernels_gpu.ADAM_TENSORS == 100
    assert sum(sizes) == kernels_gpu.ADAM_PARAMS == 64 * 2**20
    assert len(set(sizes)) > 90 and all(size > 0 for size in sizes)


def test_kernels_gpu_arguments(kernels_gpu):
    args = kernels_gpu.parse_args(["--quick", "--sections", "copy, adam", "--json", "x.json"])
    assert args.quick and args.sections == ["copy", "adam"] and args.json == "x.json"
    with pytest.raises(SystemExit):
        kernels_gpu.parse_args(["--sections", "copy,nope"])


@pytest.mark.skipif(gf.cuda.is_available(), reason="with CUDA this would run the whole benchmark")
def test_kernels_gpu_without_cuda_says_so_and_exits_0(kernels_gpu, tmp_path, capsys):
    out = tmp_path / "k.json"
    assert kernels_gpu.main(["--json", str(out)]) == 0
    assert "no CUDA" in capsys.readouterr().out
    import json

    record = json.loads(out.read_text())
    assert record["error"].startswith("no CUDA") and record["environment"]["numpy"] == np.__version__
    assert kernels_gpu.main(["--summarize", str(out)]) == 0
    assert "kernels_gpu on" in capsys.readouterr().out
