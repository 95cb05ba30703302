"""Activations: the NumPy references against torch, the wired ops, and (on a GPU) the kernels.

The CPU tests check ``numpy_activation_forward`` / ``numpy_activation_backward`` (the CPU
backend's implementation) against torch's activations and autograd, that the activation
codes agree with kernels/elementwise.cu, and that the activation ops go through the
primitives. The ``cuda`` tests compare each kernel with the NumPy reference, every output
buffer filled with NaN before the launch.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends import kernels
from gradflow.backends.fused import elementwise as ew
from gradflow.errors import ShapeError

from ..opinfo import ALL_OPS
from ..opinfo.activation import FUSED

ACTIVATIONS = ew.ACTIVATIONS


def _torch_act(name):
    torch = pytest.importorskip("torch")
    if name == "identity":
        return lambda t: t
    return lambda t: FUSED[name].call(torch.nn.functional, t)


def _torch_act_and_grad(x, grad, name):
    """(y, grad_x) from torch autograd, in x's dtype."""
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    y = _torch_act(name)(tx)
    y.backward(torch.tensor(grad))
    grad_x = tx.grad.numpy() if tx.grad is not None else np.zeros_like(x)
    return y.detach().numpy(), grad_x


shapes = st.lists(st.integers(1, 6), min_size=0, max_size=3).map(tuple)


def test_activation_codes_match_the_kernel_source():
    # The kernel switches on GF_ACT_* codes; the launcher sends ACTIVATIONS.index(name).
    source = (Path(kernels.kernel_dir()) / "elementwise.cu").read_text()
    defined = {name.lower(): int(code) for name, code in re.findall(r"#define GF_ACT_(\w+) (\d+)", source)}
    assert defined == {name: code for code, name in enumerate(ACTIVATIONS)}
    # Every code but identity (the default) has its case in both switches.
    for name in ACTIVATIONS[1:]:
        assert source.count(f"case GF_ACT_{name.upper()}:") == 2, name


# -- the NumPy references ------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATIONS)
@settings(max_examples=8, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_reference_matches_torch_in_float64(name, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, shape)
    grad = rng.normal(0, 1, shape)
    y, grad_x = _torch_act_and_grad(x, grad, name)
    np.testing.assert_allclose(ew.numpy_activation_forward(x, name), y, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ew.numpy_activation_backward(grad, x, name), grad_x, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_reference_matches_torch_at_large_and_small_magnitudes_in_float32(name):
    x = np.array([[-1e4, -100.0, -20.0, -1e-30, 0.0, 1e-30, 3e-3, 20.0, 100.0, 1e4]], dtype=np.float32)
    grad = np.full(x.shape, 0.5, dtype=np.float32)
    y, grad_x = _torch_act_and_grad(x, grad, name)
    ours_y = ew.numpy_activation_forward(x, name)
    ours_x = ew.numpy_activation_backward(grad, x, name)
    assert ours_y.dtype == ours_x.dtype == np.float32
    assert np.isfinite(ours_y).all() and np.isfinite(ours_x).all()
    np.testing.assert_allclose(ours_y, y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_x, grad_x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float16_is_computed_in_float32_and_rounded_once(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.normal(0, 4, (5, 7)).astype(np.float16)
    expected = _torch_act(name)(torch.tensor(x, dtype=torch.float32))
    ours = ew.numpy_activation_forward(x, name)
    assert ours.dtype == np.float16
    in_float32 = ew.numpy_activation_forward(x.astype(np.float32), name)
    np.testing.assert_array_equal(ours, in_float32.astype(np.float16))
    # Within one float16 rounding of torch's float32 result (deep tails may differ in float32 by an ulp).
    np.testing.assert_allclose(ours.astype(np.float32), expected.numpy().astype(np.float16), rtol=1e-3, atol=1e-6)
    grad = rng.normal(0, 1, x.shape).astype(np.float16)
    grad_x = ew.numpy_activation_backward(grad, x, name)
    _, want_x = _torch_act_and_grad(x.astype(np.float32), grad.astype(np.float32), name)
    assert grad_x.dtype == np.float16
    np.testing.assert_allclose(grad_x.astype(np.float32), want_x, rtol=1e-3, atol=1e-3)


def test_relu_keeps_nan_and_selects_gradients_like_torch():
    x = np.array([np.nan, -1.0, 0.0, 2.0], dtype=np.float32)
    grad = np.array([5.0, np.inf, np.inf, 3.0], dtype=np.float32)
    y = ew.numpy_activation_forward(x, "relu")
    np.testing.assert_array_equal(y, [np.nan, 0.0, 0.0, 2.0])
    grad_x = ew.numpy_activation_backward(grad, x, "relu")
    # torch's threshold_backward: 0 where x <= 0 (even for an infinite gradient), grad elsewhere (NaN too).
    np.testing.assert_array_equal(grad_x, [5.0, 0.0, 0.0, 3.0])


def test_identity_output_does_not_alias_the_input():
    x = np.arange(6.0).reshape(2, 3)
    y = ew.numpy_activation_forward(x, "identity")
    grad_x = ew.numpy_activation_backward(x, x, "identity")
    assert not np.shares_memory(y, x) and not np.shares_memory(grad_x, x)
    np.testing.assert_array_equal(y, x)


def test_empty_inputs_give_empty_outputs():
    x = np.zeros((0, 3), dtype=np.float32)
    assert ew.numpy_activation_forward(x, "gelu").shape == (0, 3)
    assert ew.numpy_activation_backward(x, x, "gelu").shape == (0, 3)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_zero_dim_inputs_keep_their_shape(name):
    x, grad = np.array(-0.75), np.array(2.0)
    y = ew.numpy_activation_forward(x, name)
    grad_x = ew.numpy_activation_backward(grad, x, name)
    assert y.shape == grad_x.shape == ()
    np.testing.assert_allclose(grad_x, ew.numpy_activation_backward(grad[None], x[None], name)[0])


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'swish'.*gelu_tanh"):
        ew.numpy_activation_forward(np.ones(3), "swish")
    with pytest.raises(ValueError, match="unknown activation"):
        ew.numpy_activation_backward(np.ones(3), np.ones(3), "Relu")


def test_a_gradient_of_another_shape_raises_a_shape_error_naming_both():
    with pytest.raises(ShapeError, match=r"grad has shape \[3, 2\] but x has shape \[2, 3\]"):
        ew.numpy_activation_backward(np.ones((3, 2)), np.ones((2, 3)), "relu")


def test_kernel_list_covers_every_dtype_and_pack_width():
    assert "gf_elementwise_activation_forward<gf_half, 8>" in ew.KERNELS
    assert "gf_elementwise_activation_backward<double, 2>" in ew.KERNELS
    assert "gf_elementwise_activation_backward<float, 1>" in ew.KERNELS
    assert len(ew.KERNELS) == len(set(ew.KERNELS)) == 12


# -- the wired ops --------------------------------------------------------------------
# The wired op of every fused activation (tests/opinfo/activation.py's FUSED: one entry per activation).
OPS = {name: (lambda t, _fused=fused: _fused.call(F, t)) for name, fused in FUSED.items()}
# The ops whose first-order backward is the fused primitive (sigmoid and tanh read their output).
FUSED_BACKWARD = tuple(name for name, fused in FUSED.items() if fused.fused_backward)


def test_every_fused_activation_has_its_wired_op_and_its_op_table_entry():
    # A kernel activation without an entry in FUSED would get no op-level, torch or second-order test.
    assert set(FUSED) == set(ACTIVATIONS) - {"identity"}
    table = {op.name for op in ALL_OPS}
    assert set(FUSED) <= table, set(FUSED) - table


class _Counting:
    """Wraps a backend's primitives and records the activations they were called with."""

    def __init__(self, backend, monkeypatch):
        self.calls = []
        for primitive in ("activation_forward", "activation_backward"):
            original = getattr(backend, primitive)

            def wrapper(*args, _original=original, _primitive=primitive):
                self.calls.append((_primitive, args[-1]))
                return _original(*args)

            monkeypatch.setattr(backend, primitive, wrapper)


@pytest.mark.parametrize("name", list(OPS))
def test_ops_run_through_the_fused_primitives(name, monkeypatch):
    x = gf.randn(3, 4, requires_grad=True)
    counting = _Counting(x.device.backend, monkeypatch)
    OPS[name](x).sum().backward()
    activation = name
    assert ("activation_forward", activation) in counting.calls
    assert (("activation_backward", activation) in counting.calls) == (name in FUSED_BACKWARD)


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
    # relu's second derivative is zero away from 0, but its gradient's derivative along the incoming gradient is not.
    assert gradgradcheck(OPS[name], (x,))


# Non-finite and extreme inputs. torch's values are the reference there, NaN included (an inf meeting
# a 0, as in silu'(inf) = s (1 + x (1 - s)) = 1 + inf * 0).
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 3.5, -3.5, 30.0, -30.0, 100.0, -100.0, 1e4, -1e4]
# (activation, dtype, input) where torch's vectorised kernel differs from its own float64 value, and ours keeps it.
TORCH_DEVIATIONS = {("gelu", np.float32, np.inf): "torch's float32 gelu gives NaN at +inf (its float64 one: inf)"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(FUSED))
def test_ops_match_torch_at_non_finite_and_extreme_inputs(name, dtype, device):
    x = np.array(SPECIAL, dtype=dtype)
    grad = np.linspace(0.5, 1.5, x.size).astype(dtype)
    want_y, want_x = _torch_act_and_grad(x, grad, name)
    t = gf.tensor(x, device=device, requires_grad=True)
    y = OPS[name](t)
    y.backward(gf.tensor(grad, device=device))
    keep = np.array([(name, dtype, value) not in TORCH_DEVIATIONS for value in SPECIAL])
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for got, want in ((y.detach().cpu().numpy(), want_y), (t.grad.cpu().numpy(), want_x)):
        assert got.dtype == dtype
        # NaN exactly where torch has NaN (assert_allclose compares NaN positions).
        np.testing.assert_allclose(got[keep], want[keep], rtol=rtol, atol=1e-30 if dtype == np.float64 else 1e-6)
    for (activation, deviating_dtype, value), why in TORCH_DEVIATIONS.items():
        if (activation, deviating_dtype) == (name, dtype):
            wide_y, _ = _torch_act_and_grad(np.array([value]), np.ones(1), name)
            assert y.detach().cpu().numpy()[SPECIAL.index(value)] == wide_y[0], why


@pytest.mark.parametrize("shape", [(), (0,), (0, 3)])
@pytest.mark.parametrize("name", list(FUSED))
def test_ops_take_zero_dim_and_empty_inputs_like_torch(name, shape, device):
    x = np.full(shape, -0.75)
    grad = np.full(shape, 2.0)
    want_y, want_x = _torch_act_and_grad(x, grad, name)
    t = gf.tensor(x, device=device, requires_grad=True)
    y = OPS[name](t)
    y.backward(gf.tensor(grad, device=device))
    assert y.shape == t.grad.shape == shape
    np.testing.assert_allclose(y.detach().cpu().numpy(), want_y, rtol=1e-12)
    np.testing.assert_allclose(t.grad.cpu().numpy(), want_x, rtol=1e-12)


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
# (shape, misaligned?) cases: odd sizes, sizes off the block size, one row, a very long row,
# many short rows, a view whose start is off 16 bytes (the scalar path), and inputs larger than
# one pass of the grid (the grid-stride loops).
CUDA_CASES = [
    ((1, 1), False),
    ((7,), False),
    ((3, 5, 7), False),
    ((37, 129), False),
    ((64, 256), False),
    ((5, 96), True),
    ((1, 300_007), False),
    ((70_001, 3), False),
    ((1001, 33), True),
    ((1001, 33), False),
    ((1100, 1024), False),
]
# (rtol, atol) per dtype; forward atol scales with the inputs. float32's atol allows tanhf/expf's
# couple of ulps near 1 in derivatives such as 1 - tanh(z)^2.
DTYPES = {np.float16: (1e-2, 1e-3), np.float32: (1e-5, 5e-6), np.float64: (1e-10, 1e-12)}


def _cuda_operands(shape, dtype, misaligned, scale, seed):
    import cupy

    rng = np.random.default_rng(seed)
    x = (rng.normal(0, scale, shape)).astype(dtype)
    grad = rng.normal(0, 1, shape).astype(dtype)

    def upload(host):
        if not misaligned:
            return cupy.asarray(host)
        # One element in: the pointer is no longer 16-byte aligned, so the scalar path runs.
        flat = cupy.empty(host.size + 1, dtype=host.dtype)
        flat[1:] = cupy.asarray(host.ravel())
        return flat[1:].reshape(host.shape)

    return x, grad, upload(x), upload(grad)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize(("shape", "misaligned"), CUDA_CASES)
@pytest.mark.parametrize("scale", [3.0, 1e-3, 300.0])
def test_cuda_kernels_match_the_reference(dtype, shape, misaligned, scale):
    import cupy

    rtol, atol = DTYPES[dtype]
    x, grad, dx, dgrad = _cuda_operands(shape, dtype, misaligned, scale, seed=len(shape))
    for name in ACTIVATIONS:
        out = cupy.full(shape, cupy.nan, dtype=dtype)
        assert ew.cuda_activation_forward(dx, name, out=out) is out
        want = ew.numpy_activation_forward(x, name)
        np.testing.assert_allclose(cupy.asnumpy(out), want, rtol=rtol, atol=atol * scale, err_msg=name)

        grad_x = cupy.full(shape, cupy.nan, dtype=dtype)
        assert ew.cuda_activation_backward(dgrad, dx, name, grad_x_out=grad_x) is grad_x
        want_x = ew.numpy_activation_backward(grad, x, name)
        np.testing.assert_allclose(cupy.asnumpy(grad_x), want_x, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.cuda
def test_cuda_kernels_take_non_contiguous_and_empty_inputs():
    import cupy

    host = np.random.default_rng(5).normal(size=(6, 10)).astype(np.float32)
    transposed = cupy.asarray(host).T  # (10, 6), not C-contiguous
    np.testing.assert_allclose(
        cupy.asnumpy(ew.cuda_activation_forward(transposed, "gelu")),
        ew.numpy_activation_forward(host.T, "gelu"),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        cupy.asnumpy(ew.cuda_activation_backward(transposed, transposed, "silu")),
        ew.numpy_activation_backward(host.T, host.T, "silu"),
        rtol=1e-5,
        atol=1e-6,
    )
    empty = cupy.zeros((0, 4), dtype=cupy.float32)
    assert ew.cuda_activation_forward(empty, "relu").shape == (0, 4)
    assert ew.cuda_activation_backward(empty, empty, "silu").shape == (0, 4)
    scalar = cupy.asarray(-0.5, dtype=cupy.float32)
    assert ew.cuda_activation_forward(scalar, "silu").shape == ()
    assert ew.cuda_activation_backward(scalar, scalar, "silu").shape == ()
    with pytest.raises(ValueError, match="unknown activation"):
        ew.cuda_activation_forward(transposed, "swish")


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
