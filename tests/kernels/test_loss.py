"""Fused log-softmax + NLL: the NumPy references (the CPU backend) against torch's cross_entropy, and
kernels/loss.cu against the references on a GPU (cuda-marked, outputs poisoned with NaN before each launch)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends.fused.loss import numpy_cross_entropy_backward, numpy_cross_entropy_forward

torch = pytest.importorskip("torch")


def _case(rng, rows, classes, dtype=np.float64, weighted=True, ignore_index=-100, scale=1.0):
    logits = (rng.standard_normal((rows, classes)) * scale).astype(dtype)
    target = rng.integers(0, classes, rows).astype(np.int64)
    if ignore_index >= 0 or ignore_index == -100:
        target[rng.random(rows) < 0.25] = ignore_index  # some rows ignored
    weight = (rng.random(classes) + 0.5).astype(dtype) if weighted else None
    return logits, target, weight


def _torch_losses_and_grad(logits, target, weight, ignore_index, smoothing, grad):
    source = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    losses = torch.nn.functional.cross_entropy(
        source,
        torch.tensor(target),
        weight=None if weight is None else torch.tensor(weight, dtype=torch.float64),
        ignore_index=ignore_index,
        reduction="none",
        label_smoothing=smoothing,
    )
    losses.backward(torch.tensor(np.broadcast_to(grad, losses.shape).copy(), dtype=torch.float64))
    return losses.detach().numpy(), source.grad.numpy()


# -- NumPy references ------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 12),
    classes=st.integers(1, 9),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.1, 1.0]),
    ignore_index=st.sampled_from([-100, 0, 2]),
    scalar_grad=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_reference_matches_torch(rows, classes, weighted, smoothing, ignore_index, scalar_grad, seed):
    rng = np.random.default_rng(seed)
    logits, target, weight = _case(rng, rows, classes, weighted=weighted, ignore_index=ignore_index, scale=5.0)
    target = np.where((target >= classes) & (target != ignore_index), 0, target)
    grad = np.array(rng.standard_normal()) if scalar_grad else rng.standard_normal(rows)
    expected, expected_grad = _torch_losses_and_grad(logits, target, weight, ignore_index, smoothing, grad)
    losses, shift, total = numpy_cross_entropy_forward(logits, target, weight, ignore_index, smoothing)
    np.testing.assert_allclose(losses, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(shift + np.log(total), torch.logsumexp(torch.tensor(logits), 1).numpy(), rtol=1e-12)
    gradient = numpy_cross_entropy_backward(grad, logits, target, weight, shift, total, ignore_index, smoothing)
    np.testing.assert_allclose(gradient, expected_grad, rtol=1e-10, atol=1e-12)


def test_reference_dtypes_float16_losses_in_float32():
    rng = np.random.default_rng(0)
    logits, target, weight = _case(rng, 6, 11, dtype=np.float16, scale=4.0)
    losses, shift, total = numpy_cross_entropy_forward(logits, target, weight, -100, 0.2)
    assert losses.dtype == shift.dtype == total.dtype == np.float32
    expected, expected_grad = _torch_losses_and_grad(logits.astype(np.float64), target, weight, -100, 0.2, 1.0)
    np.testing.assert_allclose(losses, expected, rtol=1e-4, atol=1e-5)
    gradient = numpy_cross_entropy_backward(np.float32(1), logits, target, weight, shift, total, -100, 0.2)
    assert gradient.dtype == np.float16
    np.testing.assert_allclose(gradient.astype(np.float64), expected_grad, rtol=1e-2, atol=1e-3)


def test_reference_ignored_rows_give_zero_even_with_non_finite_logits():
    logits = np.array([[-np.inf, -np.inf], [np.nan, 1.0], [1.0, 2.0]])
    target = np.array([-100, -100, 1])
    losses, shift, total = numpy_cross_entropy_forward(logits, target, None, -100, 0.3)
    np.testing.assert_array_equal(losses[:2], [0, 0])
    gradient = numpy_cross_entropy_backward(np.ones(3), logits, target, None, shift, total, -100, 0.3)
    np.testing.assert_array_equal(gradient[:2], np.zeros((2, 2)))
    assert np.isfinite(gradient[2]).all()


def test_reference_large_logits_stay_finite():
    logits = np.array([[1e4, -1e4, 0.0]], np.float32)
    losses, shift, total = numpy_cross_entropy_forward(logits, np.array([1]), None, -100, 0.0)
    np.testing.assert_allclose(losses, [2e4])
    np.testing.assert_allclose(shift + np.log(total), [1e4])


def test_reference_empty_batch():
    losses, shift, total = numpy_cross_entropy_forward(
        np.empty((0, 3), np.float32), np.empty(0, np.int64), None, -100, 0.0
    )
    assert losses.shape == shift.shape == total.shape == (0,)


# -- the wired op (CPU and GPU) ---------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_op_with_spatial_dims_matches_torch(device, reduction, smoothing):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((2, 4, 3, 5))
    target = rng.integers(0, 4, (2, 3, 5))
    target[0, 1, :2] = 3  # ignored below
    weight = rng.random(4) + 0.5
    x = gf.tensor(logits, device=device, requires_grad=True)
    out = gf.nn.functional.cross_entropy(
        x,
        gf.tensor(target, device=device),
        weight=gf.tensor(weight, device=device),
        ignore_index=3,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    grad = rng.standard_normal(out.shape)
    out.backward(gf.tensor(grad, device=device))
    source = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(
        source,
        torch.tensor(target),
        torch.tensor(weight),
        ignore_index=3,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    expected.backward(torch.tensor(grad))
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.cpu().numpy(), source.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_op_gradients_first_and_second_order(device):
    logits = gf.randn(5, 4, dtype=gf.float64, device=device, requires_grad=True)
    target = gf.tensor([0, 3, 1, 1, 2], device=device)
    weight = gf.tensor([0.5, 1.0, 2.0, 1.5], dtype=gf.float64, device=device)

    def loss(t):
        return gf.nn.functional.cross_entropy(t, target, weight=weight, ignore_index=1, label_smoothing=0.2)

    assert gradcheck(loss, (logits,))
    assert gradgradcheck(loss, (logits,))


# -- kernels/loss.cu on a GPU ---------------------------------------------------------------------

# (rows, classes): one row, odd sizes, the warp limit (256) and one past it, the register limit of
# a 1024-thread block (8192) and one past it (the online pass), a very long row, > 65535 rows.
KERNEL_SHAPES = [(1, 1), (7, 10), (33, 256), (5, 257), (3, 1000), (2, 8192), (3, 8193), (1, 200_003), (70_000, 3)]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
@pytest.mark.parametrize("options", [(False, -100, 0.0), (True, 2, 0.1), (True, -100, 1.0)])
def test_kernel_matches_reference(dtype, shape, options):
    import cupy

    from gradflow.backends.fused.loss import cuda_cross_entropy_backward, cuda_cross_entropy_forward

    weighted, ignore_index, smoothing = options
    rows, classes = shape
    rng = np.random.default_rng(rows + classes)
    logits, target, weight = _case(rng, rows, classes, dtype, weighted, ignore_index, scale=8.0)
    target = np.where(target >= classes, 0, target)
    compute = np.float64 if dtype == np.float64 else np.float32
    rtol = {np.float16: 1e-3, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    device_args = [cupy.asarray(logits), cupy.asarray(target), None if weight is None else cupy.asarray(weight)]
    losses = cupy.full(rows, cupy.nan, compute)
    shift = cupy.full(rows, cupy.nan, compute)
    total = cupy.full(rows, cupy.nan, compute)
    cuda_cross_entropy_forward(*device_args, ignore_index, smoothing, out=losses, shift=shift, total=total)
    expected, expected_shift, expected_total = numpy_cross_entropy_forward(
        logits, target, weight, ignore_index, smoothing
    )
    atol = rtol * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(losses.get(), expected, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(shift.get(), expected_shift)
    np.testing.assert_allclose(total.get(), expected_total, rtol=rtol * 10)
    for grad in (rng.standard_normal(rows).astype(compute), np.array(0.7, compute)):
        grad_logits = cupy.full(shape, cupy.nan, dtype)
        statistics = (cupy.asarray(expected_shift), cupy.asarray(expected_total))
        cuda_cross_entropy_backward(
            cupy.asarray(grad), *device_args, *statistics, ignore_index, smoothing, grad_logits=grad_logits
        )
        reference_args = (logits, target, weight, expected_shift, expected_total, ignore_index, smoothing)
        expected_grad = numpy_cross_entropy_backward(grad, *reference_args)
        grad_atol = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-13}[dtype]
        np.testing.assert_allclose(
            grad_logits.get().astype(np.float64), expected_grad.astype(np.float64), rtol=rtol * 10, atol=grad_atol
        )


@pytest.mark.cuda
def test_kernel_ignored_and_non_finite_rows():
    import cupy

    from gradflow.backends.fused.loss import cuda_cross_entropy_backward, cuda_cross_entropy_forward

    inf = np.inf
    for repeat in (1, 100, 2100):  # warp rows, cached block rows, online rows
        rows = [[-inf, -inf, -inf, -inf], [inf, 1, 2, 3], [np.nan, 0, 1, 2], [0, -inf, 1, 2]]
        logits = np.tile(np.array(rows), repeat).astype(np.float32)
        target = np.array([-100, -100, -100, 2])
        device_logits, device_target = cupy.asarray(logits), cupy.asarray(target)
        losses, shift, total = cuda_cross_entropy_forward(device_logits, device_target, None, -100, 0.0)
        expected, expected_shift, expected_total = numpy_cross_entropy_forward(logits, target, None, -100, 0.0)
        np.testing.assert_allclose(losses.get(), expected, rtol=1e-5)
        with np.errstate(divide="ignore", invalid="ignore"):  # the logsumexp of each row, NaN and inf rows too
            lse, expected_lse = shift.get() + np.log(total.get()), expected_shift + np.log(expected_total)
        np.testing.assert_allclose(lse, expected_lse, rtol=1e-5, equal_nan=True)
        ones = cupy.ones(4, np.float32)
        gradient = cuda_cross_entropy_backward(ones, device_logits, device_target, None, shift, total, -100, 0.0)
        np.testing.assert_array_equal(gradient.get()[:3], 0)
        assert np.isfinite(gradient.get()[3]).all()


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [gf.float32, gf.float16])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_op_on_cuda_matches_cpu(dtype, reduction):
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((6, 300, 7)) * 3
    target = rng.integers(0, 300, (6, 7))
    target[0, :3] = -100
    weight = rng.random(300) + 0.5
    results = []
    for device in ("cpu", "cuda"):
        x = gf.tensor(logits, dtype=dtype, device=device, requires_grad=True)
        out = gf.nn.functional.cross_entropy(
            x,
            gf.tensor(target, device=device),
            weight=gf.tensor(weight, dtype=dtype, device=device),
            reduction=reduction,
            label_smoothing=0.1,
        )
        out.backward(gf.ones(out.shape, dtype=dtype, device=device))
        results.append((out.detach().cpu().float().numpy(), x.grad.cpu().float().numpy()))
    rtol, atol = (1e-4, 1e-6) if dtype == gf.float32 else (1e-2, 1e-3)
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=rtol, atol=atol)
