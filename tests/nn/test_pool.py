"""max_pool2d, avg_pool2d, adaptive_avg_pool2d and their modules against PyTorch and NumPy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import nn
from gradflow.errors import DtypeError, ShapeError
from gradflow.nn import functional as F


def _host(tensor):
    return tensor.detach().cpu().numpy()


def _check_against_torch(name, device, values, **kwargs):
    """Forward (and indices, when returned) and the input gradient for a random upstream gradient."""
    torch = pytest.importorskip("torch")
    x = gf.tensor(values, device=device, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    out, expected = getattr(F, name)(x, **kwargs), getattr(torch.nn.functional, name)(tx, **kwargs)
    if isinstance(expected, tuple):
        (out, indices), (expected, expected_indices) = out, expected
        assert indices.dtype == gf.int64
        np.testing.assert_array_equal(_host(indices), expected_indices.numpy())
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(_host(out), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    upstream = np.random.default_rng(1).normal(size=tuple(expected.shape))
    out.backward(gf.tensor(upstream, device=device))
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(_host(x.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def _pool_configs():
    """Kernel, stride, padding and ceil_mode combinations, padding at most half the kernel."""
    for kernel, stride, padding, ceil_mode in itertools.product([2, 3, (3, 2)], [None, 1, 2, (2, 3)], [0, 1], [0, 1]):
        if padding <= min(np.broadcast_to(kernel, 2)) // 2:
            yield kernel, stride, padding, bool(ceil_mode)


AVG_CASES = list(itertools.product(_pool_configs(), [True, False], [None, 5]))


@pytest.mark.parametrize("config, count_include_pad, divisor_override", AVG_CASES)
def test_avg_pool2d_matches_pytorch(config, count_include_pad, divisor_override):
    kernel, stride, padding, ceil_mode = config
    values = np.random.default_rng(0).normal(size=(2, 2, 7, 6))
    _check_against_torch(
        "avg_pool2d",
        gf.device("cpu"),
        values,
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )


MAX_CASES = list(itertools.product(_pool_configs(), [1, 2]))


@pytest.mark.parametrize("config, dilation", MAX_CASES)
def test_max_pool2d_values_indices_and_gradients_match_pytorch(config, dilation):
    kernel, stride, padding, ceil_mode = config
    # Rounded values give ties, so the first-maximum rule is checked too.
    values = np.round(np.random.default_rng(0).normal(size=(2, 2, 8, 7)) * 2)
    _check_against_torch(
        "max_pool2d",
        gf.device("cpu"),
        values,
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        return_indices=True,
    )


@st.composite
def _random_pool(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = [draw(st.integers(k, k + 5)) for k in kernel]
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    return (*batch, 2, *size), kernel, stride, padding, draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(config=_random_pool(), count_include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_random_pooling_configurations_match_pytorch(config, count_include_pad, seed):
    shape, kernel, stride, padding, ceil_mode = config
    values = np.random.default_rng(seed).normal(size=shape)
    common = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    cpu = gf.device("cpu")
    _check_against_torch("avg_pool2d", cpu, values, count_include_pad=count_include_pad, **common)
    _check_against_torch("max_pool2d", cpu, values, return_indices=True, **common)


def test_pooling_on_the_device_matches_pytorch(device):
    values = np.random.default_rng(2).normal(size=(2, 3, 7, 7))
    _check_against_torch("max_pool2d", device, values, kernel_size=3, stride=2, padding=1, return_indices=True)
    _check_against_torch(
        "avg_pool2d", device, values, kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False
    )
    _check_against_torch("adaptive_avg_pool2d", device, values, output_size=(3, None))


def test_max_pool2d_on_a_plane_of_minus_infinity_points_at_real_elements(device):
    # Every window holds only -inf; the index must be the first element inside the input, not padding.
    x = gf.full((1, 1, 3, 3), float("-inf"), device=device, requires_grad=True)
    out, indices = F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    assert indices.tolist() == [[[[0, 0, 1], [0, 0, 1], [3, 3, 4]]]]
    out.backward(gf.ones_like(out))
    assert x.grad.sum().item() == 9.0


def test_max_pool2d_propagates_nan_like_pytorch(device):
    nan = float("nan")
    x = gf.tensor([[[[1.0, nan, 3.0], [nan, 2.0, 0.0], [0.0, 0.0, 0.0]]]], device=device)
    out, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
    assert np.isnan(_host(out)[0, 0, 0]).all() and _host(out)[0, 0, 1, 1] == 2.0
    assert indices.tolist() == [[[[3, 1], [3, 4]]]]  # a later NaN takes over, a larger number never does


def test_integer_pooling_truncates_like_pytorch(device):
    x = gf.tensor([[[[-3, 0], [1, 2]]]], device=device)
    assert F.avg_pool2d(x, (2, 1)).tolist() == [[[[-1, 1]]]]
    assert F.max_pool2d(x, 2, padding=1).tolist() == [[[[-3, 0], [1, 2]]]]


def _adaptive_reference(values, out_h, out_w):
    """The bins written out one by one (PyTorch's start = floor, end = ceil)."""
    height, width = values.shape[-2:]
    out = np.empty(values.shape[:-2] + (out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * height // out_h, -(-(i + 1) * height // out_h))
            cols = slice(j * width // out_w, -(-(j + 1) * width // out_w))
            out[..., i, j] = values[..., rows, cols].mean(axis=(-2, -1))
    return out


@settings(max_examples=30, deadline=None)
@given(
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    output=st.tuples(st.integers(1, 9) | st.none(), st.integers(0, 9) | st.none()),
    batched=st.booleans(),
)
def test_adaptive_avg_pool2d_matches_the_bin_definition(size, output, batched):
    values = np.random.default_rng(0).normal(size=((2,) if batched else ()) + (3, *size))
    out = F.adaptive_avg_pool2d(gf.tensor(values), output)
    expected_size = tuple(s if o is None else o for o, s in zip(output, size))
    np.testing.assert_allclose(out.numpy(), _adaptive_reference(values, *expected_size), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("output_size", [1, 2, (3, 2), (None, 4), (5, 7), (7, 9)])
def test_adaptive_avg_pool2d_gradients_match_pytorch(output_size):
    values = np.random.default_rng(0).normal(size=(2, 3, 5, 7))
    _check_against_torch("adaptive_avg_pool2d", gf.device("cpu"), values, output_size=output_size)


def test_pooling_gradcheck_and_gradgradcheck(device):
    x = gf.randn(1, 2, 5, 4, dtype=gf.float64, device=device, requires_grad=True)
    pools = [
        lambda t: F.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True),
        lambda t: F.max_pool2d(t, 2, stride=1, dilation=2),
        lambda t: F.avg_pool2d(t, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        lambda t: F.avg_pool2d(t, 2, divisor_override=3),
        lambda t: F.adaptive_avg_pool2d(t, (3, None)),
    ]
    for pool in pools:
        assert gf.autograd.gradcheck(pool, (x,))
        assert gf.autograd.gradgradcheck(pool, (x,))


def _raises(error, pattern, function, *args, **kwargs):
    with pytest.raises(error, match=pattern):
        function(*args, **kwargs)


def test_pooling_errors_name_the_problem():
    x = gf.randn(2, 4, 5, 5)
    _raises(ShapeError, r"3-D \(C, H, W\) or 4-D .* \[5, 5\]", F.max_pool2d, gf.randn(5, 5), 2)
    _raises(ShapeError, r"non-zero C, H and W .* \[2, 0, 4, 4\]", F.avg_pool2d, gf.randn(2, 0, 4, 4), 2)
    _raises(ShapeError, "pad should be at most half of effective kernel size", F.max_pool2d, x, 3, padding=2)
    _raises(ShapeError, "pad should be at most half", F.avg_pool2d, x, 3, padding=2)
    # Within half the dilated kernel (5 // 2) but over half the kernel (3 // 2): PyTorch refuses this too.
    _raises(ShapeError, "half of kernel size, but got padding=\\[2, 2\\]", F.max_pool2d, x, 3, padding=2, dilation=2)
    _raises(ShapeError, r"output size 0x0 is too small", F.max_pool2d, x, 7)
    _raises(ShapeError, "kernel_size should be greater than zero", F.avg_pool2d, x, 0)
    _raises(ShapeError, "stride should be greater than zero", F.max_pool2d, x, 2, stride=0)
    _raises(ShapeError, "dilation should be greater than zero", F.max_pool2d, x, 2, dilation=0)
    _raises(ShapeError, "pad must be non-negative", F.avg_pool2d, x, 2, padding=-1)
    _raises(ShapeError, "kernel_size must be a single int or a sequence of 2 ints", F.max_pool2d, x, (2, 2, 2))
    _raises(ValueError, "divisor must be not zero", F.avg_pool2d, x, 2, divisor_override=0)
    _raises(ShapeError, r"Expected|3-D \(C, H, W\)", F.adaptive_avg_pool2d, gf.randn(5, 5), 2)
    _raises(ShapeError, "output_size must be an int or a pair", F.adaptive_avg_pool2d, x, (2, 2, 2))
    _raises(ShapeError, "greater than or equal to 0", F.adaptive_avg_pool2d, x, -1)
    _raises(DtypeError, "floating point", F.adaptive_avg_pool2d, x.long(), 2)
    _raises(TypeError, "input must be a Tensor", F.max_pool2d, np.ones((1, 2, 2)), 2)


def test_pool_modules_forward_and_repr_match_pytorch():
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).normal(size=(2, 3, 7, 6))
    cases = [
        ("MaxPool2d", (2,), {}),
        ("MaxPool2d", ((2, 3),), {"stride": 1, "padding": 1, "dilation": 2, "ceil_mode": True}),
        ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}),
        ("AvgPool2d", (2,), {"divisor_override": 3}),
        ("AdaptiveAvgPool2d", ((None, 3),), {}),
        ("AdaptiveAvgPool2d", (1,), {}),
    ]
    for name, args, kwargs in cases:
        ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        expected = theirs(torch.tensor(values)).numpy()
        np.testing.assert_allclose(ours(gf.tensor(values)).numpy(), expected, rtol=1e-12, atol=1e-14)
    out, indices = nn.MaxPool2d(2, return_indices=True)(gf.tensor(values))
    assert out.shape == indices.shape == (2, 3, 3, 3)
    assert list(nn.MaxPool2d(2).parameters()) == []
