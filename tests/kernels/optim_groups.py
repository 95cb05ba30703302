"""Parameter groups of host arrays for the optimizer kernels' tests, and one step of either device kind.

The CPU's step is the real CPU update (``optim_numpy``), the kernels' reference; bfloat16,
which NumPy cannot compute with, is stored as uint16 bits and decoded around it here.
"""

from __future__ import annotations

import numpy as np

from gradflow.backends import kernels, optim_numpy
from gradflow.backends.fused import optim as fused
from gradflow.optim import _functional

ADAM_OPTIONS = [
    {"lr": 0.02, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "decoupled_weight_decay": False},
    {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1, "decoupled_weight_decay": False},
    {"lr": 0.02, "beta1": 0.3, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.1, "decoupled_weight_decay": True},
]
SGD_OPTIONS = [
    {"lr": 0.05, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01, "nesterov": False},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": True},
]
# Parameter storage: (array dtype, param_dtype keyword, state dtype).
STORAGES = {
    "float32": (np.float32, None, np.float32),
    "float64": (np.float64, None, np.float64),
    "float16": (np.float16, None, np.float32),
    "bfloat16": (np.uint16, "bfloat16", np.float32),
}


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """Decode bfloat16 values stored as uint16 bits (the high half of a float32)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def float32_to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 bits (uint16), to nearest even, as CUDA's cvt.rn.bf16.f32."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    bits = values.view(np.uint32).astype(np.uint64)  # uint64: the rounding add cannot overflow
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), np.uint16(0x7FFF), rounded)  # NaN stays NaN (canonical, like CUDA)


def to_storage(values: np.ndarray, storage: str) -> np.ndarray:
    dtype, param_dtype, _ = STORAGES[storage]
    if param_dtype == "bfloat16":
        return float32_to_bfloat16_bits(values).reshape(values.shape)
    return values.astype(dtype)


def decoded(array: np.ndarray, storage: str) -> np.ndarray:
    if STORAGES[storage][1] == "bfloat16":
        return bfloat16_bits_to_float32(array)
    return array.astype(np.float64 if storage == "float64" else np.float32)


def make_group(kind: str, sizes, storage: str, seed: int, amsgrad: bool = False, momentum: bool = True):
    """Host arrays of one parameter group: parameters in (-1, 1), gradients of magnitude 0.5..1.5."""
    rng = np.random.default_rng(seed)
    state_dtype = STORAGES[storage][2]
    group = {
        "params": [to_storage(rng.uniform(-1, 1, n).astype(np.float32), storage) for n in sizes],
        "grads": [to_storage(np.float32(0.5) + rng.random(n, dtype=np.float32), storage) for n in sizes],
    }
    for grad in group["grads"]:  # random signs
        signs = rng.random(grad.shape) < 0.5
        if STORAGES[storage][1] == "bfloat16":
            grad[signs] ^= np.uint16(0x8000)
        else:
            grad[signs] = -grad[signs]
    if kind == "adam":
        group["exp_avgs"] = [np.zeros(n, state_dtype) for n in sizes]
        group["exp_avg_sqs"] = [np.zeros(n, state_dtype) for n in sizes]
        group["max_exp_avg_sqs"] = [np.zeros(n, state_dtype) for n in sizes] if amsgrad else []
        group["steps"] = [np.array(float(i % 3), dtype=np.float32) for i in range(len(sizes))]  # unequal steps
    else:
        group["momentum_buffers"] = [np.zeros(n, state_dtype) for n in sizes] if momentum else []
    return group


def cpu_step(kind: str, lists: list, param_dtype, **keywords) -> None:
    """The CPU's update (``optim_numpy``): the reference of the kernels.

    bfloat16 bits, which NumPy cannot compute with, are decoded to float32, updated (as the
    CPU updates float16: in float32, with float32 state) and rounded back to bfloat16 once.
    """
    update = optim_numpy.adam_step if kind == "adam" else optim_numpy.sgd_step
    if param_dtype is None:
        update(*lists, **keywords)
        return
    params, grads = lists[0], lists[1]
    values = [bfloat16_bits_to_float32(p) for p in params]
    update(values, [bfloat16_bits_to_float32(g) for g in grads], *lists[2:], **keywords)
    for param, value in zip(params, values):
        param[...] = float32_to_bfloat16_bits(value).reshape(param.shape)


def cuda_step(kind: str, lists: list, param_dtype, **keywords) -> None:
    launcher = fused.cuda_adam_step if kind == "adam" else fused.cuda_sgd_step
    launcher(*lists, param_dtype=param_dtype, **keywords)


def step(kind: str, group: dict, implementation, options: dict, storage: str, **extra) -> None:
    """One step of ``implementation`` (``cpu_step`` or ``cuda_step``) on ``group``, counting its own steps."""
    keywords = dict(options, **extra)
    if kind == "adam":
        lists = [group[k] for k in ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs")]
        for counter in group["steps"]:
            counter += 1
        step_sizes, corrections = _functional.adam_scalars(
            [float(counter) for counter in group["steps"]], options["lr"], options["beta1"], options["beta2"]
        )
        keywords.update(step_sizes=step_sizes, bias_correction2_sqrts=corrections)
    else:
        lists = [group["params"], group["grads"], group["momentum_buffers"]]
    implementation(kind, lists, STORAGES[storage][1], **keywords)


def count_launches(monkeypatch) -> list:
    """The names of the kernels launched from now on (through the profiler's launch hook)."""
    names: list = []
    monkeypatch.setattr(kernels, "launch_hook", lambda family, name: names.append(name))
    return names
