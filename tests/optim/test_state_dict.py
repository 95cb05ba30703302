"""Optimizer.state_dict / load_state_dict: PyTorch's format, exact resumption, copies, devices and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow import optim

# Options that make every optimizer create all of its state entries.
FULL_STATE = [
    (optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}),
    (optim.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    (optim.AdamW, {"lr": 0.01, "amsgrad": True}),
    (optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
    (optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
]
IDS = [cls.__name__ for cls, _ in FULL_STATE]
START = [np.linspace(-1.0, 1.0, 5), np.arange(6.0).reshape(2, 3) / 6.0]


def make_params(device="cpu", dtype=gradflow.float64, values=START):
    return [gradflow.tensor(np.array(v), dtype=dtype, device=device, requires_grad=True) for v in values]


def host_values(params):
    return [p.detach().cpu().numpy().astype(np.float64) for p in params]


def run_steps(optimizer, params, first: int, count: int) -> None:
    """Steps ``first .. first+count-1`` with a deterministic gradient computed on the host."""
    for step in range(first, first + count):
        for index, param in enumerate(params):
            value = param.detach().cpu().numpy().astype(np.float64)
            grad = (1.0 + index) * value + np.sin(value + step)
            param.grad = gradflow.tensor(grad, dtype=param.dtype, device=param.device)
        optimizer.step()


def test_state_dict_has_pytorch_format_with_live_tensors():
    a, b, c = make_params(values=[[1.0], [2.0], [3.0]])
    optimizer = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1)
    run_steps(optimizer, [a, c], 0, 2)  # b has no gradient: no state
    saved = optimizer.state_dict()
    assert sorted(saved) == ["param_groups", "state"]
    assert [group["params"] for group in saved["param_groups"]] == [[0, 1], [2]]
    assert saved["param_groups"][1]["lr"] == 0.5 and saved["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(saved["state"]) == [0, 2]
    assert saved["state"][0]["exp_avg"] is optimizer.state[a]["exp_avg"]
    assert saved["state"][2]["step"].item() == 2.0
    # Saving does not change the optimizer's own groups.
    assert optimizer.param_groups[0]["params"] == [a, b]


@pytest.mark.parametrize(("cls", "options"), FULL_STATE, ids=IDS)
def test_resuming_from_a_state_dict_continues_the_uninterrupted_run_exactly(cls, options):
    uninterrupted = make_params()
    run_steps(cls(uninterrupted, **options), uninterrupted, 0, 10)

    first_half = make_params()
    first = cls(first_half, **options)
    run_steps(first, first_half, 0, 5)
    saved = first.state_dict()
    resumed = make_params(values=host_values(first_half))
    second = cls(resumed, lr=123.0)  # the loaded groups bring back the saved hyperparameters
    second.load_state_dict(saved)
    assert second.param_groups[0]["lr"] == options["lr"]
    run_steps(second, resumed, 5, 5)
    for got, want in zip(host_values(resumed), host_values(uninterrupted)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("cls", "options"), FULL_STATE, ids=IDS)
def test_loaded_state_is_a_copy(cls, options):
    source_params = make_params()
    source = cls(source_params, **options)
    run_steps(source, source_params, 0, 2)
    target = cls(make_params(), **options)
    target.load_state_dict(source.state_dict())
    for source_param, target_param in zip(source_params, target.param_groups[0]["params"]):
        before = {k: v.detach().numpy().copy() for k, v in target.state[target_param].items()}
        for key, value in target.state[target_param].items():
            assert value is not source.state[source_param][key]
        run_steps(source, source_params, 2, 1)  # advancing the source leaves the loaded state alone
        for key, value in target.state[target_param].items():
            np.testing.assert_array_equal(value.detach().numpy(), before[key])


def test_load_rejects_a_different_number_of_groups():
    saved = optim.SGD([{"params": make_params()[:1]}, {"params": make_params()[1:]}], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups: 2 saved, 1"):
        optim.SGD(make_params(), lr=0.1).load_state_dict(saved)


def test_load_rejects_a_group_of_another_size():
    saved = optim.SGD(make_params(), lr=0.1).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group: group 0 has 2 .* but 1"):
        optim.SGD(make_params()[:1], lr=0.1).load_state_dict(saved)


def test_floating_state_takes_the_parameter_dtype_and_step_stays_as_saved():
    source_params = make_params(dtype=gradflow.float64)
    source = optim.Adam(source_params, amsgrad=True)
    run_steps(source, source_params, 0, 3)
    target_params = make_params(dtype=gradflow.float32)
    target = optim.Adam(target_params, amsgrad=True)
    target.load_state_dict(source.state_dict())
    state = target.state[target_params[1]]
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert state[key].dtype == gradflow.float32
        np.testing.assert_allclose(
            state[key].detach().numpy(), source.state[source_params[1]][key].detach().numpy(), rtol=1e-6
        )
    assert state["step"].dtype == gradflow.float32 and state["step"].item() == 3.0
    run_steps(target, target_params, 3, 2)
    assert state["step"].item() == 5.0 and target_params[1].dtype == gradflow.float32


def test_a_plain_number_step_is_loaded_as_a_counter_tensor():
    params = make_params()
    source = optim.Adam(params)
    run_steps(source, params, 0, 2)
    saved = source.state_dict()
    for entry in saved["state"].values():
        entry["step"] = 2  # e.g. an older checkpoint
    target = optim.Adam(make_params(values=host_values(params)))
    target.load_state_dict(saved)
    run_steps(target, target.param_groups[0]["params"], 2, 1)
    assert target.state[target.param_groups[0]["params"][0]]["step"].item() == 3.0


def test_adamw_stays_decoupled_when_loading_an_adam_state_dict():
    saved = optim.Adam(make_params(), weight_decay=0.1).state_dict()
    target = optim.AdamW(make_params())
    target.load_state_dict(saved)
    assert target.param_groups[0]["decoupled_weight_decay"] is True


def test_state_resumes_on_another_device_and_back(device):
    """Save on the CPU, resume on ``device``, save there, resume on the CPU: same as one CPU run."""
    cls, options = optim.Adam, {"lr": 0.01, "amsgrad": True}
    uninterrupted = make_params()
    run_steps(cls(uninterrupted, **options), uninterrupted, 0, 9)

    cpu_params = make_params()
    on_cpu = cls(cpu_params, **options)
    run_steps(on_cpu, cpu_params, 0, 3)
    device_params = make_params(device=device, values=host_values(cpu_params))
    on_device = cls(device_params, **options)
    on_device.load_state_dict(on_cpu.state_dict())
    state = on_device.state[device_params[0]]
    assert state["exp_avg"].device == device and state["max_exp_avg_sq"].device == device
    assert state["step"].device == gradflow.device("cpu")  # the counter stays on the host, as saved
    run_steps(on_device, device_params, 3, 3)
    back_params = make_params(values=host_values(device_params))
    back = cls(back_params, **options)
    back.load_state_dict(on_device.state_dict())
    assert back.state[back_params[0]]["exp_avg"].device == gradflow.device("cpu")
    run_steps(back, back_params, 6, 3)
    for got, want in zip(host_values(back_params), host_values(uninterrupted)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cls", "options"), FULL_STATE[:3], ids=IDS[:3])
def test_float16_parameters_keep_float32_state_and_take_pytorch_float16_state(cls, options):
    # SGD/Adam/AdamW keep float32 state for float16 parameters; a PyTorch checkpoint holds float16 state
    # for them (its non-fused optimizers keep the parameter's dtype). Both directions must load.
    params = make_params(dtype=gradflow.float16)
    optimizer = cls(params, **options)
    run_steps(optimizer, params, 0, 2)
    saved = optimizer.state_dict()
    floating = {name for name, value in saved["state"][0].items() if name != "step"}
    assert floating and all(saved["state"][0][name].dtype is gradflow.float32 for name in floating)
    as_torch_saves_it = {
        "param_groups": saved["param_groups"],
        "state": {
            index: {name: value if name == "step" else value.to(gradflow.float16) for name, value in entry.items()}
            for index, entry in saved["state"].items()
        },
    }
    resumed = make_params(dtype=gradflow.float16, values=host_values(params))
    loaded = cls(resumed, **options)
    loaded.load_state_dict(as_torch_saves_it)
    for index, param in enumerate(resumed):
        for name in floating:
            state = loaded.state[param][name]
            assert state.dtype is gradflow.float32
            expected = saved["state"][index][name].detach().numpy().astype(np.float16).astype(np.float32)
            np.testing.assert_array_equal(state.detach().numpy(), expected)
    torch = pytest.importorskip("torch")
    torch_params = [torch.nn.Parameter(torch.tensor(v, dtype=torch.float16)) for v in host_values(params)]
    torch_optimizer = getattr(torch.optim, cls.__name__)(torch_params, **options)
    torch_state = {
        index: {name: torch.from_numpy(value.detach().numpy()) for name, value in entry.items()}
        for index, entry in saved["state"].items()
    }
    torch_optimizer.load_state_dict({"param_groups": saved["param_groups"], "state": torch_state})
    assert all(torch_optimizer.state[torch_params[0]][name].dtype == torch.float16 for name in floating)


def _to_gradflow(value, torch):
    """A torch optimizer state dict with its tensors as gradflow tensors (same values, dtypes and layout)."""
    if isinstance(value, torch.Tensor):
        return gradflow.tensor(value.detach().numpy().copy())
    if isinstance(value, dict):
        return {key: _to_gradflow(item, torch) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_gradflow(item, torch) for item in value]
    return value


# (optimizer, options of the saved run, group keys the older release lacked, this optimizer's other choices)
OLDER_STATE_DICTS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9}, ["nesterov", "maximize"], {"momentum": 0.5, "nesterov": True}),
    ("Adam", {"lr": 0.05}, ["amsgrad", "maximize", "decoupled_weight_decay"], {"amsgrad": True}),
    ("RMSprop", {"lr": 0.01}, ["momentum", "centered", "maximize"], {"momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 0.1}, ["maximize"], {}),
]


@pytest.mark.parametrize(
    ("name", "options", "missing", "other"), OLDER_STATE_DICTS, ids=[case[0] for case in OLDER_STATE_DICTS]
)
def test_state_dict_without_options_added_later_loads_like_pytorch(name, options, missing, other):
    """A state dict from an older release lacks options added since; loading fills them as PyTorch's
    ``__setstate__`` does (keeping the old behaviour), and the next steps match torch.

    Before the fix the saved groups were used as they were and ``step()`` raised KeyError.
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    first, second = (rng.standard_normal(shape).astype(np.float32) for shape in [(3,), (2, 2)])
    grads = [[rng.standard_normal(v.shape).astype(np.float32) for v in (first, second)] for _ in range(4)]

    source = [torch.tensor(v.copy(), requires_grad=True) for v in (first, second)]
    source_optimizer = getattr(torch.optim, name)([source[0]], **options)
    source_optimizer.add_param_group({"params": [source[1]], "lr": options["lr"] / 2})
    for grad_pair in grads[:2]:
        for param, grad in zip(source, grad_pair):
            param.grad = torch.from_numpy(grad.copy())
        source_optimizer.step()
    saved = source_optimizer.state_dict()
    for group in saved["param_groups"]:
        for key in missing:
            del group[key]

    torch_params = [p.detach().clone().requires_grad_() for p in source]
    torch_optimizer = getattr(torch.optim, name)([torch_params[0]], lr=1.0)
    torch_optimizer.add_param_group({"params": [torch_params[1]], "lr": 2.0})
    torch_optimizer.load_state_dict(saved)

    params = [gradflow.tensor(p.detach().numpy().copy(), requires_grad=True) for p in source]
    # Options the saved groups lack must come from the old behaviour, not from this optimizer's defaults.
    optimizer = getattr(optim, name)([params[0]], lr=1.0, maximize=True, **other)
    optimizer.add_param_group({"params": [params[1]], "lr": 2.0})
    optimizer.load_state_dict(_to_gradflow(saved, torch))

    for group, torch_group in zip(optimizer.param_groups, torch_optimizer.param_groups):
        for key in missing:
            assert group[key] == torch_group[key]
    for grad_pair in grads[2:]:
        for param, torch_param, grad in zip(params, torch_params, grad_pair):
            param.grad = gradflow.tensor(grad.copy())
            torch_param.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        torch_optimizer.step()
    for param, torch_param in zip(params, torch_params):
        np.testing.assert_allclose(param.detach().numpy(), torch_param.detach().numpy(), rtol=1e-6, atol=1e-6)
