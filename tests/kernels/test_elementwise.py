"""Bias + activation: the NumPy references against torch, the wired ops, and (on a GPU) the kernels.

The CPU tests check ``numpy_bias_act_forward`` / ``numpy_bias_act_backward`` (the CPU
backend's implementation) against torch's activations and autograd, and that the
activation ops go through the primitives. The ``cuda`` tests compare each kernel with
the NumPy reference, every output buffer filled with NaN before the launch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends.fused import elementwise as ew
from gradflow.errors import ShapeError
from gradflow.ops import activation as act

ACTIVATIONS = ew.ACTIVATIONS


def _torch_act(name):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    return {
        "identity": lambda t: t,
        "relu": torch.relu,
        "gelu": functional.gelu,
        "gelu_tanh": lambda t: functional.gelu(t, approximate="tanh"),
        "silu": functional.silu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
    }[name]


def _torch_bias_act(x, bias, grad, name):
    """(y, grad_x, grad_bias) from torch autograd, in x's dtype (bias grad None without a bias)."""
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    tb = None if bias is None else torch.tensor(bias, requires_grad=True)
    y = _torch_act(name)(tx if tb is None else tx + tb)
    y.backward(torch.tensor(grad))
    grad_x = tx.grad.numpy() if tx.grad is not None else np.zeros_like(x)
    return y.detach().numpy(), grad_x, None if tb is None else tb.grad.numpy()


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)


# -- the NumPy references ------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATIONS)
@settings(max_examples=8, deadline=None)
@given(shape=shapes, with_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_reference_matches_torch_in_float64(name, shape, with_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, shape)
    bias = rng.normal(0, 1, shape[-1]) if with_bias else None
    grad = rng.normal(0, 1, shape)
    y, grad_x, grad_bias = _torch_bias_act(x, bias, grad, name)
    np.testing.assert_allclose(ew.numpy_bias_act_forward(x, bias, name), y, rtol=1e-12, atol=1e-14)
    ours_x, ours_bias = ew.numpy_bias_act_backward(grad, x, bias, name, with_bias)
    np.testing.assert_allclose(ours_x, grad_x, rtol=1e-11, atol=1e-13)
    if with_bias:
        np.testing.assert_allclose(ours_bias, grad_bias, rtol=1e-11, atol=1e-12)
    else:
        assert ours_bias is None


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_reference_matches_torch_at_large_and_small_magnitudes_in_float32(name):
    x = np.array([[-1e4, -100.0, -20.0, -1e-30, 0.0, 1e-30, 3e-3, 20.0, 100.0, 1e4]], dtype=np.float32)
    bias = np.linspace(-1e-3, 1e-3, x.shape[1], dtype=np.float32)
    grad = np.full(x.shape, 0.5, dtype=np.float32)
    y, grad_x, grad_bias = _torch_bias_act(x, bias, grad, name)
    ours_y = ew.numpy_bias_act_forward(x, bias, name)
    ours_x, ours_bias = ew.numpy_bias_act_backward(grad, x, bias, name, True)
    assert ours_y.dtype == ours_x.dtype == ours_bias.dtype == np.float32
    assert np.isfinite(ours_y).all() and np.isfinite(ours_x).all()
    np.testing.assert_allclose(ours_y, y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_x, grad_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_bias, grad_bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float16_is_computed_in_float32_and_rounded_once(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.normal(0, 4, (5, 7)).astype(np.float16)
    bias = rng.normal(0, 1, 7).astype(np.float16)
    expected = _torch_act(name)(torch.tensor(x, dtype=torch.float32) + torch.tensor(bias, dtype=torch.float32))
    ours = ew.numpy_bias_act_forward(x, bias, name)
    assert ours.dtype == np.float16
    in_float32 = ew.numpy_bias_act_forward(x.astype(np.float32), bias.astype(np.float32), name)
    np.testing.assert_array_equal(ours, in_float32.astype(np.float16))
    # Within one float16 rounding of torch's float32 result (deep tails may differ in float32 by an ulp).
    np.testing.assert_allclose(ours.astype(np.float32), expected.numpy().astype(np.float16), rtol=1e-3, atol=1e-6)
    grad = rng.normal(0, 1, x.shape).astype(np.float16)
    grad_x, grad_bias = ew.numpy_bias_act_backward(grad, x, bias, name, True)
    _, want_x, want_bias = _torch_bias_act(x.astype(np.float32), bias.astype(np.float32), grad.astype(np.float32), name)
    assert grad_x.dtype == grad_bias.dtype == np.float16
    np.testing.assert_allclose(grad_x.astype(np.float32), want_x, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(grad_bias.astype(np.float32), want_bias, rtol=1e-3, atol=1e-2)


def test_relu_keeps_nan_and_selects_gradients_like_torch():
    x = np.array([np.nan, -1.0, 0.0, 2.0], dtype=np.float32)
    grad = np.array([5.0, np.inf, np.inf, 3.0], dtype=np.float32)
    y = ew.numpy_bias_act_forward(x, None, "relu")
    np.testing.assert_array_equal(y, [np.nan, 0.0, 0.0, 2.0])
    grad_x, _ = ew.numpy_bias_act_backward(grad, x, None, "relu", False)
    # torch's threshold_backward: 0 where x <= 0 (even for an infinite gradient), grad elsewhere (NaN too).
    np.testing.assert_array_equal(grad_x, [5.0, 0.0, 0.0, 3.0])


def test_identity_output_does_not_alias_the_input():
    x = np.arange(6.0).reshape(2, 3)
    y = ew.numpy_bias_act_forward(x, None, "identity")
    grad_x, _ = ew.numpy_bias_act_backward(x, x, None, "identity", False)
    assert not np.shares_memory(y, x) and not np.shares_memory(grad_x, x)
    np.testing.assert_array_equal(y, x)


def test_bias_gradient_without_a_bias_sums_every_leading_axis():
    rng = np.random.default_rng(2)
    x, grad = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    grad_x, grad_bias = ew.numpy_bias_act_backward(grad, x, None, "tanh", True)
    np.testing.assert_allclose(grad_bias, grad_x.sum(axis=(0, 1)), rtol=1e-12)
    assert grad_bias.shape == (4,)


def test_empty_inputs_give_empty_outputs_and_a_zero_bias_gradient():
    x = np.zeros((0, 3), dtype=np.float32)
    bias = np.ones(3, dtype=np.float32)
    assert ew.numpy_bias_act_forward(x, bias, "gelu").shape == (0, 3)
    grad_x, grad_bias = ew.numpy_bias_act_backward(x, x, bias, "gelu", True)
    assert grad_x.shape == (0, 3)
    np.testing.assert_array_equal(grad_bias, np.zeros(3, dtype=np.float32))
    wide_empty = np.zeros((4, 0))
    assert ew.numpy_bias_act_backward(wide_empty, wide_empty, np.zeros(0), "silu", True)[1].shape == (0,)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_zero_dim_inputs_keep_their_shape(name):
    x, grad = np.array(-0.75), np.array(2.0)
    y = ew.numpy_bias_act_forward(x, None, name)
    grad_x, _ = ew.numpy_bias_act_backward(grad, x, None, name, False)
    assert y.shape == grad_x.shape == ()
    np.testing.assert_allclose(grad_x, ew.numpy_bias_act_backward(grad[None], x[None], None, name, False)[0][0])


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'swish'.*gelu_tanh"):
        ew.numpy_bias_act_forward(np.ones(3), None, "swish")
    with pytest.raises(ValueError, match="unknown activation"):
        ew.numpy_bias_act_backward(np.ones(3), np.ones(3), None, "Relu", False)


def test_bad_shapes_raise_shape_errors_naming_both_shapes():
    with pytest.raises(ShapeError, match=r"bias has shape \[4\] but x has shape \[2, 3\]"):
        ew.numpy_bias_act_forward(np.ones((2, 3)), np.ones(4), "relu")
    with pytest.raises(ShapeError, match="0-d"):
        ew.numpy_bias_act_forward(np.ones(()), np.ones(1), "relu")
    with pytest.raises(ShapeError, match=r"grad has shape \[3, 2\]"):
        ew.numpy_bias_act_backward(np.ones((3, 2)), np.ones((2, 3)), None, "relu", False)


def test_kernel_list_covers_every_dtype_and_pack_width():
    assert "gf_elementwise_bias_act_forward<gf_half, 8>" in ew.KERNELS
    assert "gf_elementwise_bias_act_backward<double, 2>" in ew.KERNELS
    assert "gf_elementwise_bias_act_backward_bias<float>" in ew.KERNELS
    assert len(ew.KERNELS) == len(set(ew.KERNELS)) == 15


# -- the wired ops --------------------------------------------------------------------
OPS = {
    "relu": act.relu,
    "gelu": act.gelu,
    "gelu_tanh": lambda t: act.gelu(t, approximate="tanh"),
    "silu": act.silu,
    "tanh": act.tanh,
    "sigmoid": act.sigmoid,
}
# The ops whose first-order backward is the fused primitive (sigmoid and tanh read their output).
FUSED_BACKWARD = ("relu", "gelu", "gelu_tanh", "silu")


class _Counting:
    """Wraps a backend's primitives and records the activations they were called with."""

    def __init__(self, backend, monkeypatch):
        self.calls = []
        for primitive in ("bias_act_forward", "bias_act_backward"):
            original = getattr(backend, primitive)

            def wrapper(*args, _original=original, _primitive=primitive):
                self.calls.append((_primitive, args[2] if _primitive == "bias_act_forward" else args[3]))
                return _original(*args)

            monkeypatch.setattr(backend, primitive, wrapper)


@pytest.mark.parametrize("name", list(OPS))
def test_ops_run_through_the_fused_primitives(name, monkeypatch):
    x = gf.randn(3, 4, requires_grad=True)
    counting = _Counting(x.device.backend, monkeypatch)
    OPS[name](x).sum().backward()
    activation = name
    assert ("bias_act_forward", activation) in counting.calls
    assert (("bias_act_backward", activation) in counting.calls) == (name in FUSED_BACKWARD)


@pytest.mark.parametrize("name", list(OPS))
def test_ops_match_torch_forward_and_backward(name, device):
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(3).normal(0, 2, (4, 5)).astype(np.float32)
    x = gf.tensor(data, device=device, requires_grad=True)
    y = OPS[name](x)
    y.backward(gf.ones_like(y) * 0.5)
    tx = torch.tensor(data, requires_grad=True)
    ty = _torch_act(name)(tx)
    ty.backward(torch.full_like(ty, 0.5))
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(OPS))
def test_ops_pass_gradcheck_and_gradgradcheck(name, device):
    # Away from 0, where relu has its kink.
    data = np.random.default_rng(4).uniform(0.2, 2.0, (3, 4)) * np.where(np.arange(12) % 2, 1, -1).reshape(3, 4)
    x = gf.tensor(data, dtype=gf.float64, device=device, requires_grad=True)
    assert gradcheck(OPS[name], (x,))
    if name != "relu":  # relu's second derivative is zero almost everywhere: nothing to check
        assert gradgradcheck(OPS[name], (x,))


def test_integer_relu_and_sigmoid_keep_their_dtypes():
    ints = gf.tensor([-2, 0, 3])
    assert ints.relu().dtype == gf.int64
    assert ints.relu().tolist() == [0, 0, 3]
    assert ints.sigmoid().dtype == gf.get_default_dtype()


def test_sigmoid_backward_survives_an_in_place_change_of_its_input():
    # sigmoid saves its output (as torch does), so changing x afterwards is allowed.
    x = gf.randn(5, requires_grad=True)
    h = x * 1
    y = h.sigmoid()
    h.add_(1)
    y.sum().backward()
    s = y.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), s * (1 - s), rtol=1e-6)


# -- the kernels, on a GPU -------------------------------------------------------------
# (shape, bias?, misaligned?) cases: odd sizes, sizes off the block size, one row, a very long
# row, more rows than a grid's y dimension could hold, a view whose start is off 16 bytes (the
# scalar path), and inputs larger than one pass of the grid (the grid-stride loops).
CUDA_CASES = [
    ((1, 1), True, False),
    ((7,), False, False),
    ((3, 5, 7), True, False),
    ((37, 129), True, False),
    ((64, 256), True, False),
    ((5, 96), True, True),
    ((1, 300_007), True, False),
    ((70_001, 3), True, False),
    ((1001, 33), False, True),
    ((1001, 33), False, False),
    ((1100, 1024), True, False),
]
# (rtol, atol) per dtype; forward atol scales with the inputs. float32's atol allows tanhf/expf's
# couple of ulps near 1 in derivatives such as 1 - tanh(z)^2.
DTYPES = {np.float16: (1e-2, 1e-3), np.float32: (1e-5, 5e-6), np.float64: (1e-10, 1e-12)}


def _cuda_operands(shape, dtype, with_bias, misaligned, scale, seed):
    import cupy

    rng = np.random.default_rng(seed)
    x = (rng.normal(0, scale, shape)).astype(dtype)
    grad = rng.normal(0, 1, shape).astype(dtype)
    bias = rng.normal(0, 1, shape[-1]).astype(dtype) if with_bias else None

    def upload(host):
        if not misaligned:
            return cupy.asarray(host)
        # One element in: the pointer is no longer 16-byte aligned, so the scalar path runs.
        flat = cupy.empty(host.size + 1, dtype=host.dtype)
        flat[1:] = cupy.asarray(host.ravel())
        return flat[1:].reshape(host.shape)

    return x, grad, bias, upload(x), upload(grad), None if bias is None else cupy.asarray(bias)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize(("shape", "with_bias", "misaligned"), CUDA_CASES)
@pytest.mark.parametrize("scale", [3.0, 1e-3, 300.0])
def test_cuda_kernels_match_the_reference(dtype, shape, with_bias, misaligned, scale):
    import cupy

    rtol, atol = DTYPES[dtype]
    x, grad, bias, dx, dgrad, dbias = _cuda_operands(shape, dtype, with_bias, misaligned, scale, seed=len(shape))
    rows = x.size // shape[-1]
    for name in ACTIVATIONS:
        out = cupy.full(shape, cupy.nan, dtype=dtype)
        ew.cuda_bias_act_forward(dx, dbias, name, out=out)
        want = ew.numpy_bias_act_forward(x, bias, name)
        np.testing.assert_allclose(cupy.asnumpy(out), want, rtol=rtol, atol=atol * scale, err_msg=name)

        grad_x = cupy.full(shape, cupy.nan, dtype=dtype)
        got_x, got_bias = ew.cuda_bias_act_backward(dgrad, dx, dbias, name, False, grad_x_out=grad_x)
        want_x, want_bias = ew.numpy_bias_act_backward(grad, x, bias, name, True)
        assert got_bias is None and got_x is grad_x
        np.testing.assert_allclose(cupy.asnumpy(got_x), want_x, rtol=rtol, atol=atol, err_msg=name)

        accumulate = np.float64 if dtype == np.float64 else np.float32
        partial = cupy.full(ew.bias_grad_partial_shape(rows, shape[-1], dx.device.id), cupy.nan, dtype=accumulate)
        grad_x_fused = cupy.full(shape, cupy.nan, dtype=dtype)
        got_x, got_bias = ew.cuda_bias_act_backward(
            dgrad, dx, dbias, name, True, grad_x_out=grad_x_fused, partial_out=partial
        )
        np.testing.assert_allclose(cupy.asnumpy(got_x), want_x, rtol=rtol, atol=atol, err_msg=name)
        assert got_bias.shape == (shape[-1],) and got_bias.dtype == dtype
        bias_atol = max(atol, 1e-6) * 10 * math.sqrt(rows)
        np.testing.assert_allclose(cupy.asnumpy(got_bias), want_bias, rtol=max(rtol, 1e-4), atol=bias_atol)


@pytest.mark.cuda
def test_cuda_kernels_take_non_contiguous_and_empty_inputs():
    import cupy

    host = np.random.default_rng(5).normal(size=(6, 10)).astype(np.float32)
    transposed = cupy.asarray(host).T  # (10, 6), not C-contiguous
    np.testing.assert_allclose(
        cupy.asnumpy(ew.cuda_bias_act_forward(transposed, None, "gelu")),
        ew.numpy_bias_act_forward(host.T, None, "gelu"),
        rtol=1e-5,
        atol=1e-6,
    )
    empty = cupy.zeros((0, 4), dtype=cupy.float32)
    assert ew.cuda_bias_act_forward(empty, cupy.ones(4, dtype=cupy.float32), "relu").shape == (0, 4)
    grad_x, grad_bias = ew.cuda_bias_act_backward(empty, empty, None, "silu", True)
    assert grad_x.shape == (0, 4)
    np.testing.assert_array_equal(cupy.asnumpy(grad_bias), np.zeros(4, dtype=np.float32))
    scalar = cupy.asarray(-0.5, dtype=cupy.float32)
    assert ew.cuda_bias_act_forward(scalar, None, "silu").shape == ()
    assert ew.cuda_bias_act_backward(scalar, scalar, None, "silu", False)[0].shape == ()
    with pytest.raises(ValueError, match="unknown activation"):
        ew.cuda_bias_act_forward(transposed, None, "swish")


@pytest.mark.cuda
@pytest.mark.parametrize("name", list(OPS))
def test_wired_ops_on_cuda_match_cpu(name):
    data = np.random.default_rng(6).normal(0, 2, (33, 65)).astype(np.float32)
    results = {}
    for device in ("cpu", "cuda"):
        x = gf.tensor(data, device=device, requires_grad=True)
        y = OPS[name](x)
        (y * y).sum().backward()
        results[device] = (y.detach().cpu().numpy(), x.grad.cpu().numpy())
    for cpu_value, cuda_value in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(cuda_value, cpu_value, rtol=1e-5, atol=1e-5)
