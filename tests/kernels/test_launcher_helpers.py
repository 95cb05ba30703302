"""The host-side helpers every kernel launcher shares (gradflow/backends/kernels.py), on the CPU.

The launchers themselves need a GPU; these helpers take ``xp`` or plain objects with a
``.data.ptr`` (CuPy's pointer attribute), so their rules are checked on every machine.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gradflow.backends import kernels
from gradflow.errors import DtypeError, ShapeError


def _at(address: int):
    """A stand-in for a CuPy array whose data starts at ``address``."""
    return SimpleNamespace(data=SimpleNamespace(ptr=address))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64, np.uint16])
def test_dtype_suffix_refuses_other_dtypes_with_a_dtype_error(dtype):
    with pytest.raises(DtypeError, match=r"no CUDA kernel for dtype .*float16, float32 and float64"):
        kernels.dtype_suffix(dtype)


@pytest.mark.parametrize(("dtype", "suffix"), [(np.float16, "gf_half"), (np.float32, "float"), (np.float64, "double")])
def test_dtype_suffix_names_the_template_argument(dtype, suffix):
    assert kernels.dtype_suffix(dtype) == suffix


@pytest.mark.parametrize(("dtype", "width"), [(np.float16, 8), (np.float32, 4), (np.float64, 2)])
def test_pack_width_is_sixteen_bytes_when_rows_and_pointers_allow(dtype, width):
    assert kernels.pack_width(dtype, 3 * width, _at(256), _at(4096)) == width
    # A row length that is not a whole number of packs: a pack would straddle two rows.
    assert kernels.pack_width(dtype, 3 * width + 1, _at(256), _at(4096)) == 1
    # One pointer off a 16-byte boundary (a view at an offset) is enough to refuse.
    assert kernels.pack_width(dtype, 3 * width, _at(256), _at(4096 + np.dtype(dtype).itemsize)) == 1


def test_pack_width_skips_absent_arrays_and_may_ignore_rows():
    assert kernels.pack_width(np.float32, 8, _at(0), None) == 4
    assert kernels.pack_width(np.float32, None, _at(0)) == 4  # flat elementwise work: no row constraint
    assert kernels.pack_width(np.float32, None, _at(8)) == 1


def test_output_buffer_allocates_when_none_is_given():
    buffer = kernels.output_buffer(np, None, (2, 3), np.float32, "layer_norm", "out")
    assert buffer.shape == (2, 3) and buffer.dtype == np.float32


def test_output_buffer_returns_a_fitting_buffer_itself():
    given = np.zeros((4,), np.float64)
    assert kernels.output_buffer(np, given, (4,), np.float64, "dropout", "out") is given


@pytest.mark.parametrize(
    ("given", "error", "detail"),
    [
        (np.zeros((3, 2), np.float32), ShapeError, r"shape \[2, 3\].*got float32 \[3, 2\]"),
        (np.zeros((2, 3), np.float64), DtypeError, r"float32 array.*got float64"),
        (np.zeros((3, 2), np.float32).T, ShapeError, r"not C-contiguous"),
    ],
)
def test_output_buffer_refuses_a_buffer_that_cannot_take_the_result(given, error, detail):
    with pytest.raises(error, match=r"^bias_act: grad_x_out must be a C-contiguous .*" + detail):
        kernels.output_buffer(np, given, (2, 3), np.float32, "bias_act", "grad_x_out")
