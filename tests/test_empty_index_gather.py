"""gather/scatter with an empty index follow PyTorch 2.13 (issue 12, a fuzz finding).

An empty index reads and writes nothing, and PyTorch then checks only ``dim`` and src's dtype: any index
shape and dtype passes, gather gives an empty tensor of the index's shape (gradient zero), scatter and
scatter_add a copy of the input.
"""

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import DtypeError, IndexOutOfRangeError

torch = pytest.importorskip("torch")


def _run(lib, call):
    x = lib.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = call(lib, x)
    (grad,) = lib.autograd.grad(out, x, lib.ones_like(out))
    return tuple(out.shape), str(out.dtype).split(".")[-1], out.detach().numpy(), grad.numpy()


def _empty(lib, shape, dtype="int64"):
    return lib.zeros(shape, dtype=getattr(lib, dtype))


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, x: lib.gather(x, 1, _empty(lib, (0, 5))),  # larger than the input along dim 1
        lambda lib, x: lib.gather(x, 0, _empty(lib, (7, 0))),  # larger along dim 0
        lambda lib, x: lib.gather(x, 1, _empty(lib, (0,))),  # fewer dimensions
        lambda lib, x: lib.gather(x, 1, _empty(lib, (5, 0, 7))),  # more dimensions
        lambda lib, x: lib.gather(x, 1, _empty(lib, (0, 5), "float32")),  # any dtype
        lambda lib, x: lib.gather(x.sum(), -1, _empty(lib, (0, 0))),  # a 0-d input
        lambda lib, x: lib.gather(x[:0], 0, _empty(lib, (0, 7))),  # an empty input
        lambda lib, x: x.gather(0, _empty(lib, (0, 4))),
        lambda lib, x: lib.scatter(x, 1, _empty(lib, (0, 5)), _empty(lib, (3,), "float64")),
        lambda lib, x: lib.scatter(x, 1, _empty(lib, (0,), "float32"), value=2.0),
        lambda lib, x: lib.scatter_add(x, 0, _empty(lib, (0, 9)), _empty(lib, (1,), "float64")),
    ],
)
def test_empty_index_matches_torch(call):
    ours, theirs = _run(gf, call), _run(torch, call)
    assert ours[:2] == theirs[:2]
    np.testing.assert_array_equal(ours[2], theirs[2])
    np.testing.assert_array_equal(ours[3], theirs[3])


def test_empty_index_still_checks_dim_and_src_dtype():
    x = gf.zeros((2, 3))
    with pytest.raises(IndexOutOfRangeError, match="dimension out of range"):
        gf.gather(x, 2, gf.zeros((0, 5), dtype=gf.int64))
    with pytest.raises(DtypeError, match="src"):
        gf.scatter(x, 1, gf.zeros((0, 5), dtype=gf.int64), gf.zeros((0, 5), dtype=gf.float64))
    # a non-empty index keeps every check
    with pytest.raises(DtypeError, match="index"):
        gf.gather(x, 1, gf.zeros((1, 1)))
