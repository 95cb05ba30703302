"""Row softmax / log-softmax: the NumPy references (the CPU backend) against torch, and kernels/softmax.cu
against the references on a GPU (cuda-marked, outputs poisoned with NaN before each launch)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends.fused.softmax import numpy_softmax_backward, numpy_softmax_forward

torch = pytest.importorskip("torch")

TORCH_OPS = {False: torch.softmax, True: torch.log_softmax}


def _torch_forward_and_grad(x: np.ndarray, grad: np.ndarray, log: bool):
    source = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = TORCH_OPS[log](source, -1)
    out.backward(torch.tensor(grad, dtype=torch.float64))
    return out.detach().numpy(), source.grad.numpy()


# -- NumPy references ------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    scale=st.sampled_from([1e-3, 1.0, 50.0]),
    log=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_reference_forward_and_backward_match_torch(shape, scale, log, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    grad = rng.standard_normal(shape)
    expected, expected_grad = _torch_forward_and_grad(x, grad, log)
    out = numpy_softmax_forward(x, log)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(numpy_softmax_backward(grad, out, log), expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("log", [False, True])
def test_reference_float32_keeps_dtype_and_matches_torch(log):
    x = np.random.default_rng(1).standard_normal((4, 33)).astype(np.float32) * 10
    out = numpy_softmax_forward(x, log)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, TORCH_OPS[log](torch.tensor(x), -1).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("log", [False, True])
def test_reference_float16_is_computed_in_float32_and_rounded_once(log):
    x = (np.random.default_rng(2).standard_normal((3, 50)) * 8).astype(np.float16)
    out = numpy_softmax_forward(x, log)
    assert out.dtype == np.float16
    expected = TORCH_OPS[log](torch.tensor(x.astype(np.float32)), -1).numpy().astype(np.float16)
    np.testing.assert_allclose(out.astype(np.float32), expected.astype(np.float32), rtol=2e-3, atol=1e-4)
    grad = np.ones_like(x)
    assert numpy_softmax_backward(grad, out, log).dtype == np.float16


def test_reference_large_magnitudes_stay_finite():
    x = np.array([[1e4, -1e4, 0.0], [3e38, 3e38, -3e38]], np.float32)
    np.testing.assert_allclose(numpy_softmax_forward(x, False), [[1, 0, 0], [0.5, 0.5, 0]])
    log = numpy_softmax_forward(x, True)
    np.testing.assert_allclose(log[0], [0, -2e4, -1e4])
    assert np.isfinite(log[1, :2]).all()


def test_reference_non_finite_rows_follow_the_unshifted_rule():
    inf = np.inf
    x = np.array([[-inf, -inf, -inf], [inf, 1.0, -inf], [0.0, -inf, 0.0]])
    soft, log = numpy_softmax_forward(x, False), numpy_softmax_forward(x, True)
    assert np.isnan(soft[0]).all() and np.isnan(log[0]).all()  # 0 / 0, as the unfused op
    assert np.isnan(soft[1, 0]) and (soft[1, 1:] == 0).all()  # unshifted: inf / inf and x / inf
    assert np.isnan(log[1, 0]) and (log[1, 1:] == -inf).all()
    np.testing.assert_array_equal(soft[2], [0.5, 0, 0.5])
    np.testing.assert_array_equal(log[2], [-np.log(2), -inf, -np.log(2)])


def test_reference_edge_shapes():
    assert numpy_softmax_forward(np.empty((3, 0)), False).shape == (3, 0)
    assert numpy_softmax_forward(np.empty((0, 4)), True).shape == (0, 4)
    np.testing.assert_array_equal(numpy_softmax_forward(np.array(7.0), False), np.array(1.0))
    np.testing.assert_array_equal(numpy_softmax_forward(np.full((5, 1), -3.0), True), np.zeros((5, 1)))


# -- the wired op (CPU and GPU) ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_op_on_any_dim_matches_torch(device, name, dim):
    rng = np.random.default_rng(3)
    values, grad = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    x = gf.tensor(values, device=device, requires_grad=True)
    out = getattr(gf.nn.functional, name)(x, dim=dim)
    out.backward(gf.tensor(grad, device=device))
    source = torch.tensor(values, requires_grad=True)
    expected = getattr(torch, name)(source, dim)
    expected.backward(torch.tensor(grad))
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.cpu().numpy(), source.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_op_gradients_first_and_second_order(device, name):
    x = gf.randn(3, 6, dtype=gf.float64, device=device, requires_grad=True)
    fn = getattr(gf.nn.functional, name)
    assert gradcheck(lambda t: fn(t, dim=-1), (x,))
    assert gradcheck(lambda t: fn(t, dim=0), (x,))
    assert gradgradcheck(lambda t: fn(t, dim=1), (x,))


def test_op_on_a_zero_dim_tensor(device):
    x = gf.tensor(2.5, device=device, requires_grad=True)
    out = gf.nn.functional.log_softmax(x, dim=0)
    out.backward()
    assert out.shape == () and out.item() == 0.0 and x.grad.item() == 0.0


# -- kernels/softmax.cu on a GPU ------------------------------------------------------------------

# (rows, cols): one row, odd sizes, the warp limit (256) and one past it, the register limit of a
# 1024-thread block (8192) and one past it (the online pass), a very long row, > 65535 rows.
KERNEL_SHAPES = [(1, 1), (7, 13), (33, 256), (5, 257), (3, 1000), (2, 8192), (2, 8193), (1, 300_001), (70_000, 3)]


def _tolerances(dtype):
    return {np.float16: (1e-2, 1e-3), np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-14)}[dtype]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
@pytest.mark.parametrize("log", [False, True])
def test_kernel_matches_reference(dtype, shape, log):
    import cupy

    from gradflow.backends.fused.softmax import cuda_softmax_backward, cuda_softmax_forward

    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    scale = 30.0 if dtype == np.float16 else 300.0
    x = (rng.standard_normal(shape) * rng.choice([1e-3, 1.0, scale], size=(shape[0], 1))).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    rtol, atol = _tolerances(dtype)
    out = cupy.full(shape, cupy.nan, dtype)
    cuda_softmax_forward(cupy.asarray(x), log, out=out)
    expected = numpy_softmax_forward(x, log)
    np.testing.assert_allclose(out.get().astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol)
    saved = expected  # the backward kernel runs on the reference's output, so it is checked on its own
    grad_input = cupy.full(shape, cupy.nan, dtype)
    cuda_softmax_backward(cupy.asarray(grad), cupy.asarray(saved), log, grad_input=grad_input)
    expected_grad = numpy_softmax_backward(grad, saved, log).astype(np.float64)
    scale_grad = max(1.0, float(np.abs(expected_grad).max()))
    np.testing.assert_allclose(grad_input.get().astype(np.float64), expected_grad, rtol=rtol, atol=atol * scale_grad)


@pytest.mark.cuda
@pytest.mark.parametrize("log", [False, True])
def test_kernel_unaligned_input_and_non_finite_rows(log):
    import cupy

    from gradflow.backends.fused.softmax import cuda_softmax_forward

    inf = np.inf
    rows = np.array([[-inf] * 8, [inf, 1, -inf, 2, 3, 4, 5, 6], [0, -inf, 0, 1, 2, 3, 4, np.nan]], np.float32)
    for cols_repeat in (1, 40, 1100):  # warp rows, cached block rows, online rows
        x = np.tile(rows, (1, cols_repeat))
        # A one-element offset: the pointer is not 16-byte aligned, so the scalar (non-vector) path runs.
        buffer = cupy.zeros(x.size + 1, np.float32)
        buffer[1:] = cupy.asarray(x.ravel())
        device_x = buffer[1:].reshape(x.shape)
        out = cupy.full(x.shape, cupy.nan, np.float32)
        cuda_softmax_forward(device_x, log, out=out)
        expected = numpy_softmax_forward(x, log)
        np.testing.assert_allclose(out.get(), expected, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [1, -1])
@pytest.mark.parametrize("cols", [10, 1000, 9000])
def test_op_on_cuda_matches_cpu(name, dim, cols):
    rng = np.random.default_rng(cols)
    values, grad = rng.standard_normal((4, cols, 3)).astype(np.float32) * 5, rng.standard_normal((4, cols, 3))
    results = []
    for device in ("cpu", "cuda"):
        x = gf.tensor(values, device=device, requires_grad=True)
        out = getattr(gf.nn.functional, name)(x.transpose(1, 2), dim=dim)
        out.backward(gf.tensor(grad.transpose(0, 2, 1).astype(np.float32), device=device))
        results.append((out.detach().cpu().numpy(), x.grad.cpu().numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-4, atol=1e-5)
