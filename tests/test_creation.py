"""Creation functions: defaults, dtypes, devices, requires_grad and seeding, as in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import DtypeError


def test_tensor_infers_pytorch_dtypes_from_python_data():
    assert gf.tensor([1.0, 2.0]).dtype is gf.float32
    assert gf.tensor([1, 2]).dtype is gf.int64
    assert gf.tensor([True, False]).dtype is gf.bool
    assert gf.tensor(2.5).shape == ()


def test_tensor_keeps_numpy_dtypes_and_copies():
    array = np.arange(3, dtype=np.float64)
    x = gf.tensor(array)
    assert x.dtype is gf.float64
    array[0] = 7
    assert x[0].item() == 0


def test_from_numpy_and_as_tensor_share_memory():
    array = np.zeros(3, dtype=np.float32)
    assert np.shares_memory(gf.from_numpy(array).numpy(), array)
    assert np.shares_memory(gf.as_tensor(array).numpy(), array)
    assert gf.as_tensor(array, dtype=gf.float64).dtype is gf.float64


def test_tensor_from_a_list_of_zero_dim_tensors():
    assert gf.tensor([gf.tensor(1.0), gf.tensor(2.0)]).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("factory", [gf.zeros, gf.ones, gf.empty])
def test_filled_factories_take_varargs_or_a_tuple(factory, device):
    assert factory(2, 3, device=device).shape == (2, 3)
    assert factory((2, 3), device=device).shape == (2, 3)
    made = factory([4], dtype=gf.float64, device=device, requires_grad=True)
    assert made.dtype is gf.float64 and made.requires_grad and made.device == device


def test_zeros_and_ones_values(device):
    np.testing.assert_array_equal(gf.zeros(2, device=device).cpu().numpy(), [0, 0])
    np.testing.assert_array_equal(gf.ones(2, dtype=gf.int32, device=device).cpu().numpy(), [1, 1])


def test_full_infers_its_dtype_from_the_fill_value():
    assert gf.full((2,), 1.5).dtype is gf.float32
    assert gf.full((2,), 3).dtype is gf.int64
    assert gf.full((2,), True).dtype is gf.bool
    assert gf.full(3, 7.0).tolist() == [7.0, 7.0, 7.0]


def test_like_factories_follow_the_input():
    x = gf.ones(2, 3, dtype=gf.float64)
    for made in (
        gf.zeros_like(x),
        gf.ones_like(x),
        gf.empty_like(x),
        gf.full_like(x, 2),
        gf.rand_like(x),
        gf.randn_like(x),
    ):
        assert made.shape == (2, 3) and made.dtype is gf.float64
    assert gf.zeros_like(x, dtype=gf.int32).dtype is gf.int32
    assert gf.full_like(x, 2).tolist() == [[2.0] * 3] * 2


def test_arange_matches_pytorch_lengths_and_dtypes():
    assert gf.arange(5).tolist() == [0, 1, 2, 3, 4] and gf.arange(5).dtype is gf.int64
    assert gf.arange(1, 4).tolist() == [1, 2, 3]
    assert gf.arange(0, 1, 0.1).shape == (10,) and gf.arange(0, 1, 0.1).dtype is gf.float32
    assert gf.arange(10, 0, -3).tolist() == [10, 7, 4, 1]
    with pytest.raises(ValueError, match="step must be nonzero"):
        gf.arange(0, 1, 0)


def test_linspace_and_eye():
    np.testing.assert_allclose(gf.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(gf.eye(2, 3).numpy(), np.eye(2, 3))
    assert gf.eye(3).dtype is gf.float32


def test_random_draws_have_the_right_range_dtype_and_seeding():
    gf.manual_seed(1)
    first = gf.rand(1000)
    assert first.dtype is gf.float32 and 0 <= first.min().item() and first.max().item() < 1
    gf.manual_seed(1)
    np.testing.assert_array_equal(gf.rand(1000).numpy(), first.numpy())
    normal = gf.randn(10_000, dtype=gf.float64)
    assert abs(normal.mean().item()) < 0.05 and abs(normal.std().item() - 1) < 0.05
    ints = gf.randint(3, 7, (500,))
    assert ints.dtype is gf.int64 and set(ints.tolist()) == {3, 4, 5, 6}
    assert gf.randint(5, (2, 2)).shape == (2, 2)
    assert sorted(gf.randperm(6).tolist()) == list(range(6))


def test_random_draws_refuse_integer_dtypes():
    with pytest.raises(DtypeError, match="rand: expected a floating point dtype, got int64"):
        gf.rand(2, dtype=gf.int64)


def test_negative_sizes_raise():
    with pytest.raises(ValueError, match="negative dimension"):
        gf.zeros(2, -1)


def test_bfloat16_is_named_but_has_no_array_type_on_numpy_or_cupy():
    with pytest.raises(DtypeError, match="bfloat16 has no NumPy or CuPy array type"):
        gf.zeros(2, dtype=gf.bfloat16)
