"""gradflow.optim.lr_scheduler: each schedule against a plain-Python reference and against PyTorch.

Each case is a factory ``make(module, optimizer)`` called with gradflow's
``lr_scheduler`` module or torch's, so one line describes the same scheduler
for both. A run records ``get_last_lr()`` after construction and after every
``optimizer.step(); scheduler.step()``.
"""

from __future__ import annotations

import copy
import math
import warnings
from bisect import bisect_right

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow.optim import SGD, Adam, lr_scheduler

STEPS = 100
BASE_LRS = (0.1, 0.02)  # two param groups with different rates


def _gradflow_optimizer(kind="sgd", **kwargs):
    first, second = gradflow.zeros(2, requires_grad=True), gradflow.zeros(3, requires_grad=True)
    groups = [{"params": [first]}, {"params": [second], "lr": BASE_LRS[1]}]
    if kind == "adam":
        return Adam(groups, lr=BASE_LRS[0], **kwargs)
    return SGD(groups, lr=BASE_LRS[0], momentum=kwargs.pop("momentum", 0.9), **kwargs)


def _torch_optimizer(torch, kind="sgd", **kwargs):
    first, second = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    groups = [{"params": [first]}, {"params": [second], "lr": BASE_LRS[1]}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=BASE_LRS[0], **kwargs)
    return torch.optim.SGD(groups, lr=BASE_LRS[0], momentum=kwargs.pop("momentum", 0.9), **kwargs)


def _run(scheduler, optimizer, steps=STEPS, momentum_key=None):
    """Rates (and optionally momenta) per epoch: one row per step, one column per param group."""
    lrs, momenta = [list(scheduler.get_last_lr())], []
    if momentum_key:
        momenta.append([_momentum(group, momentum_key) for group in optimizer.param_groups])
    for _ in range(steps - 1):
        optimizer.step()
        scheduler.step()
        lrs.append(list(scheduler.get_last_lr()))
        if momentum_key:
            momenta.append([_momentum(group, momentum_key) for group in optimizer.param_groups])
    return (np.array(lrs), np.array(momenta)) if momentum_key else np.array(lrs)


def _momentum(group, key):
    return group["betas"][0] if key == "betas" else group["momentum"]


def _gradflow_lrs(make, steps=STEPS, kind="sgd", momentum_key=None):
    optimizer = _gradflow_optimizer(kind)
    return _run(make(lr_scheduler, optimizer), optimizer, steps, momentum_key)


def _torch_lrs(make, steps=STEPS, kind="sgd", momentum_key=None):
    torch = pytest.importorskip("torch")
    optimizer = _torch_optimizer(torch, kind)
    return _run(make(torch.optim.lr_scheduler, optimizer), optimizer, steps, momentum_key)


def _per_group(fn, steps=STEPS):
    """Reference table: ``fn(base_lr, epoch)`` for every epoch and group."""
    return np.array([[fn(base, epoch) for base in BASE_LRS] for epoch in range(steps)])


def _cosine(base, eta_min, t_cur, t_i):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def _warm_restart_position(epoch, t_0, t_mult):
    """(T_cur, T_i) for an epoch, by walking cycle lengths T_0, T_0*T_mult, ..."""
    start, length = 0, t_0
    while epoch >= start + length:
        start, length = start + length, length * t_mult
    return epoch - start, length


# Each case: (id, factory, reference(base_lr, epoch)).
CLOSED_FORM_CASES = [
    ("step", lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), lambda b, e: b * 0.5 ** (e // 3)),
    ("step_default_gamma", lambda m, o: m.StepLR(o, step_size=7), lambda b, e: b * 0.1 ** (e // 7)),
    (
        "multistep_repeated",
        lambda m, o: m.MultiStepLR(o, milestones=[60, 5, 20, 20], gamma=0.5),
        lambda b, e: b * 0.5 ** bisect_right([5, 20, 20, 60], e),
    ),
    ("exponential", lambda m, o: m.ExponentialLR(o, gamma=0.95), lambda b, e: b * 0.95**e),
    (
        "cosine",
        lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
        lambda b, e: _cosine(b, 0.001, e, 10),
    ),
    ("cosine_long", lambda m, o: m.CosineAnnealingLR(o, T_max=30), lambda b, e: _cosine(b, 0.0, e, 30)),
    (
        "warm_restarts",
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=0.005),
        lambda b, e: _cosine(b, 0.005, e % 7, 7),
    ),
    (
        "warm_restarts_mult",
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
        lambda b, e: _cosine(b, 0.0, *_warm_restart_position(e, 3, 2)),
    ),
    (
        "linear_warmup",
        lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=8),
        lambda b, e: b * (0.25 + 0.75 * min(e, 8) / 8),
    ),
    (
        "linear_decay",
        lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=20),
        lambda b, e: b * (1.0 - 0.9 * min(e, 20) / 20),
    ),
    (
        "linear_defaults",
        lambda m, o: m.LinearLR(o),
        lambda b, e: b * (1 / 3 + (2 / 3) * min(e, 5) / 5),
    ),
    (
        "constant",
        lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4),
        lambda b, e: b * (0.5 if e < 4 else 1.0),
    ),
    ("constant_defaults", lambda m, o: m.ConstantLR(o), lambda b, e: b * (1 / 3 if e < 5 else 1.0)),
    ("lambda", lambda m, o: m.LambdaLR(o, lr_lambda=lambda e: 0.9**e), lambda b, e: b * 0.9**e),
    (
        "lambda_per_group",
        lambda m, o: m.LambdaLR(o, lr_lambda=[lambda e: 1 / (1 + e), lambda e: 1.0 + 0.01 * e]),
        lambda b, e: b * (1 / (1 + e) if b == BASE_LRS[0] else 1.0 + 0.01 * e),
    ),
    (
        "multiplicative",
        lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.95),
        lambda b, e: b * 0.95**e,
    ),
    (
        "multiplicative_varying",
        lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 1 - 0.001 * e),
        lambda b, e: b * math.prod(1 - 0.001 * k for k in range(1, e + 1)),
    ),
    (
        "polynomial",
        lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.0),
        lambda b, e: b * (1 - min(e, 30) / 30) ** 2.0,
    ),
    ("polynomial_defaults", lambda m, o: m.PolynomialLR(o), lambda b, e: b * (1 - min(e, 5) / 5)),
]
CASE_IDS = [case[0] for case in CLOSED_FORM_CASES]


@pytest.mark.parametrize(("name", "make", "reference"), CLOSED_FORM_CASES, ids=CASE_IDS)
def test_sequence_matches_closed_form(name, make, reference):
    np.testing.assert_allclose(_gradflow_lrs(make), _per_group(reference), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize(("name", "make", "reference"), CLOSED_FORM_CASES, ids=CASE_IDS)
def test_sequence_matches_torch(name, make, reference):
    np.testing.assert_allclose(_gradflow_lrs(make), _torch_lrs(make), rtol=1e-12, atol=0)


def test_cosine_annealing_closed_form_method_matches_recursive_form():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=12, eta_min=0.01)
    for _ in range(50):
        optimizer.step()
        scheduler.step()
        np.testing.assert_allclose(scheduler._get_closed_form_lr(), scheduler.get_last_lr(), rtol=1e-10)


@pytest.mark.parametrize("name", ["step", "multistep_repeated", "exponential", "cosine", "linear_warmup", "polynomial"])
def test_step_with_epoch_warns_and_uses_closed_form(name):
    make, reference = next((m, r) for n, m, r in CLOSED_FORM_CASES if n == name)
    optimizer = _gradflow_optimizer()
    scheduler = make(lr_scheduler, optimizer)
    optimizer.step()
    for epoch in (17, 3, 42):
        with pytest.warns(UserWarning, match="epoch parameter"):
            scheduler.step(epoch)
        np.testing.assert_allclose(scheduler.get_last_lr(), [reference(b, epoch) for b in BASE_LRS], rtol=1e-12)
        assert scheduler.last_epoch == epoch


def test_warm_restarts_fractional_epochs_match_reference_and_torch():
    epochs = [e + i / 4 for e in range(30) for i in range(4)]

    def run(module, optimizer):
        scheduler = module.CosineAnnealingWarmRestarts(optimizer, T_0=3, T_mult=2, eta_min=0.001)
        rows = []
        for epoch in epochs:
            scheduler.step(epoch)
            rows.append(scheduler.get_last_lr())
        return np.array(rows), scheduler.last_epoch

    lrs, last_epoch = run(lr_scheduler, _gradflow_optimizer())
    reference = [[_cosine(b, 0.001, *_warm_restart_position(e, 3, 2)) for b in BASE_LRS] for e in epochs]
    np.testing.assert_allclose(lrs, reference, rtol=1e-10)
    assert last_epoch == math.floor(epochs[-1])
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(lrs, run(torch.optim.lr_scheduler, _torch_optimizer(torch))[0], rtol=1e-12)


def test_warm_restarts_rejects_negative_epoch():
    scheduler = lr_scheduler.CosineAnnealingWarmRestarts(_gradflow_optimizer(), T_0=3)
    with pytest.raises(ValueError, match="non-negative epoch"):
        scheduler.step(-1)


# --- OneCycleLR and CyclicLR ---------------------------------------------------------------------------------


def _one_cycle_reference(max_lr, total, pct, div, final_div, strategy, three_phase, base_m=0.85, max_m=0.95):
    """(lr, momentum) at each step, from the phase boundaries of the 1cycle policy."""
    initial, low = max_lr / div, max_lr / div / final_div
    if strategy == "cos":
        anneal = lambda a, b, f: b + (a - b) * (1 + math.cos(math.pi * f)) / 2
    else:
        anneal = lambda a, b, f: a + (b - a) * f
    if three_phase:
        ends = [pct * total - 1, 2 * pct * total - 2, total - 1]
        lr_points = [(initial, max_lr), (max_lr, initial), (initial, low)]
        m_points = [(max_m, base_m), (base_m, max_m), (max_m, max_m)]
    else:
        ends = [pct * total - 1, total - 1]
        lr_points, m_points = [(initial, max_lr), (max_lr, low)], [(max_m, base_m), (base_m, max_m)]
    rows = []
    for step in range(total):
        phase = next(i for i, end in enumerate(ends) if step <= end or i == len(ends) - 1)
        start = 0.0 if phase == 0 else ends[phase - 1]
        fraction = (step - start) / (ends[phase] - start)
        rows.append((anneal(*lr_points[phase], fraction), anneal(*m_points[phase], fraction)))
    return np.array(rows)


ONE_CYCLE_CASES = [
    ("cos", dict(total_steps=STEPS), dict(pct=0.3, div=25.0, final_div=1e4, strategy="cos", three_phase=False)),
    (
        "linear_epochs",
        dict(epochs=10, steps_per_epoch=10, anneal_strategy="linear", pct_start=0.25),
        dict(pct=0.25, div=25.0, final_div=1e4, strategy="linear", three_phase=False),
    ),
    (
        "three_phase",
        dict(total_steps=STEPS, three_phase=True, div_factor=10.0, final_div_factor=100.0),
        dict(pct=0.3, div=10.0, final_div=100.0, strategy="cos", three_phase=True),
    ),
    (
        "three_phase_linear",
        dict(total_steps=STEPS, three_phase=True, anneal_strategy="linear", pct_start=0.4),
        dict(pct=0.4, div=25.0, final_div=1e4, strategy="linear", three_phase=True),
    ),
]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize(("name", "kwargs", "ref"), ONE_CYCLE_CASES, ids=[c[0] for c in ONE_CYCLE_CASES])
def test_one_cycle_matches_reference_and_torch(kind, name, kwargs, ref):
    key = "betas" if kind == "adam" else "momentum"
    make = lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], **kwargs)
    lrs, momenta = _gradflow_lrs(make, kind=kind, momentum_key=key)
    for column, max_lr in enumerate([1.0, 0.5]):
        expected = _one_cycle_reference(max_lr, STEPS, **ref)
        np.testing.assert_allclose(lrs[:, column], expected[:, 0], rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(momenta[:, column], expected[:, 1], rtol=1e-10)
    torch_lrs, torch_momenta = _torch_lrs(make, kind=kind, momentum_key=key)
    np.testing.assert_allclose(lrs, torch_lrs, rtol=1e-12, atol=0)
    np.testing.assert_allclose(momenta, torch_momenta, rtol=1e-12, atol=0)


def test_one_cycle_adam_keeps_beta2_and_sets_group_bounds():
    optimizer = _gradflow_optimizer("adam", betas=(0.9, 0.98))
    lr_scheduler.OneCycleLR(optimizer, max_lr=0.4, total_steps=10, base_momentum=0.8, max_momentum=0.9)
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.98)
    assert (group["initial_lr"], group["max_lr"], group["min_lr"]) == (0.4 / 25, 0.4, 0.4 / 25 / 1e4)
    assert (group["base_momentum"], group["max_momentum"]) == (0.8, 0.9)
    assert group["lr"] == pytest.approx(0.4 / 25, rel=1e-12)  # cos(0) annealing rounds in the last bits


def test_one_cycle_raises_when_stepped_past_total_steps():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10, cycle_momentum=False)
    optimizer.step()
    for _ in range(10):  # PyTorch allows last_epoch == total_steps
        scheduler.step()
    with pytest.raises(ValueError, match="Tried to step 11 times. The specified number of total steps is 10"):
        scheduler.step()


def _cyclic_reference(base, peak, up, down, scale, scale_mode, steps=STEPS):
    """Triangular wave between base and peak, amplitude times scale(cycle or step)."""
    rows = []
    for step in range(steps):
        offset, cycle = step % (up + down), step // (up + down) + 1
        fraction = offset / up if offset <= up else (up + down - offset) / down
        rows.append(fraction * scale(cycle if scale_mode == "cycle" else step))
    fractions = np.array(rows)
    return base + (peak - base) * fractions, fractions


CYCLIC_CASES = [
    ("triangular", dict(step_size_up=5), 5, 5, lambda x: 1.0, "cycle"),
    (
        "triangular2",
        dict(step_size_up=4, step_size_down=6, mode="triangular2"),
        4,
        6,
        lambda x: 0.5 ** (x - 1),
        "cycle",
    ),
    # exp_range scales per step whatever scale_mode says.
    ("exp_range", dict(step_size_up=3, mode="exp_range", gamma=0.98), 3, 3, lambda x: 0.98**x, "iterations"),
    (
        "custom_iterations",
        dict(step_size_up=6, step_size_down=2, scale_fn=lambda x: 1 / (1 + 0.01 * x), scale_mode="iterations"),
        6,
        2,
        lambda x: 1 / (1 + 0.01 * x),
        "iterations",
    ),
    (
        "custom_cycle",
        dict(step_size_up=2, scale_fn=lambda x: 0.9**x),
        2,
        2,
        lambda x: 0.9**x,
        "cycle",
    ),
]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize(
    ("name", "kwargs", "up", "down", "scale", "mode"), CYCLIC_CASES, ids=[c[0] for c in CYCLIC_CASES]
)
def test_cyclic_matches_reference_and_torch(kind, name, kwargs, up, down, scale, mode):
    key = "betas" if kind == "adam" else "momentum"
    make = lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.001], max_lr=[0.1, 0.004], **kwargs)
    lrs, momenta = _gradflow_lrs(make, kind=kind, momentum_key=key)
    for column, (base, peak) in enumerate([(0.01, 0.1), (0.001, 0.004)]):
        expected, fractions = _cyclic_reference(base, peak, up, down, scale, mode)
        np.testing.assert_allclose(lrs[:, column], expected, rtol=1e-10)
        np.testing.assert_allclose(momenta[:, column], 0.9 - 0.1 * fractions, rtol=1e-10)
    torch_lrs, torch_momenta = _torch_lrs(make, kind=kind, momentum_key=key)
    np.testing.assert_allclose(lrs, torch_lrs, rtol=1e-12, atol=0)
    np.testing.assert_allclose(momenta, torch_momenta, rtol=1e-12, atol=0)


def test_cyclic_without_momentum_leaves_momentum_alone():
    optimizer = _gradflow_optimizer(momentum=0.5)
    scheduler = lr_scheduler.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False)
    _run(scheduler, optimizer, steps=5)
    assert [group["momentum"] for group in optimizer.param_groups] == [0.5, 0.5]
    assert scheduler.base_lrs == [0.01, 0.01]


class _Halving:
    """A callable object: its __dict__ is state that state_dict keeps."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, x):
        return self.rate**x


def test_cyclic_state_dict_saves_callable_object_state_but_not_functions():
    make = lambda fn: lr_scheduler.CyclicLR(_gradflow_optimizer(), 0.01, 0.1, step_size_up=2, scale_fn=fn)
    assert make(lambda x: 1.0).state_dict()["_scale_fn_custom"] is None
    assert make(None).state_dict()["_scale_fn_custom"] is None
    saved = make(_Halving(0.25)).state_dict()
    assert saved["_scale_fn_custom"] == {"rate": 0.25}
    restored = make(_Halving(0.5))
    restored.load_state_dict(saved)
    assert restored.scale_fn(2) == 0.0625


# --- ReduceLROnPlateau -------------------------------------------------------------------------------------------


def test_plateau_scripted_metrics_min_mode():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2, cooldown=1, min_lr=[0.02, 0.0])
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6]
    # Bad epochs: 3rd-5th (third one cuts), 6th is in cooldown, 7th-9th (9th cuts), then 0.5 improves.
    expected_first = [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
    expected_first[8:] = [0.025] * 4
    seen = []
    for metric in metrics:
        scheduler.step(metric)
        seen.append(scheduler.get_last_lr())
    np.testing.assert_allclose([row[0] for row in seen], [max(v, 0.02) for v in expected_first])
    np.testing.assert_allclose([row[1] for row in seen], [v / 5 for v in expected_first])
    assert scheduler.best == 0.5 and scheduler.num_bad_epochs == 2 and scheduler.last_epoch == 12


def test_plateau_respects_min_lr_and_eps():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=0, min_lr=0.05, eps=0.04)
    scheduler.step(1.0)
    scheduler.step(1.0)  # group 0: 0.1 -> max(0.01, 0.05) = 0.05; group 1: 0.02 - 0.05 < eps, kept
    assert scheduler.get_last_lr() == [0.05, 0.02]


def test_plateau_accepts_a_tensor_metric():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, patience=0)
    scheduler.step(gradflow.tensor(2.0))
    scheduler.step(gradflow.tensor(3.0))
    assert scheduler.best == 2.0
    np.testing.assert_allclose(scheduler.get_last_lr(), [0.01, 0.002])


PLATEAU_CASES = [
    dict(),
    dict(mode="max", factor=0.5, patience=3),
    dict(threshold_mode="abs", threshold=0.05, patience=2, cooldown=3),
    dict(mode="max", threshold_mode="abs", threshold=0.01, patience=1, min_lr=[0.001, 0.0005]),
    dict(factor=0.3, patience=0, eps=1e-3, min_lr=1e-3),
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES)
def test_plateau_matches_torch_on_a_noisy_metric(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    metrics = np.cumsum(rng.normal(0.0, 0.05, STEPS)) + 0.1 * np.sin(np.arange(STEPS) / 5)

    def run(module, optimizer):
        scheduler = module.ReduceLROnPlateau(optimizer, **kwargs)
        rows = []
        for metric in metrics:
            scheduler.step(float(metric))
            rows.append(scheduler.get_last_lr())
        return np.array(rows), scheduler.state_dict()

    ours, our_state = run(lr_scheduler, _gradflow_optimizer())
    theirs, their_state = run(torch.optim.lr_scheduler, _torch_optimizer(torch))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert len(np.unique(ours[:, 0])) > 1  # the script really reduces the rate
    for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "min_lrs"):
        assert our_state[key] == their_state[key]


def test_plateau_state_dict_round_trip():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=1)
    for metric in (1.0, 2.0, 1.5):
        scheduler.step(metric)
    restored = lr_scheduler.ReduceLROnPlateau(_gradflow_optimizer(), mode="min")
    restored.load_state_dict(copy.deepcopy(scheduler.state_dict()))
    assert (restored.mode, restored.mode_worse, restored.best, restored.num_bad_epochs) == ("max", -math.inf, 2.0, 1)
    restored.step(1.0)  # second bad epoch: patience 1 exceeded
    assert restored.get_last_lr() == pytest.approx([0.01, 0.002])


# --- SequentialLR and ChainedScheduler ----------------------------------------------------------------------------

COMBINED_CASES = [
    (
        "warmup_then_exponential",
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.2, total_iters=5), m.ExponentialLR(o, gamma=0.9)], milestones=[5]
        ),
        lambda b, e: b * (0.2 + 0.8 * e / 5) if e < 5 else b * 0.9 ** (e - 5),
    ),
    (
        "three_stages",
        lambda m, o: m.SequentialLR(
            o,
            [m.ConstantLR(o, factor=0.5, total_iters=100), m.StepLR(o, step_size=4), m.CosineAnnealingLR(o, T_max=20)],
            milestones=[10, 30],
        ),
        lambda b, e: b * 0.5 if e < 10 else (b * 0.1 ** ((e - 10) // 4) if e < 30 else _cosine(b, 0.0, e - 30, 20)),
    ),
    (
        "chained_constant_exponential",
        lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.1, total_iters=3), m.ExponentialLR(o, gamma=0.9)]),
        lambda b, e: b * 0.9**e * (0.1 if e < 3 else 1.0),
    ),
    (
        "chained_with_optimizer_argument",
        lambda m, o: m.ChainedScheduler([m.StepLR(o, 10, gamma=0.5), m.MultiplicativeLR(o, lambda e: 0.99)], o),
        lambda b, e: b * 0.5 ** (e // 10) * 0.99**e,
    ),
    (
        "sequential_starting_with_chained",
        lambda m, o: m.SequentialLR(
            o,
            [
                m.ChainedScheduler([m.ExponentialLR(o, gamma=0.95), m.StepLR(o, step_size=10, gamma=0.5)]),
                m.LinearLR(o, start_factor=0.5, total_iters=4),
            ],
            milestones=[16],
        ),
        None,  # nested initial steps: torch's sequence is the reference
    ),
]


# A chained scheduler first in a SequentialLR steps its children before any optimizer.step(): PyTorch warns too.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
@pytest.mark.parametrize(("name", "make", "reference"), COMBINED_CASES, ids=[c[0] for c in COMBINED_CASES])
def test_combined_schedulers_match_reference_and_torch(name, make, reference):
    lrs = _gradflow_lrs(make)
    if reference is not None:
        np.testing.assert_allclose(lrs, _per_group(reference), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(lrs, _torch_lrs(make), rtol=1e-12, atol=0)


ROUND_TRIP_CASES = [
    *((name, make, "sgd") for name, make, _ in CLOSED_FORM_CASES),
    *((name, make, "sgd") for name, make, _ in COMBINED_CASES),
    ("one_cycle_adam", lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS, three_phase=True), "adam"),
    ("cyclic_sgd", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=7, mode="triangular2"), "sgd"),
]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
@pytest.mark.parametrize(("name", "make", "kind"), ROUND_TRIP_CASES, ids=[c[0] for c in ROUND_TRIP_CASES])
def test_state_dict_round_trip_continues_the_sequence(name, make, kind):
    optimizer = _gradflow_optimizer(kind)
    scheduler = make(lr_scheduler, optimizer)
    _run(scheduler, optimizer, steps=38)
    saved = copy.deepcopy(scheduler.state_dict())
    saved_groups = copy.deepcopy(
        [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    )
    assert "optimizer" not in saved
    expected = _run(scheduler, optimizer, steps=40)

    # Resume as a training script does: new optimizer and scheduler, then both states (the optimizer's
    # param groups are what optimizer.load_state_dict restores).
    restored_optimizer = _gradflow_optimizer(kind)
    restored = make(lr_scheduler, restored_optimizer)
    for group, saved_group in zip(restored_optimizer.param_groups, saved_groups):
        group.update(saved_group)
    restored.load_state_dict(saved)
    np.testing.assert_array_equal(_run(restored, restored_optimizer, steps=40), expected)


@pytest.mark.parametrize(
    "make",
    [
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=20),
        lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.LinearLR(o, 0.1, total_iters=4), lr_scheduler.ExponentialLR(o, 0.8)], [4]
        ),
    ],
)
def test_checkpoint_resume_with_optimizer_state_dict_equals_uninterrupted_training(make):
    def train(weight, optimizer, scheduler, steps):
        rates = []
        for _ in range(steps):
            optimizer.zero_grad()
            (weight * weight).sum().backward()
            optimizer.step()
            scheduler.step()
            rates.append(scheduler.get_last_lr()[0])
        return rates

    def fresh(values):
        weight = gradflow.tensor(values, dtype=gradflow.float64, requires_grad=True)
        optimizer = Adam([weight], lr=0.01)
        return weight, optimizer, make(optimizer)

    start = [1.0, -2.0, 0.5]
    weight, optimizer, scheduler = fresh(start)
    uninterrupted = train(weight, optimizer, scheduler, 18)
    final_weight = weight.tolist()

    weight, optimizer, scheduler = fresh(start)
    first_part = train(weight, optimizer, scheduler, 7)
    checkpoint = copy.deepcopy((optimizer.state_dict(), scheduler.state_dict(), weight.tolist()))
    weight, optimizer, scheduler = fresh(checkpoint[2])
    optimizer.load_state_dict(checkpoint[0])
    scheduler.load_state_dict(checkpoint[1])
    second_part = train(weight, optimizer, scheduler, 11)
    assert first_part + second_part == uninterrupted
    assert weight.tolist() == final_weight


def test_composite_state_dict_holds_each_child_state():
    optimizer = _gradflow_optimizer()
    children = [lr_scheduler.ConstantLR(optimizer, total_iters=2), lr_scheduler.ExponentialLR(optimizer, 0.5)]
    scheduler = lr_scheduler.SequentialLR(optimizer, children, milestones=[3])
    saved = scheduler.state_dict()
    assert saved["_schedulers"] == [child.state_dict() for child in children]
    assert saved["_milestones"] == [3] and "optimizer" not in saved


# --- the base class: bookkeeping, warnings, state ---------------------------------------------------------------


def test_construction_sets_initial_lr_base_lrs_and_epoch_zero():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=2)
    assert [group["initial_lr"] for group in optimizer.param_groups] == list(BASE_LRS)
    assert scheduler.base_lrs == list(BASE_LRS) and scheduler.last_epoch == 0
    assert scheduler.get_last_lr() == [group["lr"] for group in optimizer.param_groups] == [0.05, 0.01]
    # A second scheduler keeps the first one's initial_lr rather than the already-scaled rate.
    second = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    assert second.base_lrs == list(BASE_LRS)


def test_get_last_lr_is_what_the_groups_hold_after_each_step():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
        assert scheduler.get_last_lr() == [group["lr"] for group in optimizer.param_groups]
    assert scheduler.get_last_lr() == [0.025, 0.005]


def test_scheduled_rates_drive_the_sgd_update(device):
    weight = gradflow.zeros(3, device=device, dtype=gradflow.float64, requires_grad=True)
    optimizer = SGD([weight], lr=0.5)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    for _ in range(4):
        optimizer.zero_grad()
        weight.sum().backward()  # gradient 1 everywhere
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(weight.detach().numpy(force=True), -(0.5 + 0.25 + 0.125 + 0.0625) * np.ones(3))


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match=r"initial_lr.*param_groups\[0\]"):
        lr_scheduler.StepLR(_gradflow_optimizer(), step_size=2, last_epoch=4)


@pytest.mark.parametrize(
    "make",
    [
        lambda m, o, last: m.CosineAnnealingLR(o, T_max=10, last_epoch=last),
        lambda m, o, last: m.StepLR(o, step_size=3, gamma=0.5, last_epoch=last),
        lambda m, o, last: m.LinearLR(o, start_factor=0.25, total_iters=8, last_epoch=last),
    ],
)
def test_resuming_with_last_epoch_matches_torch(make):
    """A scheduler created with last_epoch=k keeps the restored rate for its initial step, then continues."""
    torch = pytest.importorskip("torch")

    def resume(module, optimizer):
        for group in optimizer.param_groups:
            group["initial_lr"] = group["lr"]
            group["lr"] = group["lr"] * 0.7  # the rate a checkpoint would have restored
        scheduler = make(module, optimizer, 4)
        assert scheduler.last_epoch == 5
        return _run(scheduler, optimizer, steps=20)

    ours = resume(lr_scheduler, _gradflow_optimizer())
    np.testing.assert_allclose(ours[0], [0.07, 0.014], rtol=1e-12)
    np.testing.assert_allclose(ours, resume(torch.optim.lr_scheduler, _torch_optimizer(torch)), rtol=1e-12, atol=0)


def test_scheduler_step_before_optimizer_step_warns():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    with pytest.warns(UserWarning, match=r"before `optimizer.step\(\)`"):
        scheduler.step()
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    optimizer.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    optimizer.step = lambda closure=None: None  # replaced after the scheduler wrapped it
    with pytest.warns(UserWarning, match="has been overridden"):
        scheduler.step()


def test_get_lr_outside_step_warns_to_use_get_last_lr():
    scheduler = lr_scheduler.ExponentialLR(_gradflow_optimizer(), gamma=0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        scheduler.get_lr()


def test_lambda_state_dict_stores_none_for_functions_and_state_for_callable_objects():
    optimizer = _gradflow_optimizer()
    scheduler = lr_scheduler.LambdaLR(optimizer, [lambda e: 1.0, _Halving(0.5)])
    saved = scheduler.state_dict()
    assert saved["lr_lambdas"] == [None, {"rate": 0.5}]
    assert "optimizer" not in saved and saved["base_lrs"] == list(BASE_LRS)
    restored = lr_scheduler.LambdaLR(_gradflow_optimizer(), [lambda e: 1.0, _Halving(0.9)])
    restored.load_state_dict(saved)
    assert restored.lr_lambdas[1].rate == 0.5
    assert saved["lr_lambdas"] == [None, {"rate": 0.5}]  # loading does not consume the dict
    multiplicative = lr_scheduler.MultiplicativeLR(_gradflow_optimizer(), _Halving(0.7))
    assert multiplicative.state_dict()["lr_lambdas"] == [{"rate": 0.7}, {"rate": 0.7}]


def test_private_alias_and_subclassing():
    assert lr_scheduler._LRScheduler is lr_scheduler.LRScheduler

    class Halve(lr_scheduler.LRScheduler):
        def get_lr(self):
            return [base / 2**self.last_epoch for base in self.base_lrs]

    optimizer = _gradflow_optimizer()
    np.testing.assert_allclose(_run(Halve(optimizer), optimizer, steps=4)[:, 0], [0.1, 0.05, 0.025, 0.0125])
    with pytest.raises(TypeError):
        lr_scheduler.LRScheduler(_gradflow_optimizer())  # get_lr is abstract


@settings(max_examples=30, deadline=None)
@given(
    step_size=st.integers(1, 12),
    gamma=st.floats(0.05, 1.0),
    t_max=st.integers(1, 40),
    eta_min=st.floats(0.0, 0.01),
)
def test_random_arguments_match_closed_forms(step_size, gamma, t_max, eta_min):
    steps = 60
    step_lrs = _gradflow_lrs(lambda m, o: m.StepLR(o, step_size, gamma), steps=steps)
    np.testing.assert_allclose(step_lrs, _per_group(lambda b, e: b * gamma ** (e // step_size), steps), rtol=1e-10)
    cosine = _gradflow_lrs(lambda m, o: m.CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min), steps=steps)
    reference = _per_group(lambda b, e: _cosine(b, eta_min, e, t_max), steps)
    np.testing.assert_allclose(cosine, reference, rtol=1e-9, atol=1e-12)


# --- argument validation ------------------------------------------------------------------------------------------


def _scheduler_on_another_optimizer(o):
    return lr_scheduler.StepLR(_gradflow_optimizer(), 2)


VALIDATION_CASES = [
    (lambda o: lr_scheduler.StepLR(object(), 2), TypeError, "object is not an Optimizer"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError, r"Factor should be < 1.0"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), ValueError, "mode up is unknown"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold mode x is unknown"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
    (lambda o: lr_scheduler.ConstantLR(o, factor=1.5), ValueError, "Constant multiplicative factor"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=1.1), ValueError, "Ending multiplicative factor"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda o: lr_scheduler.MultiplicativeLR(o, 0.5), TypeError, "lr_lambda should be a function"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "positive integer T_0"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), ValueError, "T_mult >= 1"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"), ValueError, "float or int eta_min"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, "either total_steps OR"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError, "positive integer total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=2), ValueError, "positive integer epochs"),
    (
        lambda o: lr_scheduler.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=1.5),
        ValueError,
        "positive integer steps_per_epoch",
    ),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, 10, pct_start=1.5), ValueError, "between 0 and 1 pct_start"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, 10, anneal_strategy="exp"), ValueError, "anneal_strategy must be"),
    (lambda o: lr_scheduler.OneCycleLR(o, [0.1, 0.2, 0.3], 10), ValueError, "max_lr must have the same length"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, mode="sine"), ValueError, "mode is invalid and scale_fn is None"),
    (lambda o: lr_scheduler.CyclicLR(o, [0.01], 0.1), ValueError, "base_lr must have the same length"),
    (lambda o: lr_scheduler.SequentialLR(o, [], milestones=[]), ValueError, "expects at least one scheduler"),
    (
        lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], milestones=[3]),
        ValueError,
        "number of schedulers 1 and the number of milestones to be equal to 1",
    ),
    (
        lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2), _scheduler_on_another_optimizer(o)], [3]),
        ValueError,
        "expects all schedulers to belong to the same optimizer",
    ),
    (
        lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ReduceLROnPlateau(o)], []),
        ValueError,
        "does not support `ReduceLROnPlateau`",
    ),
    (lambda o: lr_scheduler.ChainedScheduler([]), ValueError, "expects at least one scheduler to be chained"),
    (
        lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(o, 2), _scheduler_on_another_optimizer(o)]),
        ValueError,
        "expects all schedulers to belong to the same optimizer",
    ),
    (lambda o: lr_scheduler.ChainedScheduler([object()], o), TypeError, "should have `optimizer` as its attribute"),
]


@pytest.mark.parametrize(("build", "error", "message"), VALIDATION_CASES)
def test_bad_arguments_raise_pytorch_errors(build, error, message):
    with pytest.raises(error, match=message):
        build(_gradflow_optimizer())


def test_cycle_momentum_needs_momentum_or_betas():
    class Plain(SGD):
        """An optimizer whose defaults have neither momentum nor betas."""

        def __init__(self, params, lr):
            super().__init__(params, lr=lr)
            self.defaults = {"lr": lr}

    optimizer = Plain([gradflow.zeros(2, requires_grad=True)], lr=0.1)
    for build in (
        lambda: lr_scheduler.CyclicLR(optimizer, 0.01, 0.1),
        lambda: lr_scheduler.OneCycleLR(optimizer, 0.1, 10),
    ):
        with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
            build()
