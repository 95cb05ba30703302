"""Issue 12, "silent wrong values": each family that gave a plausible but wrong number, against PyTorch.

NaN/inf locality of pooling, convolution and normalisation; empty-batch batch norm; float16
reductions and losses past 65504; cross-entropy at large tied logits; pow's gradients at 0; std's
gradient at a constant; huber/smooth_l1 at +-inf; normalisation of huge float32 values.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _both(array, device, requires_grad=False):
    """The same values as a gradflow tensor on ``device`` and a torch CPU tensor."""
    return (
        gf.tensor(array, device=device, requires_grad=requires_grad),
        torch.tensor(array, requires_grad=requires_grad),
    )


def _same(ours, theirs, rtol=1e-5, atol=1e-6):
    ours = ours.detach().cpu().numpy() if isinstance(ours, gf.Tensor) else ours
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)


# -- a NaN or inf stays in the windows that hold it --------------------------------------------------

WINDOW_OPS = {
    "adaptive_avg_pool2d_3x4": lambda f, x: f.adaptive_avg_pool2d(x, (3, 4)),
    "adaptive_avg_pool2d_overlapping": lambda f, x: f.adaptive_avg_pool2d(x, (4, 5)),
    "adaptive_avg_pool2d_upsampling": lambda f, x: f.adaptive_avg_pool2d(x, (9, 11)),
    "adaptive_avg_pool2d_1": lambda f, x: f.adaptive_avg_pool2d(x, 1),
    "avg_pool2d": lambda f, x: f.avg_pool2d(x, 2),
    "avg_pool2d_padded": lambda f, x: f.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    "max_pool2d": lambda f, x: f.max_pool2d(x, 2, 1),
    "layer_norm": lambda f, x: f.layer_norm(x, (7,)),
    "group_norm": lambda f, x: f.group_norm(x, 2),
    "batch_norm": lambda f, x: f.batch_norm(x, None, None, training=True),
}


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", sorted(WINDOW_OPS))
def test_non_finite_values_stay_in_their_windows(device, name, special):
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 7)).astype(np.float32)
    x[0, 1, 2, 3] = special
    ours, theirs = _both(x, device)
    _same(WINDOW_OPS[name](F, ours), WINDOW_OPS[name](TF, theirs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_convolutions_keep_non_finite_values_in_their_windows(device, special):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 6, 7)).astype(np.float32)
    x[0, 1, 2, 3] = special
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    (ours, theirs), (w_ours, w_theirs) = _both(x, device), _both(w, device)
    _same(F.conv2d(ours, w_ours, padding=1), TF.conv2d(theirs, w_theirs, padding=1), rtol=1e-4, atol=1e-4)
    _same(F.conv2d(ours, w_ours, stride=2, dilation=2), TF.conv2d(theirs, w_theirs, stride=2, dilation=2), 1e-4, 1e-4)
    wt_ours, wt_theirs = _both(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), device)
    _same(F.conv_transpose2d(ours, wt_ours, stride=2), TF.conv_transpose2d(theirs, wt_theirs, stride=2), 1e-4, 1e-4)
    x1 = x[:, :, 0, :].copy()
    x1[0, 1, 4] = special
    (o1, t1), (w1o, w1t) = _both(x1, device), _both(w[:, :, 0, :].copy(), device)
    _same(F.conv1d(o1, w1o), TF.conv1d(t1, w1t), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("output_size", [(3, 4), (4, 5), (9, 11), (1, 1), (6, 7), (None, 2)])
def test_adaptive_avg_pool2d_values_and_gradients_match_torch(device, output_size):
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 7))
    ours, theirs = _both(x, device, requires_grad=True)
    out, expected = F.adaptive_avg_pool2d(ours, output_size), TF.adaptive_avg_pool2d(theirs, output_size)
    _same(out, expected, rtol=1e-12, atol=1e-12)
    grad = np.random.default_rng(3).standard_normal(tuple(expected.shape))
    out.backward(gf.tensor(grad, device=device))
    expected.backward(torch.tensor(grad))
    _same(ours.grad, theirs.grad, rtol=1e-12, atol=1e-12)
    assert gf.autograd.gradgradcheck(lambda t: F.adaptive_avg_pool2d(t, output_size), (ours.detach().requires_grad_(),))


@pytest.mark.parametrize("op", ["avg_pool2d", "adaptive_avg_pool2d"])
def test_float16_window_sums_do_not_overflow(device, op):
    x = np.array([[[60000, 60000], [-60000, -60000]]], np.float16)
    ours, theirs = _both(x, device)
    call = (lambda f, t: f.avg_pool2d(t, 2)) if op == "avg_pool2d" else (lambda f, t: f.adaptive_avg_pool2d(t, 1))
    out = call(F, ours)
    assert out.dtype == gf.float16
    _same(out, call(TF, theirs))


# -- batch norm on an empty batch -----------------------------------------------------------------


@pytest.mark.parametrize(
    "module, shape",
    [("BatchNorm1d", (0, 3)), ("BatchNorm1d", (0, 3, 4)), ("BatchNorm1d", (2, 3, 0)), ("BatchNorm2d", (0, 3, 2, 2)),
     ("BatchNorm2d", (0, 3, 0, 2)), ("BatchNorm3d", (0, 3, 2, 2, 2))],
)  # fmt: skip
def test_batch_norm_on_an_empty_batch_keeps_its_running_statistics(device, module, shape):
    ours, theirs = getattr(gf.nn, module)(3).to(device), getattr(torch.nn, module)(3)
    for layer in (ours, theirs):
        layer.running_mean.fill_(0.5)
        layer.running_var.fill_(2.0)
    x, x_torch = _both(np.zeros(shape, np.float32), device, requires_grad=True)
    out, expected = ours(x), theirs(x_torch)
    assert out.shape == tuple(expected.shape)
    out.sum().backward()
    expected.sum().backward()
    for name in ("running_mean", "running_var"):
        _same(getattr(ours, name), getattr(theirs, name))
    assert int(ours.num_batches_tracked.item()) == int(theirs.num_batches_tracked.item()) == 1
    _same(ours.weight.grad, theirs.weight.grad)
    _same(ours.bias.grad, theirs.bias.grad)
    assert x.grad.shape == shape
    # A later real batch still trains normally: the statistics were not poisoned.
    batch = np.random.default_rng(0).standard_normal((4,) + shape[1:2] + (2,) * (len(shape) - 2)).astype(np.float32)
    _same(ours(gf.tensor(batch, device=device)), theirs(torch.tensor(batch)), rtol=1e-5, atol=1e-5)
    _same(ours.running_var, theirs.running_var, rtol=1e-5)


# -- float16 reductions and losses accumulate in float32 --------------------------------------------

HALF_CASES = {
    "sum": (lambda m, x: x.sum(), [60000, 60000, -60000, -30000]),
    "sum_dim": (lambda m, x: x.reshape(2, 3).sum(1), [60000, 60000, -60000, 30000, 30000, -50000]),
    "mean": (lambda m, x: x.mean(), [60000, 60000, -60000, -30000]),
    "mean_many": (lambda m, x: x.mean(), [1.0] * 100_000),
    "mean_mid": (lambda m, x: x.mean(), [30.0] * 5000),
    "cumsum": (lambda m, x: x.cumsum(0)[2:], [60000, 60000, -60000, -30000]),  # [inf, 60000, 30000] in full
    "var": (lambda m, x: x.var(), [100, -100, 100, -100]),
    "std": (lambda m, x: x.std(), [600, 600, -600, 300]),
    "std_dim": (lambda m, x: x.reshape(2, 2).std(1, correction=0), [600, -600, 300, 1]),
    "norm": (lambda m, x: x.norm(), [300, 300, 300]),
    "norm_p3": (lambda m, x: x.norm(3), [30, 30, 30]),
    "mse_loss": (lambda m, x: m.mse_loss(x, x * 0), [200, 200, 200, 200]),
    "mse_loss_sum": (lambda m, x: m.mse_loss(x, x * 0, reduction="sum") / 8, [100, 100, 100, 100]),
    "l1_loss": (lambda m, x: m.l1_loss(x, x * 0), [60000, 60000, -60000, -60000]),
    "huber_loss": (lambda m, x: m.huber_loss(x, x * 0, delta=1000.0), [300, 300, 1, 1]),
    "huber_loss_linear": (lambda m, x: m.huber_loss(x, x * 0), [60000, 60000, -60000, -60000]),
    "smooth_l1_loss": (lambda m, x: m.smooth_l1_loss(x, x * 0), [60000, 60000, -60000, -60000]),
    "smooth_l1_loss_quadratic": (lambda m, x: m.smooth_l1_loss(x, x * 0, beta=1000.0), [300, 300, 1, 1]),
}


@pytest.mark.parametrize("name", sorted(HALF_CASES))
def test_float16_reductions_and_losses_match_torch(device, name):
    function, values = HALF_CASES[name]
    ours, theirs = _both(np.array(values, np.float16), device, requires_grad=True)
    out, expected = function(F, ours), function(TF, theirs)
    assert out.dtype == gf.float16 and expected.dtype == torch.float16
    assert np.isfinite(out.detach().cpu().numpy()).all()
    _same(out, expected, rtol=2e-3, atol=0)
    out.sum().backward()
    expected.sum().backward()
    assert ours.grad.dtype == gf.float16
    _same(ours.grad, theirs.grad, rtol=2e-3, atol=1e-6)


# -- cross-entropy at large tied logits -------------------------------------------------------------


def _torch_cross_entropy_grad(logits, target, **options):
    source = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    TF.cross_entropy(source, torch.tensor(target), **options).backward()
    return source.grad.numpy()


@pytest.mark.parametrize("scale", [1e4, 1e7, 1e8, 1e30])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"weight": [1.0, 2.0, 0.5, 1.0]}])
def test_cross_entropy_gradient_at_large_tied_logits(device, scale, options):
    logits = np.array([[1.0, 1.0, 0.0, -1.0], [0.0, -1.0, 1.0, 1.0]], np.float32) * np.float32(scale)
    target = np.array([0, 3])
    expected = _torch_cross_entropy_grad(logits, target, **{k: torch.tensor(v, dtype=torch.float64) if k == "weight"
                                                           else v for k, v in options.items()})  # fmt: skip
    x = gf.tensor(logits, device=device, requires_grad=True)
    ours = {k: gf.tensor(np.array(v, np.float32), device=device) if k == "weight" else v for k, v in options.items()}
    F.cross_entropy(x, gf.tensor(target, device=device), **ours).backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_cross_entropy_reference_issue_case():
    x = gf.tensor([[1e8, 1e8, 0.0, -1e8]], requires_grad=True)
    F.cross_entropy(x, gf.tensor([0])).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[-0.5, 0.5, 0.0, 0.0]])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("classes", [4, 300, 9000])  # a warp per row, a block per row, the online pass
def test_cross_entropy_kernel_matches_reference_at_large_tied_logits(dtype, classes):
    import cupy

    from gradflow.backends.fused.loss import (
        cuda_cross_entropy_backward,
        cuda_cross_entropy_forward,
        numpy_cross_entropy_backward,
        numpy_cross_entropy_forward,
    )

    big = 30000.0 if dtype == np.float16 else 1e8
    logits = np.zeros((3, classes), dtype)
    logits[:, :2] = big  # two tied maxima
    logits[1, -1] = -big
    target = np.array([0, 1, classes - 1])
    shift, total = numpy_cross_entropy_forward(logits, target, None, -100, 0.1)[1:]
    expected = numpy_cross_entropy_backward(np.float32(1), logits, target, None, shift, total, -100, 0.1)
    assert abs(float(expected[0, 0]) - (0.5 - 0.9 - 0.1 / classes)) < 1e-3  # p = 0.5 at the tied logits
    device_args = (cupy.asarray(logits), cupy.asarray(target), None)
    _, device_shift, device_total = cuda_cross_entropy_forward(*device_args, -100, 0.1)
    np.testing.assert_allclose(device_total.get(), total, rtol=1e-5)
    gradient = cuda_cross_entropy_backward(
        cupy.ones((), np.float32), *device_args, device_shift, device_total, -100, 0.1
    )
    np.testing.assert_allclose(gradient.get().astype(np.float64), expected.astype(np.float64), rtol=1e-3, atol=1e-4)
