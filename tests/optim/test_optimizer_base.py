"""Optimizer behaviour shared by all optimizers: construction, validation, groups, zero_grad, step, repr."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow import optim
from gradflow.errors import DtypeError, InplaceError
from gradflow.optim.optimizer import Optimizer, required

ALL = [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad]


def leaf(*values, dtype=gradflow.float64):
    return gradflow.tensor(list(values), dtype=dtype, requires_grad=True)


# -- construction ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_empty_parameter_list_raises(cls):
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        cls([])


@pytest.mark.parametrize("cls", ALL)
def test_a_bare_tensor_as_params_raises_type_error(cls):
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        cls(leaf(1.0))


def test_non_leaf_parameter_raises():
    x = leaf(1.0, 2.0)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([x * 2], lr=0.1)


def test_integer_parameter_raises_dtype_error():
    with pytest.raises(DtypeError, match="floating point.*int64"):
        optim.Adam([gradflow.tensor([1, 2])])


def test_non_tensor_parameter_raises_type_error():
    with pytest.raises(TypeError, match="can only optimize Tensors.*ndarray"):
        optim.SGD([np.zeros(3)], lr=0.1)


def test_param_group_given_as_a_set_raises_type_error():
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {leaf(1.0)}}], lr=0.1)


def test_generator_of_parameters_is_accepted():
    params = [leaf(1.0), leaf(2.0)]
    optimizer = optim.SGD((p for p in params), lr=0.1)
    assert optimizer.param_groups[0]["params"] == params


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (optim.SGD, {"lr": -1.0}, "Invalid learning rate: -1.0"),
        (optim.SGD, {"lr": float("nan")}, "Invalid learning rate: nan"),
        (optim.SGD, {"momentum": -0.5}, "Invalid momentum value: -0.5"),
        (optim.SGD, {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
        (optim.SGD, {"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
        (optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "Nesterov momentum requires"),
        (optim.Adam, {"lr": -0.1}, "Invalid learning rate: -0.1"),
        (optim.Adam, {"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
        (optim.Adam, {"betas": (1.5, 0.999)}, "Invalid beta parameter at index 0: 1.5"),
        (optim.Adam, {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
        (optim.Adam, {"betas": (-0.1, 0.9)}, "Invalid beta parameter at index 0: -0.1"),
        (optim.Adam, {"weight_decay": -1}, "Invalid weight_decay value: -1"),
        (optim.AdamW, {"weight_decay": -0.01}, "Invalid weight_decay value: -0.01"),
        (optim.AdamW, {"betas": (0.9, -0.5)}, "Invalid beta parameter at index 1: -0.5"),
        (optim.RMSprop, {"lr": -2.0}, "Invalid learning rate: -2.0"),
        (optim.RMSprop, {"eps": -1.0}, "Invalid epsilon value: -1.0"),
        (optim.RMSprop, {"momentum": -0.9}, "Invalid momentum value: -0.9"),
        (optim.RMSprop, {"weight_decay": -0.2}, "Invalid weight_decay value: -0.2"),
        (optim.RMSprop, {"alpha": -0.99}, "Invalid alpha value: -0.99"),
        (optim.Adagrad, {"lr": -0.01}, "Invalid learning rate: -0.01"),
        (optim.Adagrad, {"lr_decay": -0.1}, "Invalid lr_decay value: -0.1"),
        (optim.Adagrad, {"weight_decay": -0.3}, "Invalid weight_decay value: -0.3"),
        (optim.Adagrad, {"initial_accumulator_value": -1.0}, "Invalid initial_accumulator_value value: -1.0"),
        (optim.Adagrad, {"eps": -1e-10}, "Invalid epsilon value: -1e-10"),
    ],
)
def test_invalid_hyperparameter_raises_pytorch_message(cls, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls([leaf(1.0)], **options)


@pytest.mark.parametrize(("cls", "default_lr"), [(optim.SGD, 1e-3), (optim.Adam, 1e-3), (optim.RMSprop, 1e-2)])
def test_defaults_fill_the_param_group(cls, default_lr):
    optimizer = cls([leaf(1.0)])
    group = optimizer.param_groups[0]
    assert group["lr"] == default_lr
    assert {k: v for k, v in group.items() if k != "params"} == optimizer.defaults


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_group_keys_and_defaults_match_pytorch(name):
    torch = pytest.importorskip("torch")
    ours = getattr(optim, name)([leaf(1.0)]).param_groups[0]
    theirs = getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)]).param_groups[0]
    torch_only = {"foreach", "differentiable", "fused", "capturable", "params"}
    expected = {k: v for k, v in theirs.items() if k not in torch_only}
    assert {k: v for k, v in ours.items() if k != "params"} == expected


def test_adamw_is_adam_with_decoupled_decay_and_its_own_default():
    optimizer = optim.AdamW([leaf(1.0)])
    assert isinstance(optimizer, optim.Adam)
    assert optimizer.defaults["weight_decay"] == 1e-2
    assert optimizer.defaults["decoupled_weight_decay"] is True


# -- parameter groups --------------------------------------------------------------------------
def test_param_groups_with_different_lr_update_by_their_own_lr():
    a, b = leaf(1.0, 2.0), leaf(1.0, 2.0)
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1)
    a.grad = gradflow.ones(2, dtype=gradflow.float64)
    b.grad = gradflow.ones(2, dtype=gradflow.float64)
    optimizer.step()
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 1.9])
    np.testing.assert_allclose(b.detach().numpy(), [0.99, 1.99])


def test_add_param_group_fills_defaults_and_takes_part_in_steps():
    a, b = leaf(1.0), leaf(1.0)
    optimizer = optim.Adam([a], lr=0.1, betas=(0.5, 0.9))
    optimizer.add_param_group({"params": b, "lr": 0.2})
    assert len(optimizer.param_groups) == 2
    added = optimizer.param_groups[1]
    assert added["params"] == [b] and added["lr"] == 0.2 and added["betas"] == (0.5, 0.9)
    b.grad = gradflow.ones(1, dtype=gradflow.float64)
    optimizer.step()
    np.testing.assert_allclose(b.detach().numpy(), [0.8], rtol=1e-6)  # Adam's first step moves by lr
    np.testing.assert_allclose(a.detach().numpy(), [1.0])  # no grad: untouched


def test_add_param_group_rejects_a_parameter_already_in_a_group():
    a = leaf(1.0)
    optimizer = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optimizer.add_param_group({"params": [leaf(2.0), a]})


def test_add_param_group_requires_required_hyperparameters():
    class Plain(Optimizer):
        def __init__(self, params, lr=required):
            super().__init__(params, {"lr": lr})

    with pytest.raises(ValueError, match="didn't specify a value of required optimization parameter lr"):
        Plain([leaf(1.0)])
    plain = Plain([{"params": [leaf(1.0)], "lr": 0.5}])
    assert plain.param_groups[0]["lr"] == 0.5


def test_duplicate_parameter_in_one_group_warns():
    a = leaf(1.0)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([a, a], lr=0.1)


def test_named_parameters_are_kept_as_param_names():
    a, b = leaf(1.0), leaf(2.0)
    optimizer = optim.SGD([("weight", a), ("bias", b)], lr=0.1)
    group = optimizer.param_groups[0]
    assert group["params"] == [a, b] and group["param_names"] == ["weight", "bias"]
    assert optimizer.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


# -- zero_grad ---------------------------------------------------------------------------------
def test_zero_grad_sets_grads_to_none_by_default():
    a = leaf(1.0, 2.0)
    (a * a).sum().backward()
    optimizer = optim.SGD([a], lr=0.1)
    optimizer.zero_grad()
    assert a.grad is None


def test_zero_grad_without_set_to_none_zeroes_in_place():
    a = leaf(1.0, 2.0)
    (a * a).sum().backward()
    grad = a.grad
    optim.SGD([a], lr=0.1).zero_grad(set_to_none=False)
    assert a.grad is grad
    assert a.grad.tolist() == [0.0, 0.0]
    assert not a.grad.requires_grad


def test_zero_grad_detaches_a_grad_with_history():
    a = leaf(1.0, 2.0)
    (a * a).sum().backward(create_graph=True)
    assert a.grad.grad_fn is not None
    optim.SGD([a], lr=0.1).zero_grad(set_to_none=False)
    assert a.grad.grad_fn is None and a.grad.tolist() == [0.0, 0.0]


# -- step ----------------------------------------------------------------------------------------
def test_closure_is_evaluated_with_grad_enabled_and_its_loss_returned():
    a = leaf(3.0)
    optimizer = optim.SGD([a], lr=0.25)
    calls = []

    def closure():
        calls.append(gradflow.is_grad_enabled())
        optimizer.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    with gradflow.no_grad():
        loss = optimizer.step(closure)
    assert calls == [True]
    assert loss.item() == 9.0
    assert a.tolist() == [1.5]  # 3 - 0.25 * 6


def test_step_without_closure_returns_none():
    a = leaf(1.0)
    a.grad = gradflow.ones(1, dtype=gradflow.float64)
    assert optim.SGD([a], lr=0.1).step() is None


@pytest.mark.parametrize("cls", ALL)
def test_parameters_without_grad_are_skipped(cls):
    with_grad, without_grad = leaf(1.0, 2.0), leaf(3.0, 4.0)
    optimizer = cls([with_grad, without_grad], lr=0.1)
    with_grad.grad = gradflow.ones(2, dtype=gradflow.float64)
    optimizer.step()
    assert without_grad.tolist() == [3.0, 4.0]
    assert with_grad.tolist() != [1.0, 2.0]
    if cls is not optim.Adagrad:  # Adagrad creates its state at construction, like PyTorch
        assert without_grad not in optimizer.state


def test_adam_step_counts_only_steps_with_a_gradient():
    a, b = leaf(1.0), leaf(1.0)
    optimizer = optim.Adam([a, b])
    for step in range(4):
        a.grad = gradflow.ones(1, dtype=gradflow.float64)
        b.grad = gradflow.ones(1, dtype=gradflow.float64) if step % 2 == 0 else None
        optimizer.step()
    assert optimizer.state[a]["step"].item() == 4.0
    assert optimizer.state[b]["step"].item() == 2.0


@pytest.mark.parametrize("cls", ALL)
def test_step_updates_the_parameter_array_in_place(cls):
    a = leaf(1.0, 2.0)
    array = a._data
    view = a[0:1]
    optimizer = cls([a], lr=0.1)
    a.grad = gradflow.ones(2, dtype=gradflow.float64)
    optimizer.step()
    assert a._data is array
    assert a.is_leaf and a.requires_grad
    assert view.tolist() == a.tolist()[0:1] != [1.0]


def test_backward_after_step_works_and_a_stale_graph_is_refused_like_pytorch():
    a = leaf(1.0, 2.0)
    optimizer = optim.SGD([a], lr=0.1)
    stale = (a * a).sum()
    (a * a).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    (a * a).sum().backward()  # a fresh graph is fine
    np.testing.assert_allclose(a.grad.detach().numpy(), 2 * a.detach().numpy())
    with pytest.raises(InplaceError):
        stale.backward()  # saved `a` changed in place since: PyTorch raises here too


def test_grad_of_another_dtype_raises_dtype_error():
    a = leaf(1.0, 2.0)
    with pytest.raises(DtypeError, match="float32.*float64"):  # the .grad setter refuses it, as torch's does
        a.grad = gradflow.ones(2, dtype=gradflow.float32)
    a._grad = gradflow.ones(2, dtype=gradflow.float32)  # bypassing the setter: step() still says what is wrong
    with pytest.raises(DtypeError, match="float64.*float32"):
        optim.SGD([a], lr=0.1).step()


def test_adagrad_creates_state_at_construction_and_for_added_groups():
    a, b = leaf(1.0), leaf(2.0)
    optimizer = optim.Adagrad([a], initial_accumulator_value=0.5)
    assert optimizer.state[a]["sum"].tolist() == [0.5] and optimizer.state[a]["step"].item() == 0.0
    optimizer.add_param_group({"params": [b], "initial_accumulator_value": 0.25})
    b.grad = gradflow.ones(1, dtype=gradflow.float64)
    optimizer.step()
    assert optimizer.state[b]["sum"].tolist() == [1.25]


def test_bare_optimizer_step_names_what_to_override():
    with pytest.raises(NotImplementedError, match="override _update_group"):
        p = leaf(1.0)
        p.grad = gradflow.ones(1, dtype=gradflow.float64)
        Optimizer([p], {"lr": 0.1}).step()


def test_repr_lists_each_group_like_pytorch():
    optimizer = optim.SGD([leaf(1.0)], lr=0.1, momentum=0.9)
    assert repr(optimizer) == (
        "SGD (\nParameter Group 0\n    dampening: 0\n    lr: 0.1\n    maximize: False\n    momentum: 0.9\n"
        "    nesterov: False\n    weight_decay: 0\n)"
    )
