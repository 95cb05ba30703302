"""conv_transpose2d of an empty batch: PyTorch 2.13 needs only output sizes >= 0 (issue 12, a fuzz finding).

A non-empty batch still needs a non-empty input and output (ShapeError, as PyTorch raises).
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
]


@pytest.mark.parametrize("input_shape, weight_shape, kwargs", CASES)
def test_empty_batch_gives_empty_output_and_zero_gradients(input_shape, weight_shape, kwargs):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(input_shape), rng.standard_normal(weight_shape)
    bias = rng.standard_normal(weight_shape[1] * kwargs.get("groups", 1))
    results = []
    for lib in (gf, torch):
        leaves = [lib.tensor(v, requires_grad=True) for v in (x, w, bias)]
        out = lib.nn.functional.conv_transpose2d(*leaves, **kwargs)
        grads = lib.autograd.grad(out, leaves, lib.ones_like(out))
        results.append([tuple(out.shape)] + [(tuple(g.shape), float(g.abs().sum())) for g in grads])
    assert results[0] == results[1]
    assert results[0][0][0] == 0


@pytest.mark.parametrize(
    "input_shape, weight_shape, kwargs",
    [
        ((0, 2, 2, 6), (2, 2, 1, 1), {"padding": 2}),  # a negative output size, even for an empty batch
        ((1, 2, 2, 6), (2, 2, 1, 3), {"padding": 1}),  # output height 0 with a sample to place
        ((1, 2, 0, 6), (2, 2, 1, 3), {}),  # an empty input with a non-empty batch
        ((2, 1, 1), (2, 2, 2, 2), {"padding": 1}),  # unbatched: one sample
    ],
)
def test_sizes_torch_refuses_raise_shape_error(input_shape, weight_shape, kwargs):
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv_transpose2d(torch.zeros(input_shape), torch.zeros(weight_shape), **kwargs)
    with pytest.raises(ShapeError, match="conv_transpose2d"):
        gf.nn.functional.conv_transpose2d(gf.zeros(input_shape), gf.zeros(weight_shape), **kwargs)
