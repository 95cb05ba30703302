"""gradflow.optim._functional: one entry point per optimizer, scalar terms computed once per tensor."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow import optim
from gradflow.optim import _functional

LATE_START_CASES = [
    (optim.Adam, {"lr": 0.1, "amsgrad": True, "weight_decay": 0.1}),
    (optim.AdamW, {"lr": 0.1, "betas": (0.5, 0.9)}),
    (optim.Adagrad, {"lr": 0.1, "lr_decay": 0.5}),
    (optim.RMSprop, {"lr": 0.01, "centered": True}),
]


@pytest.mark.parametrize(("cls", "options"), LATE_START_CASES, ids=[c.__name__ for c, _ in LATE_START_CASES])
def test_a_parameter_that_starts_later_gets_the_corrections_of_its_own_step_count(cls, options):
    # In one group, `late` gets its first gradient at step 4 of `early`: one call then carries
    # step counts 4 and 1, and `late` must move exactly as it would in an optimizer of its own.
    rng = np.random.default_rng(0)
    early = gradflow.tensor(rng.standard_normal(6).astype(np.float32), requires_grad=True)
    late = gradflow.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    alone = late.detach().clone().requires_grad_()
    shared, own = cls([early, late], **options), cls([alone], **options)
    for iteration in range(6):
        early.grad = gradflow.tensor(rng.standard_normal(6).astype(np.float32))
        grad = rng.standard_normal(5).astype(np.float32)
        if iteration >= 3:
            late.grad, alone.grad = gradflow.tensor(grad), gradflow.tensor(grad)
            own.step()
        shared.step()
    assert shared.state[early]["step"].item() == 6.0 and shared.state[late]["step"].item() == 3.0
    np.testing.assert_array_equal(late.detach().numpy(), alone.detach().numpy())
    for key, value in own.state[alone].items():
        np.testing.assert_array_equal(shared.state[late][key].numpy(), value.numpy(), err_msg=key)


def test_adam_counts_the_steps_of_empty_parameters_too():
    params = [gradflow.zeros(0), gradflow.tensor([1.0, -1.0])]
    grads = [gradflow.zeros(0), gradflow.tensor([0.5, 0.5])]
    steps = [gradflow.tensor(2.0), gradflow.tensor(0.0)]
    moments = [[gradflow.zeros_like(p) for p in params] for _ in range(2)]
    options = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
    _functional.adam(params, grads, *moments, [], steps, amsgrad=False, maximize=False, **options)
    assert [step.item() for step in steps] == [3.0, 1.0]
    # The first step of Adam moves every element by lr against the sign of its gradient.
    np.testing.assert_allclose(params[1].numpy(), [0.9, -1.1], rtol=1e-6)


def test_a_state_list_of_another_length_is_refused_naming_the_list():
    params = [gradflow.zeros(3), gradflow.zeros(2)]
    grads = [gradflow.ones(3), gradflow.ones(2)]
    with pytest.raises(ValueError, match="adagrad: got 2 parameters but 1 state_sums"):
        _functional.adagrad(
            params, grads, [gradflow.zeros(3)], [gradflow.tensor(0.0)] * 2,
            lr=0.1, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="sgd: got 2 parameters but 1 momentum_buffers"):
        _functional.sgd(
            params, grads, [gradflow.zeros(3)],
            lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
            first_steps=[True, True],
        )  # fmt: skip


def test_sgd_without_momentum_takes_no_buffers():
    param = gradflow.tensor([1.0, 2.0])
    _functional.sgd(
        [param], [gradflow.tensor([1.0, -1.0])], [],
        lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_steps=[],
    )  # fmt: skip
    assert param.tolist() == [0.5, 2.5]


def test_adam_scalars_are_worked_out_per_step_count():
    step_sizes, corrections = _functional.adam_scalars([1.0, 2.0, 1.0], 0.1, 0.5, 0.75)
    assert step_sizes == [0.2, 0.1 / 0.75, 0.2]
    assert corrections == [0.5, (1 - 0.75**2) ** 0.5, 0.5]
    assert _functional.adagrad_learning_rates([1.0, 3.0], 0.1, 0.5) == [0.1, 0.05]


@pytest.mark.cuda
def test_parameters_on_two_devices_in_one_call_are_refused():
    params = [gradflow.zeros(2), gradflow.zeros(2, device="cuda")]
    grads = [gradflow.ones(2), gradflow.ones(2, device="cuda")]
    with pytest.raises(gradflow.errors.DeviceMismatchError, match="sgd: expected every parameter on cpu"):
        _functional.sgd(
            params, grads, [],
            lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_steps=[],
        )  # fmt: skip
