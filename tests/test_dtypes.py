"""Type promotion follows PyTorch: categories first, Python scalars and 0-d tensors weakly."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (gf.float32, gf.float64, gf.float64),
        (gf.int32, gf.int64, gf.int64),
        (gf.int64, gf.float16, gf.float16),
        (gf.bool, gf.int32, gf.int32),
        (gf.uint8, gf.int8, gf.int16),
        (gf.bfloat16, gf.float16, gf.float32),
    ],
)
def test_promote_types(first, second, expected):
    assert gf.promote_types(first, second) is expected
    assert gf.promote_types(second, first) is expected


def test_python_scalars_do_not_widen_tensors():
    assert (gf.ones(2) * 2.5).dtype is gf.float32
    assert (gf.ones(2, dtype=gf.float16) + 1).dtype is gf.float16
    assert (gf.ones(2, dtype=gf.int32) + 1).dtype is gf.int32
    assert (gf.ones(2, dtype=gf.int32) * 2.5).dtype is gf.float32
    assert (gf.ones(2, dtype=gf.bool) + 1).dtype is gf.int64


def test_zero_dim_tensors_promote_only_across_categories():
    assert (gf.ones(2) + gf.tensor(1.0, dtype=gf.float64)).dtype is gf.float32
    assert (gf.ones(2, dtype=gf.int32) + gf.tensor(1.0, dtype=gf.float64)).dtype is gf.float64


def test_integer_division_gives_floats_and_floor_division_integers():
    assert (gf.tensor([3, 4]) / 2).tolist() == [1.5, 2.0]
    assert (gf.tensor([3, 4]) / 2).dtype is gf.float32
    assert (gf.tensor([7, -7]) // 2).tolist() == [3, -4]
    assert gf.div(gf.tensor([7, -7]), 2, rounding_mode="trunc").tolist() == [3, -3]
    assert (gf.tensor([7, -7]) % 3).tolist() == [1, 2]


def test_unary_float_ops_promote_integers_to_the_default_float():
    assert gf.exp(gf.tensor([0, 1])).dtype is gf.float32
    assert gf.sigmoid(gf.tensor([0])).tolist() == [0.5]


def test_set_default_dtype_changes_python_float_results():
    gf.set_default_dtype(gf.float64)
    try:
        assert gf.tensor([1.0]).dtype is gf.float64 and gf.zeros(1).dtype is gf.float64
    finally:
        gf.set_default_dtype(gf.float32)
    assert gf.tensor([1.0]).dtype is gf.float32


def test_dtype_lookup_by_name_and_numpy():
    from gradflow.dtypes import to_dtype

    assert to_dtype("float64") is gf.float64 and to_dtype(np.int32) is gf.int32 and to_dtype(float) is gf.float32
    with pytest.raises(TypeError, match="unsupported dtype"):
        to_dtype("complex64")
