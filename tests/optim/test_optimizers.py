"""Each optimizer and option against a plain-NumPy reference (float64) and against torch.optim (float32)."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow import optim
from gradflow.backends import optim_numpy

STEPS = 30
SHAPES = [(5,), (2, 3), (4, 4)]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of 4 elements, so these small parameters cross the CPU primitive's chunk boundaries."""
    monkeypatch.setattr(optim_numpy, "CHUNK_ELEMENTS", 4)


# -- references: whole-array NumPy, written from PyTorch's documented algorithms ----------------
def ref_sgd(p, g, state, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    g = -g if maximize else g
    g = g + weight_decay * p
    if momentum != 0:
        if "buf" not in state:
            state["buf"] = g.copy()
        else:
            state["buf"] = momentum * state["buf"] + (1 - dampening) * g
        g = g + momentum * state["buf"] if nesterov else state["buf"]
    return p - lr * g


def ref_adam(
    p, g, state, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False, decoupled=False
):
    beta1, beta2 = betas
    t = state["t"] = state.get("t", 0) + 1
    g = -g if maximize else g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    v = state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    if amsgrad:
        v = state["v_max"] = np.maximum(state.get("v_max", 0.0), v)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    # PyTorch adds eps to sqrt(v) / sqrt(1 - beta2^t), i.e. to sqrt(v_hat).
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_adamw(p, g, state, lr, weight_decay=1e-2, **options):
    return ref_adam(p, g, state, lr, weight_decay=weight_decay, decoupled=True, **options)


def ref_rmsprop(p, g, state, lr, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False):
    g = -g if maximize else g
    g = g + weight_decay * p
    v = state["v"] = alpha * state.get("v", 0.0) + (1 - alpha) * g * g
    if centered:
        g_avg = state["g_avg"] = alpha * state.get("g_avg", 0.0) + (1 - alpha) * g
        avg = np.sqrt(v - g_avg * g_avg) + eps
    else:
        avg = np.sqrt(v) + eps
    if momentum > 0:
        buf = state["buf"] = momentum * state.get("buf", 0.0) + g / avg
        return p - lr * buf
    return p - lr * g / avg


def ref_adagrad(p, g, state, lr, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, maximize=False):
    t = state["t"] = state.get("t", 0) + 1
    g = -g if maximize else g
    g = g + weight_decay * p
    total = state["sum"] = state.get("sum", initial_accumulator_value) + g * g
    return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)


REFERENCES = {"SGD": ref_sgd, "Adam": ref_adam, "AdamW": ref_adamw, "RMSprop": ref_rmsprop, "Adagrad": ref_adagrad}
BASE_LR = {"SGD": 0.05, "Adam": 0.01, "AdamW": 0.01, "RMSprop": 0.01, "Adagrad": 0.1}

CASES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"weight_decay": 0.1}),
    ("SGD", {"maximize": True}),
    ("SGD", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.05, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", {"weight_decay": 0.1}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"maximize": True}),
    ("Adam", {"weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.2, "amsgrad": True}),
    ("AdamW", {"maximize": True, "betas": (0.5, 0.9)}),
    ("RMSprop", {}),
    ("RMSprop", {"alpha": 0.9}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"momentum": 0.8}),
    ("RMSprop", {"weight_decay": 0.1}),
    ("RMSprop", {"maximize": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.05, "maximize": True, "eps": 1e-4}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.05}),
    ("Adagrad", {"weight_decay": 0.1}),
    ("Adagrad", {"initial_accumulator_value": 0.5}),
    ("Adagrad", {"eps": 1e-3}),
    ("Adagrad", {"maximize": True}),
    ("Adagrad", {"lr_decay": 0.01, "weight_decay": 0.05, "initial_accumulator_value": 0.1, "maximize": True}),
]
CASE_IDS = [name + "-" + ("-".join(f"{k}={v}" for k, v in options.items()) or "defaults") for name, options in CASES]


def initial_values(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in SHAPES]


def pseudo_grad(index: int, p: np.ndarray, step: int) -> np.ndarray:
    """A deterministic gradient: a quadratic's pull towards 0.5 plus a step-dependent ripple."""
    return (0.5 + 0.25 * index) * (p - 0.5) + 0.3 * np.cos(3.0 * p + step)


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_parameter_sequence_matches_numpy_reference(name, options):
    lr = BASE_LR[name]
    values = initial_values()
    params = [gradflow.tensor(v.copy(), requires_grad=True) for v in values]
    optimizer = getattr(optim, name)(params, lr=lr, **options)
    references = [v.copy() for v in values]
    ref_states = [{} for _ in values]
    for step in range(STEPS):
        for index, param in enumerate(params):
            param.grad = gradflow.tensor(pseudo_grad(index, param.detach().numpy(), step))
        optimizer.step()
        for index in range(len(values)):
            grad = pseudo_grad(index, references[index], step)
            references[index] = REFERENCES[name](references[index], grad, ref_states[index], lr, **options)
        for param, reference in zip(params, references):
            assert param.dtype == gradflow.float64
            np.testing.assert_allclose(param.detach().numpy(), reference, rtol=1e-12, atol=1e-12)
    # The trajectory really moved (a no-op step would fail above only if the reference stood still).
    assert not np.allclose(params[0].detach().numpy(), values[0])


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_float32_parameter_sequence_matches_torch(name, options):
    torch = pytest.importorskip("torch")
    lr = BASE_LR[name]
    values = [v.astype(np.float32) for v in initial_values(1)]
    params = [gradflow.tensor(v.copy(), requires_grad=True) for v in values]
    torch_params = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    optimizer = getattr(optim, name)(params, lr=lr, **options)
    torch_optimizer = getattr(torch.optim, name)(torch_params, lr=lr, foreach=False, **options)
    for step in range(STEPS):
        for index, (param, torch_param) in enumerate(zip(params, torch_params)):
            param.grad = gradflow.tensor(pseudo_grad(index, param.detach().numpy(), step))
            torch_param.grad = torch.from_numpy(pseudo_grad(index, torch_param.detach().numpy(), step))
        optimizer.step()
        torch_optimizer.step()
    for param, torch_param in zip(params, torch_params):
        assert param.dtype == gradflow.float32
        np.testing.assert_allclose(param.detach().numpy(), torch_param.detach().numpy(), rtol=2e-5, atol=2e-5)


def test_adam_on_gradients_from_backward_matches_reference():
    target = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    scale = np.arange(1.0, 7.0).reshape(2, 3)
    start = np.zeros((2, 3))
    weight = gradflow.tensor(start.copy(), requires_grad=True)
    optimizer = optim.Adam([weight], lr=0.05, amsgrad=True, weight_decay=0.01)
    reference, state = start.copy(), {}
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = (gradflow.tensor(scale) * (weight - gradflow.tensor(target)) ** 2).sum()
        loss.backward()
        optimizer.step()
        grad = 2.0 * scale * (reference - target)
        reference = ref_adam(reference, grad, state, 0.05, amsgrad=True, weight_decay=0.01)
    np.testing.assert_allclose(weight.detach().numpy(), reference, rtol=1e-12, atol=1e-14)
    # And Adam really optimizes: the loss went down towards the target.
    assert np.abs(weight.detach().numpy() - target).max() < np.abs(start - target).max()


def test_step_state_tensors_are_created_like_pytorch():
    param = gradflow.randn(3, 2, dtype=gradflow.float64, requires_grad=True)
    param.grad = gradflow.ones(3, 2, dtype=gradflow.float64)
    optimizer = optim.Adam([param], amsgrad=True)
    assert len(optimizer.state) == 0  # created on first use
    optimizer.step()
    optimizer.step()
    state = optimizer.state[param]
    assert sorted(state) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert state["step"].shape == () and state["step"].dtype == gradflow.float32
    assert state["step"].device == gradflow.device("cpu") and state["step"].item() == 2.0
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert state[key].shape == (3, 2) and state[key].dtype == gradflow.float64
