"""conv1d, conv2d, conv_transpose2d and the Conv modules against PyTorch, gradcheck and the error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import nn
from gradflow.errors import DtypeError, ShapeError
from gradflow.nn import functional as F

# PyTorch warns that it copies the input for an uneven 'same' padding; that is its business.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _host(tensor):
    return tensor.detach().cpu().numpy()


def _check_against_torch(name, device, input_shape, weight_shape, bias_shape=None, seed=0, **kwargs):
    """Forward, and the gradients of input, weight and bias for a random upstream gradient, in float64."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=input_shape), rng.normal(size=weight_shape)]
    if bias_shape is not None:
        arrays.append(rng.normal(size=bias_shape))
    ours = [gf.tensor(a, device=device, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = getattr(F, name)(*ours, **kwargs)
    expected = getattr(torch.nn.functional, name)(*theirs, **kwargs)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(_host(out), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.normal(size=tuple(expected.shape))
    out.backward(gf.tensor(upstream, device=device))
    expected.backward(torch.tensor(upstream))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(_host(mine.grad), reference.grad.numpy(), rtol=1e-10, atol=1e-12)


CONV2D_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), (4,), {}),
    ((2, 3, 6, 5), (4, 3, 3, 3), None, {"stride": 2, "padding": 1}),
    ((2, 3, 7, 6), (4, 3, 3, 2), (4,), {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1)}),
    ((2, 4, 6, 6), (6, 2, 3, 3), (6,), {"groups": 2, "padding": 1}),
    ((2, 4, 5, 5), (8, 1, 3, 3), (8,), {"groups": 4, "padding": "same"}),  # depthwise, channel multiplier 2
    ((1, 3, 6, 7), (2, 3, 4, 2), (2,), {"padding": "same", "dilation": 2}),  # even kernel: uneven 'same' pads
    ((2, 3, 6, 7), (2, 3, 4, 4), None, {"padding": "same"}),
    ((2, 3, 6, 7), (2, 3, 2, 3), (2,), {"padding": "valid", "stride": 3}),
    ((3, 6, 7), (2, 3, 3, 3), (2,), {"padding": 1}),  # unbatched
    ((2, 2, 4, 4), (3, 2, 1, 1), (3,), {}),  # 1x1
    ((2, 2, 3, 3), (3, 2, 3, 3), (3,), {"padding": 4}),  # padding wider than the kernel
    ((2, 2, 5, 9), (3, 2, 5, 1), None, {"stride": (1, 4)}),  # kernel as tall as the input
    ((0, 2, 5, 5), (3, 2, 3, 3), (3,), {}),  # empty batch
]


@pytest.mark.parametrize("input_shape, weight_shape, bias_shape, kwargs", CONV2D_CASES)
def test_conv2d_forward_and_gradients_match_pytorch(device, input_shape, weight_shape, bias_shape, kwargs):
    _check_against_torch("conv2d", device, input_shape, weight_shape, bias_shape, **kwargs)


CONV1D_CASES = [
    ((2, 3, 9), (4, 3, 3), (4,), {}),
    ((2, 4, 9), (8, 1, 3), (8,), {"groups": 4, "padding": 3, "stride": 2}),
    ((3, 10), (2, 3, 4), None, {"padding": "same", "dilation": 3}),
    ((2, 2, 8), (2, 2, 2), (2,), {"stride": (3,), "padding": (1,), "dilation": (2,)}),
]


@pytest.mark.parametrize("input_shape, weight_shape, bias_shape, kwargs", CONV1D_CASES)
def test_conv1d_forward_and_gradients_match_pytorch(device, input_shape, weight_shape, bias_shape, kwargs):
    _check_against_torch("conv1d", device, input_shape, weight_shape, bias_shape, **kwargs)


TRANSPOSE_CASES = [
    ((2, 4, 5, 5), (4, 3, 3, 3), (3,), {}),
    ((2, 4, 5, 5), (4, 3, 3, 3), None, {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 4, 5), (4, 3, 3, 2), (6,), {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2), "groups": 2}),
    ((2, 4, 4, 5), (4, 2, 2, 3), None, {"dilation": 2, "output_padding": 1}),  # output_padding < dilation
    ((4, 3, 4), (4, 2, 3, 3), (2,), {"stride": 2}),  # unbatched
    ((1, 2, 5, 5), (2, 1, 3, 3), None, {"padding": 2}),  # padding crops the output
]


@pytest.mark.parametrize("input_shape, weight_shape, bias_shape, kwargs", TRANSPOSE_CASES)
def test_conv_transpose2d_forward_and_gradients_match_pytorch(device, input_shape, weight_shape, bias_shape, kwargs):
    _check_against_torch("conv_transpose2d", device, input_shape, weight_shape, bias_shape, **kwargs)


@st.composite
def _conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["same", "valid", 0, 1, 2, (0, 1)]))
    if padding == "same":
        stride = (1, 1)
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = [draw(st.integers(r, r + 4)) for r in reach]  # never smaller than the dilated kernel
    batch = draw(st.sampled_from([None, 1, 2]))
    input_shape = (channels, *size) if batch is None else (batch, channels, *size)
    bias = (out_channels,) if draw(st.booleans()) else None
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return input_shape, (out_channels, channels // groups, *kernel), bias, kwargs


@settings(max_examples=40, deadline=None)
@given(config=_conv_configs(), seed=st.integers(0, 2**16))
def test_conv2d_random_configurations_match_pytorch(config, seed):
    input_shape, weight_shape, bias_shape, kwargs = config
    _check_against_torch("conv2d", gf.device("cpu"), input_shape, weight_shape, bias_shape, seed=seed, **kwargs)


@settings(max_examples=25, deadline=None)
@given(config=_conv_configs(), output_padding=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_conv_transpose2d_random_configurations_match_pytorch(config, output_padding, seed):
    input_shape, (out_channels, _, *kernel), bias_shape, kwargs = config
    if isinstance(kwargs["padding"], str):
        kwargs["padding"] = 0
    stride, dilation = kwargs["stride"], kwargs["dilation"]
    kwargs["output_padding"] = tuple(min(output_padding, max(s, d) - 1) for s, d in zip(stride, dilation))
    channels = input_shape[-3]
    weight_shape = (channels, out_channels // kwargs["groups"], *kernel)
    bias_shape = None if bias_shape is None else (out_channels,)
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    out_size = [
        (n - 1) * s + r + o - 2 * p
        for n, s, r, o, p in zip(
            input_shape[-2:], stride, reach, kwargs["output_padding"], np.broadcast_to(kwargs["padding"], 2)
        )
    ]
    assume(min(out_size) > 0)  # a padding that crops everything is an error, tested elsewhere
    _check_against_torch("conv_transpose2d", gf.device("cpu"), input_shape, weight_shape, bias_shape, seed, **kwargs)


def _float64(device, *shape):
    return gf.randn(*shape, dtype=gf.float64, device=device, requires_grad=True)


def test_conv2d_gradcheck_and_gradgradcheck(device):
    x, w, b = _float64(device, 2, 4, 4, 3), _float64(device, 4, 2, 2, 2), _float64(device, 4)
    conv = lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    assert gf.autograd.gradcheck(conv, (x, w, b))
    assert gf.autograd.gradgradcheck(conv, (x, w, b))


def test_conv1d_and_conv_transpose2d_gradgradcheck(device):
    x, w = _float64(device, 1, 2, 6), _float64(device, 3, 2, 2)
    assert gf.autograd.gradgradcheck(lambda x, w: F.conv1d(x, w, padding="same", dilation=2), (x, w))
    x, w, b = _float64(device, 1, 4, 3, 2), _float64(device, 4, 1, 2, 2), _float64(device, 2)
    transposed = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2)
    assert gf.autograd.gradcheck(transposed, (x, w, b))
    assert gf.autograd.gradgradcheck(transposed, (x, w, b))


def test_conv2d_keeps_float32_and_accepts_integer_and_strided_inputs(device):
    x, w = gf.randn(2, 3, 5, 5, device=device), gf.randn(4, 3, 3, 3, device=device)
    assert F.conv2d(x, w).dtype == gf.float32
    permuted = x.permute(0, 1, 3, 2)  # a non-contiguous view
    expected = F.conv2d(permuted.contiguous(), w)
    np.testing.assert_allclose(_host(F.conv2d(permuted, w)), _host(expected), rtol=1e-5, atol=1e-6)
    ints = F.conv1d(gf.tensor([[1, 2, 3, 4]], device=device), gf.tensor([[[1, -1]]], device=device))
    assert ints.dtype == gf.int64 and ints.tolist() == [[-1, -1, -1]]


def test_conv2d_backward_leaves_inputs_unchanged(device):
    x, w = _float64(device, 2, 2, 4, 4), _float64(device, 3, 2, 3, 3)
    before = _host(x), _host(w)
    F.conv2d(x, w, padding=1).sum().backward()
    np.testing.assert_array_equal(_host(x), before[0])
    np.testing.assert_array_equal(_host(w), before[1])


def _raises(error, pattern, function, *args, **kwargs):
    with pytest.raises(error, match=pattern):
        function(*args, **kwargs)


def test_conv_shape_errors_name_the_shapes_and_the_fix():
    x, w = gf.randn(2, 4, 5, 5), gf.randn(6, 4, 3, 3)
    _raises(ShapeError, r"conv2d: expected 3-D \(unbatched\) or 4-D .* shape \[5, 5\]", F.conv2d, gf.randn(5, 5), w)
    _raises(ShapeError, r"conv1d: expected 2-D \(unbatched\) or 3-D", F.conv1d, x, gf.randn(6, 4, 3))
    _raises(ShapeError, r"4-D weight .* \[6, 4, 3\]", F.conv2d, x, gf.randn(6, 4, 3))
    _raises(
        ShapeError,
        r"expected input of shape \[2, 4, 5, 5\] to have 3 channels, but got 4",
        F.conv2d,
        x,
        gf.randn(6, 3, 3, 3),
    )
    _raises(ShapeError, r"groups=3,.* to have 6 channels", F.conv2d, x, gf.randn(6, 2, 3, 3), groups=3)
    _raises(ShapeError, r"divisible by 4 at dimension 0,.*\[6, 1, 3, 3\]", F.conv2d, x, gf.randn(6, 1, 3, 3), groups=4)
    _raises(ShapeError, "non-positive groups", F.conv2d, x, w, groups=0)
    _raises(ShapeError, r"padded input size per channel: \(5 x 5\).*\(7 x 3\)", F.conv2d, x, gf.randn(6, 4, 7, 3))
    _raises(ShapeError, r"\(5 x 5\)", F.conv2d, x, w, dilation=3)  # the dilated kernel spans 7
    _raises(ShapeError, "non-positive stride", F.conv2d, x, w, stride=0)
    _raises(ShapeError, "non-positive dilation", F.conv2d, x, w, dilation=(1, 0))
    _raises(ShapeError, "negative padding", F.conv2d, x, w, padding=-1)
    _raises(ShapeError, "padding='same' is not supported for strided", F.conv2d, x, w, stride=2, padding="same")
    _raises(ValueError, "invalid padding string 'full'", F.conv2d, x, w, padding="full")
    _raises(ShapeError, "sequence of 2 ints .* stride=", F.conv2d, x, w, stride=(1, 2, 3))
    _raises(
        ShapeError,
        r"bias to be 1-dimensional with 6 elements, but got bias of shape \[5\]",
        F.conv2d,
        x,
        w,
        gf.randn(5),
    )
    _raises(TypeError, "weight must be a Tensor", F.conv2d, x, np.ones((6, 4, 3, 3)))


def test_conv_transpose2d_errors():
    x, w = gf.randn(2, 4, 5, 5), gf.randn(4, 3, 3, 3)
    _raises(ShapeError, r"Output size is too small", F.conv_transpose2d, x, w, padding=5)
    _raises(ShapeError, r"transposed=1.* to have 3 channels, but got 4", F.conv_transpose2d, x, gf.randn(3, 3, 3, 3))
    _raises(
        ShapeError,
        "output padding must be smaller than either stride or dilation",
        F.conv_transpose2d,
        x,
        w,
        output_padding=1,
    )
    _raises(ShapeError, "divisible by 3 at dimension 0", F.conv_transpose2d, x, w, groups=3)
    _raises(TypeError, "padding must be an int", F.conv_transpose2d, x, w, padding="same")


def test_dtype_mismatch_raises_dtype_error_naming_both_types():
    x, w = gf.randn(2, 3, 5, 5), gf.randn(4, 3, 3, 3)
    _raises(DtypeError, r"conv2d: input type \(float32\) and weight type \(float64\)", F.conv2d, x, w.double())
    _raises(DtypeError, r"input type \(float32\) and bias type \(float64\)", F.conv2d, x, w, gf.randn(4).double())
    _raises(DtypeError, "conv_transpose2d: input type", F.conv_transpose2d, x.double(), gf.randn(3, 2, 3, 3))
    _raises(DtypeError, "bool", F.conv2d, x.bool(), w.bool())


# -- modules -----------------------------------------------------------------------------------------


def test_conv_modules_parameter_shapes_and_default_init_bounds():
    conv = nn.Conv2d(6, 8, (3, 2), groups=2)
    assert conv.weight.shape == (8, 3, 3, 2) and conv.bias.shape == (8,)
    fan_in = 3 * 3 * 2
    # kaiming_uniform_(a=sqrt(5)) gives bound sqrt(6 / ((1 + 5) * fan_in)) = 1 / sqrt(fan_in), like the bias.
    for parameter in (conv.weight, conv.bias):
        values = _host(parameter)
        assert np.abs(values).max() <= 1 / math.sqrt(fan_in) and np.abs(values).max() > 0.5 / math.sqrt(fan_in)
    transposed = nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert transposed.weight.shape == (4, 3, 3, 3) and transposed.bias.shape == (6,)
    assert np.abs(_host(transposed.bias)).max() <= 1 / math.sqrt(3 * 9)  # PyTorch's fan_in: weight.size(1) * k * k
    one_d = nn.Conv1d(3, 5, 4, bias=False, dtype=gf.float64)
    assert one_d.weight.shape == (5, 3, 4) and one_d.bias is None and one_d.weight.dtype == gf.float64
    assert [name for name, _ in conv.named_parameters()] == ["weight", "bias"]


REPRS = [
    ("Conv2d", (3, 8, 3), {}),
    (
        "Conv2d",
        (4, 8, (3, 2)),
        {"stride": 2, "padding": 1, "dilation": 2, "groups": 2, "bias": False, "padding_mode": "reflect"},
    ),
    ("Conv2d", (3, 8, 3), {"padding": "same"}),
    ("Conv1d", (3, 8, 3), {"padding": "valid"}),
    ("Conv1d", (2, 4, 5), {"stride": 2, "padding": 1, "padding_mode": "circular"}),
    ("ConvTranspose2d", (3, 8, 3), {"stride": 2, "output_padding": 1}),
    ("ConvTranspose2d", (4, 8, 3), {"groups": 2, "dilation": 2, "bias": False}),
]


@pytest.mark.parametrize("name, args, kwargs", REPRS)
def test_conv_module_repr_matches_pytorch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


MODULE_CASES = [
    ("Conv2d", (4, 6, 3), {"padding": 1, "padding_mode": "reflect"}, (2, 4, 5, 6)),
    (
        "Conv2d",
        (4, 6, (3, 2)),
        {"padding": "same", "dilation": 2, "padding_mode": "circular", "groups": 2},
        (2, 4, 6, 5),
    ),
    ("Conv2d", (2, 4, 3), {"padding": (2, 1), "stride": 2, "padding_mode": "replicate"}, (2, 5, 5)),
    ("Conv2d", (2, 4, 3), {"padding": 1, "bias": False}, (1, 2, 4, 4)),
    ("Conv1d", (2, 3, 4), {"padding": "same", "padding_mode": "reflect"}, (2, 2, 9)),
    ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, (2, 4, 4, 3)),
]


@pytest.mark.parametrize("name, args, kwargs, input_shape", MODULE_CASES)
def test_conv_modules_match_pytorch_with_the_same_weights(device, name, args, kwargs, input_shape):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, name)(*args, **kwargs, dtype=gf.float64, device=device)
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
    with torch.no_grad():
        for name_, parameter in ours.named_parameters():
            getattr(theirs, name_).copy_(torch.tensor(_host(parameter)))
    values = np.random.default_rng(1).normal(size=input_shape)
    x = gf.tensor(values, device=device, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    out, expected = ours(x), theirs(tx)
    np.testing.assert_allclose(_host(out), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    np.testing.assert_allclose(_host(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_host(ours.weight.grad), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv_transpose2d_module_output_size_picks_the_output_padding():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=3, padding=1)
    x = gf.randn(1, 2, 4, 4)
    assert layer(x).shape == (1, 3, 10, 10)
    assert layer(x, output_size=(12, 11)).shape == (1, 3, 12, 11)
    assert layer(x, output_size=(1, 3, 11, 12)).shape == (1, 3, 11, 12)
    with pytest.raises(ShapeError, match=r"valid sizes range from \[10, 10\] to \[12, 12\]"):
        layer(x, output_size=(13, 10))
    with pytest.raises(ValueError, match="output_size must have 2 or 4 elements"):
        layer(x, output_size=(10,))


def test_conv_module_constructor_errors():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(4, 4, 3, groups=0)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="invalid padding string"):
        nn.Conv1d(4, 4, 3, padding="full")
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect")
