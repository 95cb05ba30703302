"""Devices: parsing, the default device, CUDA availability reasons, the 'auto' fallback, mismatches."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import availability
from gradflow.backends.numpy_backend import NumpyBackend
from gradflow.errors import DeviceMismatchError, DeviceUnavailableError

# gradflow.device is the function; the module behind it holds the default and the notice flag.
device_module = importlib.import_module("gradflow.device")


@pytest.fixture
def no_cuda(monkeypatch):
    """Pretend this machine has CuPy but no driver."""
    monkeypatch.setattr(availability, "_probe_result", ("no usable NVIDIA driver (simulated)", 0))
    monkeypatch.setattr(device_module, "_fallback_notice_shown", False)


def test_cpu_device_is_canonical_and_compares_with_strings():
    assert gf.device("cpu") is gf.device("CPU") is gf.device(gf.device("cpu"))
    assert gf.device("cpu") == "cpu" and str(gf.device("cpu")) == "cpu"
    assert repr(gf.device("cpu")) == "device(type='cpu')"


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:0", "", "cuda:-1"])
def test_unknown_device_strings_raise_value_error(spec):
    with pytest.raises(ValueError, match="unknown device"):
        gf.device(spec)


def test_cuda_on_a_machine_without_a_driver_raises_device_unavailable_with_the_reason(no_cuda):
    assert not gf.cuda.is_available() and gf.cuda.device_count() == 0
    with pytest.raises(DeviceUnavailableError, match="not usable here: no usable NVIDIA driver"):
        gf.device("cuda")
    with pytest.raises(DeviceUnavailableError):
        gf.zeros(2, device="cuda:0")


def test_missing_cupy_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def refuse_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_cupy)
    reason, count = availability._probe()
    assert count == 0 and "CuPy is not installed" in reason and "gradflow[cuda12]" in reason


def test_auto_falls_back_to_cpu_and_says_so_once_in_one_line(no_cuda, capsys):
    assert gf.device("auto") is gf.device("cpu")
    assert gf.device("auto") is gf.device("cpu")
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1
    assert "device 'auto' -> cpu (no usable NVIDIA driver (simulated))" in notice


def test_default_device_comes_from_the_environment(monkeypatch):
    monkeypatch.setattr(device_module, "_default_device", None)
    monkeypatch.setenv("GRADFLOW_DEVICE", "cpu")
    assert gf.get_default_device() is gf.device("cpu")
    gf.set_default_device("cpu")
    assert gf.zeros(1).device is gf.device("cpu")
    gf.set_default_device(None)


def test_bad_gradflow_device_variable_raises_when_a_tensor_is_made(monkeypatch):
    monkeypatch.setattr(device_module, "_default_device", None)
    monkeypatch.setenv("GRADFLOW_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        gf.zeros(1)
    monkeypatch.setattr(device_module, "_default_device", None)


def _tensor_on_fake_gpu(values):
    """A tensor on a Device('cuda', 7) backed by NumPy, to test device checks without a GPU."""
    fake = gf.Device("cuda", 7)
    fake._backend = NumpyBackend()
    return gf.Tensor._wrap(np.asarray(values, dtype=np.float32), fake)


def test_mixing_devices_in_one_op_raises_naming_the_op_and_both_devices():
    on_cpu = gf.ones(3)
    elsewhere = _tensor_on_fake_gpu([1.0, 2.0, 3.0])
    with pytest.raises(DeviceMismatchError, match=r"mul: expected all tensors on the same device, got cpu and cuda:7"):
        on_cpu * elsewhere
    with pytest.raises(DeviceMismatchError, match="cuda:7"):
        gf.matmul(on_cpu, elsewhere)
    with pytest.raises(DeviceMismatchError, match="eq"):
        on_cpu == elsewhere


def test_numpy_array_operand_with_a_gpu_tensor_is_refused():
    with pytest.raises(DeviceMismatchError, match="NumPy array and a tensor on cuda:7"):
        _tensor_on_fake_gpu([1.0]) + np.ones(1)


def test_cpu_backend_memory_stats_and_synchronize_are_harmless():
    backend = gf.device("cpu").backend
    backend.synchronize()
    assert backend.memory_stats() == {"allocated_bytes": 0, "reserved_bytes": 0}


@pytest.mark.cuda
def test_to_cuda_and_back_round_trips_values_and_gradients():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0" and y.is_cuda
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    with pytest.raises(TypeError, match="cpu"):
        y.detach().numpy()
    assert gf.cuda.memory_allocated() > 0
    gf.cuda.synchronize()


@pytest.mark.cuda
def test_same_seed_gives_the_same_draws_per_device():
    gf.manual_seed(3)
    first = gf.randn(5, device="cuda")
    gf.manual_seed(3)
    second = gf.randn(5, device="cuda")
    np.testing.assert_array_equal(first.cpu().numpy(), second.cpu().numpy())


def test_a_backward_gradient_on_another_device_raises_naming_both():
    x = gf.ones(2, requires_grad=True)
    with pytest.raises(DeviceMismatchError, match=r"backward: the gradient 0 is on cuda:7 but output 0 is on cpu"):
        (x * 2).backward(_tensor_on_fake_gpu([1.0, 1.0]))
