"""Every misuse named in the core issue gets a typed error whose message names the op, the
shapes/dtypes/devices, and the fix; each also is the built-in exception a Python user catches."""

from __future__ import annotations

import pytest

import gradflow as gf
from gradflow import errors


def test_matmul_shape_mismatch_reads_like_pytorch():
    with pytest.raises(errors.ShapeError, match=r"mat1 and mat2 shapes cannot be multiplied \(1x10 and 1x10\)"):
        gf.ones(1, 10) @ gf.ones(1, 10)
    with pytest.raises(errors.ShapeError, match=r"mm: mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)"):
        gf.mm(gf.ones(2, 3), gf.ones(2, 3))


def test_batched_matmul_with_unbroadcastable_batches():
    with pytest.raises(errors.ShapeError, match=r"batch dimensions of \[2, 3, 4\] and \[5, 4, 1\]"):
        gf.ones(2, 3, 4) @ gf.ones(5, 4, 1)


def test_shapes_that_do_not_broadcast():
    with pytest.raises(errors.ShapeError, match=r"add: shapes \[2, 3\] and \[4\] cannot be broadcast together"):
        gf.ones(2, 3) + gf.ones(4)
    with pytest.raises(errors.ShapeError, match=r"where: shapes"):
        gf.where(gf.ones(3) > 0, gf.ones(3), gf.ones(2))


def test_float_only_ops_on_integer_tensors():
    with pytest.raises(errors.DtypeError, match="mean: .*must be floating point, got int64.*float"):
        gf.tensor([1, 2]).mean()
    with pytest.raises(errors.DtypeError, match="gelu: expected a floating point tensor but got int64"):
        gf.nn.functional.gelu(gf.tensor([1, 2]))


def test_requires_grad_on_an_integer_tensor():
    with pytest.raises(errors.DtypeError, match="floating point dtype can require gradients"):
        gf.arange(3).requires_grad_()


def test_reshape_to_the_wrong_size():
    with pytest.raises(errors.ShapeError, match=r"reshape: shape \[4, 2\] is invalid for input of size 6"):
        gf.ones(2, 3).reshape(4, 2)


def test_dimension_out_of_range():
    with pytest.raises(errors.IndexOutOfRangeError, match=r"sum: dimension out of range \(expected to be in range"):
        gf.ones(2, 3).sum(dim=2)


def test_index_out_of_range():
    with pytest.raises(errors.IndexOutOfRangeError, match=r"index 5 is out of bounds.*shape \[3\]"):
        gf.ones(3)[5]


def test_typed_errors_are_the_builtins_users_catch():
    assert issubclass(errors.ShapeError, ValueError) and issubclass(errors.ShapeError, RuntimeError)
    assert issubclass(errors.DtypeError, TypeError)
    assert issubclass(errors.DeviceMismatchError, RuntimeError)
    assert issubclass(errors.DeviceUnavailableError, RuntimeError)
    assert issubclass(errors.GraphError, RuntimeError) and issubclass(errors.InplaceError, RuntimeError)
    assert issubclass(errors.IndexOutOfRangeError, IndexError)
    assert issubclass(errors.OutOfMemoryError, MemoryError)
    assert issubclass(errors.CheckpointFormatError, ValueError)
    for cls in (errors.ShapeError, errors.DtypeError, errors.GraphError, errors.OutOfMemoryError):
        assert issubclass(cls, errors.GradflowError)


def test_integer_to_a_negative_integer_power():
    with pytest.raises(errors.DtypeError, match=r"pow: integers to negative integer powers.*\.float\(\)"):
        gf.tensor([2, 3]) ** -1


def test_where_needs_a_bool_condition():
    with pytest.raises(errors.DtypeError, match="where: condition must be a bool tensor, got float32"):
        gf.where(gf.ones(2), gf.ones(2), gf.zeros(2))
