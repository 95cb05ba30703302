"""Tensor metadata, conversions and representation."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import DtypeError, GraphError


def test_metadata_follows_pytorch_names():
    x = gf.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24 and len(x) == 2
    assert x.dtype is gf.float32 and x.device == "cpu" and x.is_leaf and not x.requires_grad
    assert x.element_size() == 4 and x.is_floating_point()


def test_item_tolist_and_python_conversions():
    x = gf.tensor([[1.5, 2.0]])
    assert x.tolist() == [[1.5, 2.0]]
    assert gf.tensor(3.5).item() == 3.5 and isinstance(gf.tensor(3).item(), int)
    assert float(gf.tensor([2.0])) == 2.0 and int(gf.tensor(7)) == 7
    assert bool(gf.tensor(True)) and [10, 20, 30][gf.tensor(1)] == 20
    with pytest.raises(ValueError, match="2 elements cannot be converted"):
        x.item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x)


def test_len_of_a_zero_dim_tensor_raises():
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(gf.tensor(1.0))


def test_numpy_shares_memory_and_refuses_tensors_that_require_grad():
    x = gf.ones(3)
    x.numpy()[0] = 5.0
    assert x[0].item() == 5.0
    with pytest.raises(GraphError, match=r"detach\(\)\.numpy\(\)"):
        gf.ones(2, requires_grad=True).numpy()


def test_array_protocol_on_cpu_tensors():
    x = gf.tensor([1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(x), [1.0, 2.0])
    assert np.asarray(x, dtype=np.float64).dtype == np.float64


def test_transposes_T_and_mT():
    x = gf.arange(24).reshape(2, 3, 4)
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    np.testing.assert_array_equal(x.mT.numpy(), np.swapaxes(np.arange(24).reshape(2, 3, 4), -1, -2))


def test_repr_shows_dtype_device_and_grad_fn():
    assert repr(gf.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(gf.tensor([1, 2], dtype=gf.int32)) == "tensor([1, 2], dtype=gradflow.int32)"
    assert repr(gf.ones(1, requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(gf.ones(1, requires_grad=True) * 2) == "tensor([2.], grad_fn=<MulBackward>)"


def test_requires_grad_on_an_integer_tensor_raises():
    with pytest.raises(DtypeError, match="only tensors of floating point dtype can require gradients, got int64"):
        gf.tensor([1, 2], requires_grad=True)
    with pytest.raises(DtypeError, match="int32"):
        gf.zeros(2, dtype=gf.int32).requires_grad_()


def test_to_changes_dtype_and_is_differentiable():
    x = gf.tensor([1.5, 2.5], requires_grad=True)
    y = x.to(gf.float64)
    assert y.dtype is gf.float64 and x.to(gf.float32) is x
    (y * y).sum().backward()
    assert x.grad.dtype is gf.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 5.0])
    assert x.double().dtype is gf.float64 and x.half().dtype is gf.float16 and x.long().dtype is gf.int64
    assert x.int().dtype is gf.int32 and x.bool().dtype is gf.bool and x.float() is x
    assert x.to("cpu") is x and x.cpu() is x and x.to(gf.zeros(1, dtype=gf.float64)).dtype is gf.float64


def test_clone_copies_memory_and_passes_gradients():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert not np.shares_memory(y.detach().numpy(), x.detach().numpy())
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_iteration_yields_rows():
    rows = list(gf.arange(6).reshape(3, 2))
    assert len(rows) == 3 and rows[1].tolist() == [2, 3]


def test_grad_assignment_is_checked():
    x = gf.ones(2, requires_grad=True)
    x.grad = gf.zeros(2)
    with pytest.raises(ValueError, match="assigned grad has shape"):
        x.grad = gf.zeros(3)


def test_dlpack_exchange_with_numpy_is_zero_copy():
    x = gf.arange(4, dtype=gf.float32)
    array = np.from_dlpack(x)
    assert np.shares_memory(array, x.numpy())
    np.testing.assert_array_equal(array, [0, 1, 2, 3])
