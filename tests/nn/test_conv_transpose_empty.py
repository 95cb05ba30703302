"""conv_transpose2d with an output size of 0 (issue 12, a fuzz finding): an empty output and zero gradients,
as PyTorch's float16, batched float32 and empty-batch kernels give (its float32 single-sample and float64
kernels refuse: row conv-transpose-empty-output of docs/differences.md). Negative output sizes, and empty
inputs with a non-empty batch, raise ShapeError as in PyTorch.
"""

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import ShapeError

torch = pytest.importorskip("torch")

CASES = [
    # input shape, weight shape, keyword arguments
    ((0, 2, 2, 6), (2, 2, 1, 3), {"padding": 1}),  # output height 0
    ((0, 2, 1, 1), (2, 2, 2, 2), {"padding": 1}),  # output 0 x 0
    ((0, 2, 0, 6), (2, 2, 1, 3), {}),  # empty input height, output height 0
    ((0, 4, 3, 3), (4, 1, 2, 2), {"groups": 2, "padding": 1}),
    ((0, 2, 3, 3), (2, 2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 2, 2, 6), (2, 2, 1, 3), {"padding": 1}),  # two samples, output height 0
]


@pytest.mark.parametrize("input_shape, weight_shape, kwargs", CASES)
def test_output_size_zero_gives_empty_output_and_zero_gradients(input_shape, weight_shape, kwargs):
    rng = np.random.default_rng(0)
    # float32: PyTorch's batched float32 kernel computes the size-0 output (its float64 one refuses)
    x, w = rng.standard_normal(input_shape, np.float32), rng.standard_normal(weight_shape, np.float32)
    bias = rng.standard_normal(weight_shape[1] * kwargs.get("groups", 1), np.float32)
    results = []
    for lib in (gf, torch):
        leaves = [lib.tensor(v, requires_grad=True) for v in (x, w, bias)]
        out = lib.nn.functional.conv_transpose2d(*leaves, **kwargs)
        grads = lib.autograd.grad(out, leaves, lib.ones_like(out))
        results.append([tuple(out.shape)] + [(tuple(g.shape), float(g.abs().sum())) for g in grads])
    assert results[0] == results[1]
    assert 0 in results[0][0]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("input_shape", [(1, 2, 2, 6), (2, 2, 6)])
def test_one_sample_with_output_size_zero_is_empty_in_every_dtype(dtype, input_shape):
    # PyTorch's float16 kernel gives this; its float32/float64 single-sample kernels refuse (the difference row)
    x = gf.zeros(input_shape, dtype=getattr(gf, dtype), requires_grad=True)
    weight = gf.ones((2, 2, 1, 3), dtype=getattr(gf, dtype), requires_grad=True)
    out = gf.nn.functional.conv_transpose2d(x, weight, padding=1)
    assert tuple(out.shape) == (*input_shape[:-3], 2, 0, 6)
    grads = gf.autograd.grad(out, [x, weight], gf.ones_like(out))
    assert [tuple(g.shape) for g in grads] == [input_shape, (2, 2, 1, 3)]
    assert all(float(g.abs().sum()) == 0 for g in grads)
    expected = torch.nn.functional.conv_transpose2d(
        torch.zeros(input_shape).half(), torch.ones(2, 2, 1, 3).half(), padding=1
    )
    assert tuple(expected.shape) == tuple(out.shape)


@pytest.mark.parametrize(
    "input_shape, weight_shape, kwargs",
    [
        ((0, 2, 2, 6), (2, 2, 1, 1), {"padding": 2}),  # a negative output size, even for an empty batch
        ((1, 2, 0, 6), (2, 2, 1, 3), {}),  # an empty input with a non-empty batch
        ((2, 1, 1), (2, 2, 1, 1), {"padding": 1}),  # unbatched, output -1 x -1
    ],
)
def test_sizes_torch_refuses_raise_shape_error(input_shape, weight_shape, kwargs):
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv_transpose2d(torch.zeros(input_shape), torch.zeros(weight_shape), **kwargs)
    with pytest.raises(ShapeError, match="conv_transpose2d"):
        gf.nn.functional.conv_transpose2d(gf.zeros(input_shape), gf.zeros(weight_shape), **kwargs)
