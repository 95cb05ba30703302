"""Layer norm: the NumPy reference against torch, the wired op, and (on a GPU) the kernels.

The CPU tests check ``numpy_layer_norm_forward`` / ``numpy_layer_norm_backward`` (the CPU
backend's implementation) against torch's ``native_layer_norm`` and autograd, and the
``layer_norm`` op built on them (gradients, second derivatives, errors), and which kernel
the launchers pick for a row. The ``cuda`` tests compare each kernel with the NumPy
reference, every output buffer filled with NaN before the launch: the row-cached kernels
on rows that fit in registers, the long-row kernels (Welford forward, per-row backward,
chunked parameter sums) on longer rows; and the op on 'cuda' with the op on 'cpu'.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends import kernels
from gradflow.backends.fused import norm
from gradflow.errors import ShapeError

layer_norm = gf.nn.functional.layer_norm


def _torch_layer_norm(x, weight, bias, grad, eps):
    """(y, mean, rstd, grad_x, grad_weight, grad_bias) from torch over the last axis of 2-D x."""
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    tw = None if weight is None else torch.tensor(weight, requires_grad=True)
    tb = None if bias is None else torch.tensor(bias, requires_grad=True)
    y, mean, rstd = torch.native_layer_norm(tx, (x.shape[1],), tw, tb, eps)
    y.backward(torch.tensor(grad))
    return (
        y.detach().numpy(),
        mean.detach().numpy().reshape(-1),
        rstd.detach().numpy().reshape(-1),
        tx.grad.numpy(),
        None if tw is None else tw.grad.numpy(),
        None if tb is None else tb.grad.numpy(),
    )


def _operands(rows, cols, dtype, seed, loc=0.0, scale=1.0, affine=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc, scale, (rows, cols)).astype(dtype)
    weight = rng.normal(1.0, 0.5, cols).astype(dtype) if affine else None
    bias = rng.normal(0.0, 0.5, cols).astype(dtype) if affine else None
    grad = rng.normal(0.0, 1.0, (rows, cols)).astype(dtype)
    return x, weight, bias, grad


# -- the NumPy reference ---------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 9),
    with_weight=st.booleans(),
    with_bias=st.booleans(),
    eps=st.sampled_from([1e-5, 1e-3, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_reference_matches_torch_in_float64(rows, cols, with_weight, with_bias, eps, seed):
    x, weight, bias, grad = _operands(rows, cols, np.float64, seed, loc=2.0, scale=3.0)
    weight = weight if with_weight else None
    bias = bias if with_bias else None
    y, mean, rstd, grad_x, grad_weight, grad_bias = _torch_layer_norm(x, weight, bias, grad, eps)
    ours_y, ours_mean, ours_rstd = norm.numpy_layer_norm_forward(x, weight, bias, eps)
    np.testing.assert_allclose(ours_y, y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_mean, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_rstd, rstd, rtol=1e-10)
    assert ours_mean.dtype == ours_rstd.dtype == np.float64
    ours = norm.numpy_layer_norm_backward(grad, x, ours_mean, ours_rstd, weight, with_weight, with_bias)
    np.testing.assert_allclose(ours[0], grad_x, rtol=1e-8, atol=1e-10)
    if with_weight:
        np.testing.assert_allclose(ours[1], grad_weight, rtol=1e-9, atol=1e-10)
    else:
        assert ours[1] is None
    if with_bias:
        np.testing.assert_allclose(ours[2], grad_bias, rtol=1e-10, atol=1e-12)
    else:
        assert ours[2] is None


# A mean of 1e3 leaves float32 about 1e3 * 2**-24 * sqrt(D) of absolute error in x - mean, in torch too.
@pytest.mark.parametrize("loc, scale, atol", [(0.0, 1e-3, 1e-4), (0.0, 1e3, 1e-4), (1e3, 1.0, 4e-4)])
def test_reference_matches_torch_at_large_and_small_magnitudes_in_float32(loc, scale, atol):
    x, weight, bias, grad = _operands(4, 33, np.float32, seed=7, loc=loc, scale=scale)
    y, mean, rstd, grad_x, grad_weight, grad_bias = _torch_layer_norm(x, weight, bias, grad, 1e-5)
    ours_y, ours_mean, ours_rstd = norm.numpy_layer_norm_forward(x, weight, bias, 1e-5)
    assert ours_y.dtype == ours_mean.dtype == np.float32
    np.testing.assert_allclose(ours_y, y, rtol=1e-4, atol=atol)
    np.testing.assert_allclose(ours_rstd, rstd, rtol=1e-4)
    ours_x, ours_weight, ours_bias = norm.numpy_layer_norm_backward(grad, x, ours_mean, ours_rstd, weight, True, True)
    np.testing.assert_allclose(ours_x, grad_x, rtol=1e-3, atol=1e-3 * np.abs(grad_x).max())
    np.testing.assert_allclose(ours_weight, grad_weight, rtol=1e-4, atol=10 * atol)
    np.testing.assert_allclose(ours_bias, grad_bias, rtol=1e-5, atol=1e-5)


def test_reference_in_float16_accumulates_in_float32():
    x, weight, bias, grad = _operands(3, 200, np.float16, seed=3, loc=50.0, scale=2.0)
    y, mean, rstd = norm.numpy_layer_norm_forward(x, weight, bias, 1e-5)
    assert y.dtype == np.float16 and mean.dtype == rstd.dtype == np.float32
    wide = [None if a is None else a.astype(np.float32) for a in (x, weight, bias)]
    y32, mean32, rstd32 = norm.numpy_layer_norm_forward(*wide, 1e-5)
    np.testing.assert_allclose(y.astype(np.float32), y32, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(mean, mean32, rtol=1e-6)
    grad_x, grad_weight, grad_bias = norm.numpy_layer_norm_backward(grad, x, mean, rstd, weight, True, True)
    grad_x32, *_ = norm.numpy_layer_norm_backward(grad.astype(np.float32), wide[0], mean32, rstd32, wide[1], 1, 1)
    assert grad_x.dtype == np.float16 and grad_weight.dtype == grad_bias.dtype == np.float32
    np.testing.assert_allclose(grad_x.astype(np.float32), grad_x32, rtol=1e-2, atol=1e-2)


def test_reference_edge_shapes():
    # One feature: xhat is 0, y is the bias, grad_x is 0 (mean(gw) removes everything).
    x = np.array([[3.0], [-2.0]])
    y, mean, rstd = norm.numpy_layer_norm_forward(x, np.array([2.0]), np.array([0.5]), 1e-5)
    np.testing.assert_array_equal(y, [[0.5], [0.5]])
    np.testing.assert_array_equal(mean, [3.0, -2.0])
    grad_x, grad_weight, grad_bias = norm.numpy_layer_norm_backward(
        np.ones((2, 1)), x, mean, rstd, np.array([2.0]), True, True
    )
    np.testing.assert_array_equal(grad_x, 0.0)
    np.testing.assert_array_equal(grad_weight, [0.0])
    np.testing.assert_array_equal(grad_bias, [2.0])
    # No rows: empty output, zero parameter gradients.
    empty = np.zeros((0, 4), dtype=np.float32)
    y, mean, rstd = norm.numpy_layer_norm_forward(empty, None, None, 1e-5)
    assert y.shape == (0, 4) and mean.shape == rstd.shape == (0,)
    grad_x, grad_weight, grad_bias = norm.numpy_layer_norm_backward(empty, empty, mean, rstd, None, True, True)
    assert grad_x.shape == (0, 4)
    np.testing.assert_array_equal(grad_weight, np.zeros(4))
    np.testing.assert_array_equal(grad_bias, np.zeros(4))
    # Rows of length 0: mean 0 and rstd NaN, as torch.native_layer_norm gives.
    y, mean, rstd = norm.numpy_layer_norm_forward(np.zeros((2, 0)), None, None, 1e-5)
    assert y.shape == (2, 0)
    np.testing.assert_array_equal(mean, [0.0, 0.0])
    assert np.isnan(rstd).all()


# -- the wired op -----------------------------------------------------------------------------
def test_layer_norm_goes_through_the_backend_primitives(monkeypatch):
    backend = gf.device("cpu").backend
    calls = []
    for name in ("layer_norm_forward", "layer_norm_backward"):
        original = getattr(backend, name)
        monkeypatch.setattr(backend, name, lambda *args, _f=original, _n=name: calls.append(_n) or _f(*args))
    x = gf.randn(2, 3, 4, requires_grad=True)
    layer_norm(x, (3, 4), gf.ones(3, 4, requires_grad=True)).sum().backward()
    assert calls == ["layer_norm_forward", "layer_norm_backward"]


@settings(max_examples=10, deadline=None)
@given(
    lead=st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple),
    normalized=st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple),
    affine=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_matches_torch_over_trailing_dims(lead, normalized, affine, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, lead + normalized)
    weight = rng.normal(1.0, 0.5, normalized) if affine else None
    bias = rng.normal(0.0, 0.5, normalized) if affine else None
    grad = rng.normal(0.0, 1.0, x.shape)
    tensors = [None if a is None else torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    expected = torch.nn.functional.layer_norm(tensors[0], normalized, tensors[1], tensors[2], 1e-5)
    expected.backward(torch.tensor(grad))
    ours = [None if a is None else gf.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    out = layer_norm(ours[0], normalized, ours[1], ours[2], 1e-5)
    assert out.shape == x.shape and out.dtype is gf.float64
    out.backward(gf.tensor(grad))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(ours, tensors):
        if mine is not None:
            np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_gradcheck_and_gradgradcheck(affine):
    x = gf.randn(3, 2, 4, dtype=gf.float64, requires_grad=True)
    inputs = [x]
    if affine:
        inputs += [gf.randn(2, 4, dtype=gf.float64, requires_grad=True) for _ in ("weight", "bias")]

    def fn(*args):
        return layer_norm(args[0], (2, 4), *args[1:], eps=1e-3)

    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_layer_norm_keeps_dtype_and_errors():
    x = gf.randn(2, 5, dtype=gf.float16, requires_grad=True)
    weight = gf.ones(5, dtype=gf.float16, requires_grad=True)
    out = layer_norm(x, 5, weight)
    assert out.dtype is gf.float16
    (out * gf.randn(2, 5, dtype=gf.float16)).sum().backward()
    assert x.grad.dtype is weight.grad.dtype is gf.float16
    with pytest.raises(ShapeError, match="normalized_shape"):
        layer_norm(gf.randn(2, 5), (4,))
    with pytest.raises(ShapeError, match="weight"):
        layer_norm(gf.randn(2, 5), (5,), gf.ones(4))
    with pytest.raises(gf.errors.DtypeError, match="layer_norm"):
        layer_norm(gf.ones(2, 5, dtype=gf.int64), (5,))


def test_layer_norm_saved_input_modified_in_place_raises():
    x = gf.randn(2, 4, requires_grad=True)
    y = x * 1.0
    out = layer_norm(y, (4,))
    y.add_(1.0)
    with pytest.raises(gf.errors.InplaceError):
        out.sum().backward()


# -- the choice between the row-cached and the long-row kernels (no GPU needed) ---------------
VARIANTS = [
    ("float", 1),
    ("float", 4),
    ("gf_half", 1),
    ("gf_half", 8),
    ("double", 1),
    ("double", 2),
]


@pytest.mark.parametrize("suffix, width", VARIANTS)
def test_cached_configs_cover_the_row_and_name_listed_kernels(suffix, width):
    for packs_of, max_block, op in [
        (norm._forward_packs, norm._FORWARD_MAX_BLOCK, "forward_cached"),
        (norm._backward_packs, norm._BACKWARD_MAX_BLOCK, "backward_fused"),
    ]:
        held_packs = packs_of(suffix, width)
        assert held_packs and max(held_packs) * width <= 32
        largest = max_block * max(held_packs)
        for packs in [*range(1, 300), *range(300, largest + 50, 37), largest, largest + 1]:
            config = norm._cached_config(packs, held_packs, max_block)
            if packs > largest:
                assert config is None, (op, packs)
                continue
            block, held = config
            assert block % 32 == 0 and 32 <= block <= max_block, (op, packs, block)
            assert block * held >= packs > (block - 32) * held, (op, packs, block, held)
            assert f"gf_norm_{op}<{suffix}, {width}, {held}>" in norm.KERNELS


def test_cached_configs_for_the_benchmark_shapes():
    # float32 rows of 1024 and 4096 in 16-byte packs: 128 x 2 and 256 x 4 held packs.
    assert norm._cached_config(256, norm._forward_packs("float", 4), norm._FORWARD_MAX_BLOCK) == (128, 2)
    assert norm._cached_config(1024, norm._forward_packs("float", 4), norm._FORWARD_MAX_BLOCK) == (256, 4)
    assert norm._cached_config(1024, norm._backward_packs("float", 4), norm._BACKWARD_MAX_BLOCK) == (256, 4)
    # Longer rows than the fused backward holds go to the long-row kernels.
    assert norm._cached_config(2050, norm._backward_packs("float", 4), norm._BACKWARD_MAX_BLOCK) is None


# -- CUDA: the kernels against the reference -------------------------------------------------
TOLERANCE = {np.float32: 1e-4, np.float16: 1e-2, np.float64: 1e-10}

# The first row covers block and pack edges; the second the row-cached limits: 8192 float32 is
# the longest fused-backward row, 8200 and 4097 (unvectorised) are past it, and (300, 1024) /
# (33, 4096) give each block several rows of column sums. The third: long rows on several rows
# (the long-row forward for every dtype, and chunked parameter-gradient sums).
CUDA_SHAPES = [(1, 1), (3, 7), (5, 33), (2, 256), (7, 1000), (4, 1024), (1, 65537), (1, 1 << 20), (70000, 3)] + [
    (3, 8192),
    (2, 8200),
    (3, 4097),
    (300, 1024),
    (33, 4096),
    (40, 40000),
    (6, 40001),
]


def _poisoned(cupy, shape, dtype):
    return cupy.full(shape, np.nan, dtype=dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("rows, cols", CUDA_SHAPES)
def test_cuda_kernels_match_the_reference(dtype, rows, cols):
    import cupy

    x, weight, bias, grad = _operands(rows, cols, dtype, seed=rows + cols, loc=3.0, scale=2.0)
    reference_inputs = [a.astype(np.float32) if dtype == np.float16 else a for a in (x, weight, bias, grad)]
    y, mean, rstd = norm.numpy_layer_norm_forward(*reference_inputs[:3], 1e-5)
    ref_x, ref_weight, ref_bias = norm.numpy_layer_norm_backward(
        reference_inputs[3], reference_inputs[0], mean, rstd, reference_inputs[1], True, True
    )
    acc = norm.accumulation_dtype(dtype)
    tol = TOLERANCE[dtype]
    dx, dweight, dbias, dgrad = (cupy.asarray(a) for a in (x, weight, bias, grad))
    outs = [_poisoned(cupy, (rows, cols), dtype), _poisoned(cupy, rows, acc), _poisoned(cupy, rows, acc)]
    got = norm.cuda_layer_norm_forward(dx, dweight, dbias, 1e-5, *outs)
    assert all(g is o for g, o in zip(got, outs))
    np.testing.assert_allclose(cupy.asnumpy(got[0]).astype(np.float64), y, rtol=tol, atol=tol)
    np.testing.assert_allclose(cupy.asnumpy(got[1]), mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(cupy.asnumpy(got[2]), rstd, rtol=tol, atol=tol)
    backward_outs = [_poisoned(cupy, (rows, cols), dtype), _poisoned(cupy, cols, acc), _poisoned(cupy, cols, acc)]
    gx, gw, gb = norm.cuda_layer_norm_backward(dgrad, dx, got[1], got[2], dweight, True, True, *backward_outs)
    scale_x = max(1.0, float(np.abs(ref_x).max()))
    np.testing.assert_allclose(cupy.asnumpy(gx).astype(np.float64), ref_x, rtol=tol, atol=tol * scale_x)
    # Column sums over many rows: compare relative to the size of the sum.
    sum_tol = tol * max(1.0, np.sqrt(rows))
    np.testing.assert_allclose(cupy.asnumpy(gw), ref_weight, rtol=sum_tol, atol=sum_tol)
    np.testing.assert_allclose(cupy.asnumpy(gb), ref_bias, rtol=sum_tol, atol=sum_tol)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_cuda_kernels_without_affine_on_misaligned_and_non_contiguous_input(dtype):
    import cupy

    rows, cols = 6, 128  # a multiple of every vector width: only the alignment refuses 16-byte loads
    x, _, _, grad = _operands(rows, cols, dtype, seed=11, affine=False)
    y, mean, rstd = norm.numpy_layer_norm_forward(x.astype(np.float32), None, None, 1e-5)
    ref_x, _, ref_bias = norm.numpy_layer_norm_backward(
        grad.astype(np.float32), x.astype(np.float32), mean, rstd, None, False, True
    )
    tol = TOLERANCE[dtype]

    def misaligned(array):
        # Contiguous, but starting one element past a 16-byte boundary.
        buffer = cupy.empty(array.size + 1, dtype=array.dtype)[1:].reshape(array.shape)
        buffer[...] = cupy.asarray(array)
        assert buffer.flags.c_contiguous and buffer.data.ptr % 16
        return buffer

    dx, dgrad = misaligned(x), misaligned(grad)
    for x_view, grad_view in [(dx, dgrad), (cupy.asfortranarray(dx), cupy.asfortranarray(dgrad))]:
        got_y, got_mean, got_rstd = norm.cuda_layer_norm_forward(
            x_view, None, None, 1e-5, out=misaligned(np.full((rows, cols), np.nan, dtype=dtype))
        )
        np.testing.assert_allclose(cupy.asnumpy(got_y).astype(np.float32), y, rtol=tol, atol=tol)
        grad_x_out = misaligned(np.full((rows, cols), np.nan, dtype=dtype))
        gx, gw, gb = norm.cuda_layer_norm_backward(
            grad_view, x_view, got_mean, got_rstd, None, False, True, grad_input_out=grad_x_out
        )
        assert gw is None and gx is grad_x_out
        np.testing.assert_allclose(cupy.asnumpy(gx).astype(np.float32), ref_x, rtol=tol, atol=tol * 4)
        np.testing.assert_allclose(cupy.asnumpy(gb), ref_bias, rtol=tol, atol=tol)


@pytest.mark.cuda
def test_cuda_kernels_take_empty_inputs():
    import cupy

    y, mean, rstd = norm.cuda_layer_norm_forward(cupy.zeros((0, 5), cupy.float32), None, None, 1e-5)
    assert y.shape == (0, 5) and mean.shape == (0,)
    gx, gw, gb = norm.cuda_layer_norm_backward(
        cupy.zeros((0, 5), cupy.float32), cupy.zeros((0, 5), cupy.float32), mean, rstd, None, True, True,
        weight_grad_out=_poisoned(cupy, 5, np.float32), bias_grad_out=_poisoned(cupy, 5, np.float32),
    )  # fmt: skip
    np.testing.assert_array_equal(cupy.asnumpy(gw), 0.0)
    np.testing.assert_array_equal(cupy.asnumpy(gb), 0.0)
    y, mean, rstd = norm.cuda_layer_norm_forward(cupy.zeros((3, 0), cupy.float32), None, None, 1e-5)
    np.testing.assert_array_equal(cupy.asnumpy(mean), 0.0)
    assert np.isnan(cupy.asnumpy(rstd)).all()


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [gf.float32, gf.float64])
def test_layer_norm_on_cuda_matches_cpu(dtype):
    results = {}
    for device in ("cpu", "cuda"):
        gf.manual_seed(0)
        x = gf.randn(4, 3, 40, dtype=dtype).to(device).requires_grad_()
        weight = gf.randn(3, 40, dtype=dtype).to(device).requires_grad_()
        bias = gf.randn(3, 40, dtype=dtype).to(device).requires_grad_()
        out = layer_norm(x, (3, 40), weight, bias)
        (out * out).sum().backward()
        results[device] = [t.numpy(force=True) for t in (out, x.grad, weight.grad, bias.grad)]
    tol = 1e-4 if dtype is gf.float32 else 1e-10
    for cpu_value, cuda_value in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(cuda_value, cpu_value, rtol=tol, atol=tol)


BACKWARD_FLAGS = [(True, False, True), (False, True, False), (False, False, True)]


@pytest.mark.cuda
@pytest.mark.parametrize("need_weight, need_bias, affine", BACKWARD_FLAGS)
def test_cuda_backward_flags(need_weight, need_bias, affine):
    import cupy

    rows, cols = 257, 1024
    x, weight, bias, grad = _operands(rows, cols, np.float32, seed=5, affine=affine)
    y, mean, rstd = norm.numpy_layer_norm_forward(x, weight, bias, 1e-5)
    ref = norm.numpy_layer_norm_backward(grad, x, mean, rstd, weight, need_weight, need_bias)
    outs = [_poisoned(cupy, (rows, cols), np.float32), _poisoned(cupy, cols, np.float32)]
    outs.append(_poisoned(cupy, cols, np.float32))
    dweight = None if weight is None else cupy.asarray(weight)
    got = norm.cuda_layer_norm_backward(
        cupy.asarray(grad), cupy.asarray(x), cupy.asarray(mean), cupy.asarray(rstd), dweight, need_weight, need_bias,
        *outs,
    )  # fmt: skip
    np.testing.assert_allclose(cupy.asnumpy(got[0]), ref[0], rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref[0]).max()))
    for result, expected, out in zip(got[1:], ref[1:], outs[1:]):
        if expected is None:
            assert result is None
            assert np.isnan(cupy.asnumpy(out)).all()  # an unrequested gradient is never written
        else:
            np.testing.assert_allclose(cupy.asnumpy(result), expected, rtol=2e-3, atol=2e-3)


def _picks(dtype, cols: int) -> tuple[bool, bool]:
    """Whether a row of ``cols`` (16-byte aligned) takes the row-cached forward and the fused backward."""
    suffix = kernels.dtype_suffix(np.dtype(dtype))
    width = norm._VECTOR_WIDTHS[suffix] if cols % norm._VECTOR_WIDTHS[suffix] == 0 else 1
    forward = norm._cached_config(cols // width, norm._forward_packs(suffix, width), norm._FORWARD_MAX_BLOCK)
    backward = norm._cached_config(cols // width, norm._backward_packs(suffix, width), norm._BACKWARD_MAX_BLOCK)
    return forward is not None, backward is not None


def test_every_kernel_is_reached_by_some_test_shape():
    # The cuda tests above cover each kernel: the row-cached pair and both long-row paths.
    picks = {(cached_forward, cached_backward) for dtype in (np.float32, np.float16, np.float64)
             for _, cols in CUDA_SHAPES for cached_forward, cached_backward in [_picks(dtype, cols)]}  # fmt: skip
    assert {(True, True), (True, False), (False, False)} <= picks
    assert _picks(np.float32, 4096) == (True, True)
    assert _picks(np.float32, 8200) == (True, False)
    assert _picks(np.float32, 40000) == (False, False)


@pytest.mark.cuda
@pytest.mark.parametrize(
    "dtype, cols", [(np.float32, 1024), (np.float16, 4096), (np.float64, 9000), (np.float32, 8200), (np.float32, 40000)]
)
def test_cuda_launchers_pick_the_kernels_by_row_length(dtype, cols, monkeypatch):
    import cupy

    names = []
    monkeypatch.setattr(kernels, "launch_hook", lambda family, name: names.append(name))
    x = cupy.asarray(_operands(3, cols, dtype, seed=1)[0])
    y, mean, rstd = norm.cuda_layer_norm_forward(x, None, None, 1e-5)
    norm.cuda_layer_norm_backward(x, x, mean, rstd, None, True, True)
    cached_forward, cached_backward = _picks(dtype, cols)
    assert names[0].startswith("gf_norm_forward_cached<" if cached_forward else "gf_norm_forward<")
    if cached_backward:
        assert names[1].startswith("gf_norm_backward_fused<")
        assert names[2:] == ["gf_norm_column_sum<float>"] * 2
    else:
        assert names[1].startswith("gf_norm_backward<") and names[2].startswith("gf_norm_param_grad<")
