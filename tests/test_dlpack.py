"""DLPack exchange (Tensor.__dlpack__, gradflow.dlpack.from_dlpack) and the rules of numpy() / __array__.

Zero-copy is proved by writing through one side and reading the other, not by comparing pointers.
"""

from __future__ import annotations

import types

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import errors
from gradflow.dlpack import from_dlpack

from .conftest import CUDA_REASON

_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_]


# -- NumPy -> gradflow --------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(array=hnp.arrays(st.sampled_from(_DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
def test_from_numpy_keeps_values_dtype_and_shape(array):
    tensor = from_dlpack(array)
    assert tensor.device == gf.device("cpu")
    assert tensor.dtype.np == array.dtype and tensor.shape == array.shape
    np.testing.assert_array_equal(tensor.numpy(), array)


def test_from_numpy_shares_memory_both_ways():
    array = np.arange(6.0).reshape(2, 3)
    tensor = from_dlpack(array)
    array[0, 0] = 42.0
    assert tensor[0, 0].item() == 42.0
    tensor.add_(1.0)
    np.testing.assert_array_equal(array, [[43.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_from_numpy_strided_and_transposed_views_share_memory():
    base = np.arange(24.0).reshape(4, 6)
    for view in (base[:, ::2], base.T, base[1:3, 5:0:-2]):
        tensor = from_dlpack(view)
        np.testing.assert_array_equal(tensor.numpy(), view)
        view[(0,) * view.ndim] = -1.0
        assert tensor.numpy()[(0,) * view.ndim] == -1.0


def test_zero_dim_round_trip():
    array = np.array(3.5)
    tensor = from_dlpack(array)
    assert tensor.shape == () and tensor.item() == 3.5
    back = np.from_dlpack(tensor)
    assert back.shape == () and np.shares_memory(back, array)


def test_legacy_and_versioned_capsules_import_once():
    array = np.arange(3, dtype=np.int32)
    for capsule in (array.__dlpack__(), array.__dlpack__(max_version=(1, 0))):
        tensor = from_dlpack(capsule)
        array[1] = 7
        assert tensor.tolist()[1] == 7
        with pytest.raises(ValueError, match="already consumed"):
            from_dlpack(capsule)
        array[1] = 1


def test_versioned_capsule_imports_writable_and_legacy_read_only():
    # NumPy's rule on the CPU: a pre-1.0 capsule cannot say whether its memory may be written.
    array = np.zeros(2)
    from_dlpack(array.__dlpack__(max_version=(1, 0)))[0] = 1.0
    assert array[0] == 1.0
    assert not from_dlpack(array.__dlpack__()).numpy().flags.writeable


def test_from_dlpack_rejects_objects_without_the_protocol():
    with pytest.raises(TypeError, match=r"from_dlpack: expected an array with a __dlpack__ method.*got list"):
        from_dlpack([1.0, 2.0])


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.uint16])
def test_dtypes_gradflow_cannot_hold_raise_a_dtype_error_naming_them(dtype):
    with pytest.raises(errors.DtypeError, match=rf"from_dlpack: dtype {np.dtype(dtype).name} cannot be held"):
        from_dlpack(np.ones(2, dtype=dtype))


def test_devices_other_than_cpu_and_cuda_are_refused_by_name():
    metal = types.SimpleNamespace(__dlpack__=lambda **_: None, __dlpack_device__=lambda: (8, 0))
    with pytest.raises(errors.DeviceUnavailableError, match=r"device type 8 \(kDLMetal\).*copy it to the CPU"):
        from_dlpack(metal)


@pytest.mark.skipif(CUDA_REASON is None, reason="checks the message on a machine without CUDA")
def test_cuda_memory_without_a_gpu_says_why():
    gpu_array = types.SimpleNamespace(__dlpack__=lambda **_: None, __dlpack_device__=lambda: (2, 0))
    with pytest.raises(errors.DeviceUnavailableError, match="not usable here"):
        from_dlpack(gpu_array)


def test_copy_true_copies_and_copy_none_shares():
    array = np.zeros(3, dtype=np.float32)
    copied, shared = from_dlpack(array, copy=True), from_dlpack(array, device="cpu")
    array[0] = 1.0
    assert copied.tolist() == [0.0, 0.0, 0.0] and shared.tolist() == [1.0, 0.0, 0.0]


# -- gradflow -> NumPy and gradflow -> gradflow ----------------------------------------
def test_numpy_from_dlpack_of_a_tensor_shares_memory():
    tensor = gf.arange(4, dtype=gf.float32)
    array = np.from_dlpack(tensor)
    array[2] = 9.0
    assert tensor.tolist() == [0.0, 1.0, 9.0, 3.0]


def test_numpy_from_dlpack_of_a_transposed_tensor_keeps_its_strides():
    tensor = gf.arange(6, dtype=gf.float64).reshape(2, 3).t()
    array = np.from_dlpack(tensor)
    np.testing.assert_array_equal(array, np.arange(6.0).reshape(2, 3).T)
    tensor[0, 1] = -5.0  # a write through the tensor shows in the array
    assert array[0, 1] == -5.0


def test_gradflow_round_trip_stays_on_the_device_and_shares_memory(device):
    tensor = gf.arange(6, dtype=gf.float32, device=device).reshape(2, 3)
    again = from_dlpack(tensor)
    assert again.device is tensor.device and again.shape == (2, 3)
    again[1, 2] = 100.0
    assert tensor[1, 2].item() == 100.0


def test_dlpack_device_names_the_memory(device):
    expected = (1, 0) if device.type == "cpu" else (2, device.index or 0)
    assert tuple(int(v) for v in gf.ones(1, device=device).__dlpack_device__()) == expected


def test_exporting_a_tensor_that_requires_grad_raises_like_pytorch(device):
    tensor = gf.ones(3, device=device, requires_grad=True)
    with pytest.raises(BufferError, match=r"can't export tensors that require gradient, use tensor.detach\(\)"):
        tensor.__dlpack__()
    with pytest.raises(BufferError, match="require gradient"):
        from_dlpack(tensor)
    assert from_dlpack(tensor.detach()).tolist() == [1.0, 1.0, 1.0]


def test_export_honours_copy_and_dl_device_keywords():
    tensor = gf.zeros(2)
    copied = from_dlpack(tensor.__dlpack__(max_version=(1, 0), copy=True))
    tensor.fill_(3.0)
    assert copied.tolist() == [0.0, 0.0]
    with pytest.raises(BufferError):
        tensor.__dlpack__(max_version=(1, 0), dl_device=(2, 0))


class _PreDLPack1Array(np.ndarray):
    """An array from a library that predates DLPack 1.0: __dlpack__ takes only ``stream``."""

    def __dlpack__(self, stream=None):
        return super().__dlpack__(stream=stream)


def test_export_handles_backends_that_only_take_stream():
    tensor = gf.Tensor._wrap(np.arange(3.0).view(_PreDLPack1Array), gf.device("cpu"))
    # NumPy passes max_version; the fallback exports a pre-1.0 capsule, which NumPy imports read-only.
    shared = np.from_dlpack(tensor)
    tensor[0] = 8.0
    assert shared[0] == 8.0
    copied = from_dlpack(tensor.__dlpack__(max_version=(1, 0), copy=True))
    tensor[0] = 9.0
    assert copied.tolist()[0] == 8.0 and shared[0] == 9.0
    assert from_dlpack(tensor.__dlpack__(dl_device=(1, 0))).tolist()[0] == 9.0
    with pytest.raises(BufferError, match=r"can't export a cpu tensor to DLPack device \(2, 0\)"):
        tensor.__dlpack__(max_version=(1, 0), dl_device=(2, 0))


# -- PyTorch ----------------------------------------------------------------------
def test_torch_tensor_to_gradflow_shares_memory():
    torch = pytest.importorskip("torch")
    source = torch.arange(6, dtype=torch.float32).reshape(2, 3)[:, 1:]  # a strided view
    tensor = from_dlpack(source)
    assert tensor.dtype is gf.float32 and tensor.shape == (2, 2)
    source[0, 0] = -1.0
    assert tensor.tolist() == [[-1.0, 2.0], [4.0, 5.0]]
    capsule_tensor = from_dlpack(torch.utils.dlpack.to_dlpack(source))
    assert capsule_tensor.tolist() == tensor.tolist()


def test_gradflow_tensor_to_torch_shares_memory():
    torch = pytest.importorskip("torch")
    tensor = gf.arange(4, dtype=gf.int64)
    theirs = torch.from_dlpack(tensor)
    theirs[3] = 30
    assert tensor.tolist() == [0, 1, 2, 30]
    zero_dim = torch.from_dlpack(gf.tensor(2.5, dtype=gf.float64))
    assert zero_dim.shape == () and zero_dim.item() == 2.5
    with pytest.raises(BufferError, match="require gradient"):
        torch.from_dlpack(gf.ones(2, requires_grad=True))


@pytest.mark.parametrize("name", ["bfloat16", "complex64", "float8_e4m3fn"])
def test_torch_dtypes_without_a_gradflow_array_raise_a_dtype_error(name):
    torch = pytest.importorskip("torch")
    source = torch.ones(2, dtype=getattr(torch, name))
    with pytest.raises(errors.DtypeError, match=rf"dtype {name} cannot be held by a gradflow tensor"):
        from_dlpack(source)
    with pytest.raises(errors.DtypeError, match=rf"dtype {name} cannot be held"):
        from_dlpack(torch.utils.dlpack.to_dlpack(source))


# -- CuPy -------------------------------------------------------------------------
@pytest.mark.cuda
def test_cupy_round_trip_shares_gpu_memory():
    import cupy

    array = cupy.arange(4, dtype=cupy.float32)
    tensor = from_dlpack(array)
    assert tensor.device == gf.device("cuda", array.device.id)
    array[0] = 5.0
    assert tensor.tolist()[0] == 5.0
    back = cupy.from_dlpack(tensor)
    back[1] = 6.0
    assert array.tolist()[1] == 6.0


# -- numpy() and __array__ ----------------------------------------------------------
def test_numpy_of_a_tensor_that_requires_grad_says_detach(device):
    tensor = gf.ones(2, device=device, requires_grad=True)
    with pytest.raises(errors.GraphError, match=r"requires grad.*tensor.detach\(\).numpy\(\)"):
        tensor.numpy()
    with pytest.raises(RuntimeError, match="requires grad"):  # PyTorch users catch RuntimeError
        (tensor * 2).numpy()


def test_numpy_force_detaches_and_shares_memory_on_cpu():
    tensor = gf.zeros(2, requires_grad=True)
    forced = tensor.numpy(force=True)
    tensor.detach()[0] = 4.0
    assert forced[0] == 4.0


class _FakeCudaDevice:
    """Just enough of a CUDA Device for numpy(): its type, its name and a host copy."""

    type = "cuda"
    index = 0
    backend = types.SimpleNamespace(to_host=np.copy)

    def __str__(self) -> str:
        return "cuda:0"


def test_numpy_of_a_device_tensor_says_cpu_first():
    # A stand-in for a CUDA device, so the message is checked on machines without a GPU.
    tensor = gf.Tensor._wrap(np.ones(2, dtype=np.float32), _FakeCudaDevice())
    with pytest.raises(errors.DeviceMismatchError, match=r"numpy: can't convert a cuda:0 tensor.*tensor.cpu\(\)"):
        tensor.numpy()
    with pytest.raises(errors.DeviceMismatchError, match=r"\.cpu\(\)"):
        np.asarray(tensor)
    forced = tensor.numpy(force=True)
    assert forced.tolist() == [1.0, 1.0] and not np.shares_memory(forced, tensor._data)


@pytest.mark.cuda
def test_numpy_of_a_cuda_tensor_says_cpu_first():
    tensor = gf.ones(2, device="cuda")
    with pytest.raises(errors.DeviceMismatchError, match=r"cuda:\d tensor.*tensor.cpu\(\)"):
        tensor.numpy()
    assert tensor.numpy(force=True).tolist() == [1.0, 1.0]
    assert tensor.cpu().numpy().tolist() == [1.0, 1.0]


def test_array_protocol_follows_numpy_rules():
    tensor = gf.arange(3, dtype=gf.float32)
    assert np.shares_memory(np.asarray(tensor), tensor.numpy())
    assert not np.shares_memory(np.array(tensor, copy=True), tensor.numpy())
    assert np.asarray(tensor, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="needs a copy, but copy=False"):
        np.asarray(tensor, dtype=np.float64, copy=False)
    with pytest.raises(errors.GraphError, match="detach"):
        np.asarray(gf.ones(2, requires_grad=True))
