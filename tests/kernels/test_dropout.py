"""Dropout: the Philox reference, the CPU primitive, the wired op, and (on a GPU) the kernel.

The CPU tests check ``philox4x32_10`` against Random123's known answers, the documented
counter layout of ``philox_reference``, that ``numpy_dropout_forward`` keeps the CPU's
mask (``backend.rand < 1 - p``) and scaling, and the ``dropout`` op's gradients. The
``cuda`` tests check the kernel's masks EXACTLY against ``dropout_mask_reference``, its
output against ``x * mask / (1 - p)`` with the outputs filled with NaN before the launch,
and the op's seeding and RNG-state replay on 'cuda'.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends.fused import dropout as fused

dropout = gf.nn.functional.dropout

# Random123's tests/kat_vectors for philox4x32_10: (counter, key, output).
PHILOX_KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


# -- the Philox reference -------------------------------------------------------------------
@pytest.mark.parametrize("counter, key, expected", PHILOX_KNOWN_ANSWERS)
def test_philox_matches_random123_known_answers(counter, key, expected):
    out = fused.philox4x32_10(np.array([counter], dtype=np.uint32), key)
    assert out.dtype == np.uint32
    assert tuple(int(word) for word in out[0]) == expected


def test_philox_reference_follows_the_documented_counter_layout():
    seed, offset = 0x0123456789ABCDEF, (7 << 32) + 5
    words = fused.philox_words(seed, offset, 4 * 3)
    key = (seed & 0xFFFFFFFF, seed >> 32)
    for group in range(3):
        expected = fused.philox4x32_10(np.array([[group, 0, 5, 7]], dtype=np.uint32), key)[0]
        np.testing.assert_array_equal(words[4 * group : 4 * group + 4], expected)
    # Element groups past 2**32 carry into the counter's second word.
    far = fused.philox4x32_10(np.array([[1, 1, 5, 7]], dtype=np.uint32), key)[0]
    assert not np.array_equal(far, words[4:8])


def test_philox_uniforms_are_the_top_24_bits_and_prefixes_agree():
    uniforms = fused.philox_reference(3, 0, 10)
    words = fused.philox_words(3, 0, 10)
    np.testing.assert_array_equal(uniforms, (words >> 8) / 2.0**24)
    assert uniforms.dtype == np.float64 and (uniforms >= 0).all() and (uniforms < 1).all()
    # n not a multiple of 4 is a prefix of the longer stream; other offsets and seeds differ.
    np.testing.assert_array_equal(fused.philox_reference(3, 0, 7), uniforms[:7])
    assert not np.array_equal(fused.philox_reference(3, 1, 10), uniforms)
    assert not np.array_equal(fused.philox_reference(4, 0, 10), uniforms)
    # Seeds are taken modulo 2**64 (a negative seed is its two's complement).
    np.testing.assert_array_equal(fused.philox_reference(-1, 0, 5), fused.philox_reference(2**64 - 1, 0, 5))


def test_philox_uniforms_look_uniform():
    uniforms = fused.philox_reference(12345, 2, 40_000)
    assert abs(uniforms.mean() - 0.5) < 0.01
    counts, _ = np.histogram(uniforms, bins=10, range=(0.0, 1.0))
    assert counts.min() > 3_600 and counts.max() < 4_400


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.1, 0.5, 1 - 2**-24, 0.75, 1.0])
def test_keep_threshold_is_the_exact_integer_form_of_uniform_below_one_minus_p(p):
    threshold = fused.keep_threshold(p)
    top_bits = np.arange(0, 2**24, 997, dtype=np.int64)
    top_bits = np.concatenate([top_bits, [threshold - 1, threshold, 2**24 - 1]])
    top_bits = top_bits[(top_bits >= 0) & (top_bits < 2**24)]
    np.testing.assert_array_equal(top_bits < threshold, top_bits * 2.0**-24 < 1.0 - p)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(0, 50), p=st.floats(0.0, 1.0), seed=st.integers(-(2**63), 2**64), offset=st.integers(0, 2**40))
def test_mask_reference_keeps_uniforms_below_one_minus_p(n, p, seed, offset):
    mask = fused.dropout_mask_reference(seed, offset, (n,), p)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, fused.philox_reference(seed, offset, n) < 1.0 - p)


# -- the CPU primitive ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_numpy_primitive_keeps_the_backend_generator_mask(dtype, p):
    backend = gf.device("cpu").backend
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(dtype)
    state = backend.get_rng_state()
    out, mask = fused.numpy_dropout_forward(backend, x, p)
    backend.set_rng_state(state)
    keep = backend.rand(x.shape, x.dtype) < (1.0 - p)
    assert mask.dtype == np.uint8 and out.dtype == x.dtype
    np.testing.assert_array_equal(mask, keep)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    np.testing.assert_array_equal(out, x * (keep.astype(dtype) * dtype(scale)))
    if p == 1.0:
        np.testing.assert_array_equal(out, 0.0)


def test_numpy_primitive_drops_nan_to_nan_like_torch():
    out, mask = fused.numpy_dropout_forward(gf.device("cpu").backend, np.full(8, np.inf), 1.0)
    assert np.isnan(out).all() and not mask.any()


# -- the wired op -----------------------------------------------------------------------------
def test_dropout_goes_through_the_backend_primitive(monkeypatch):
    backend = gf.device("cpu").backend
    calls = []
    original = backend.dropout_forward
    monkeypatch.setattr(backend, "dropout_forward", lambda x, p: calls.append(p) or original(x, p))
    dropout(gf.ones(3, 4), 0.25)
    assert calls == [0.25]


def test_dropout_forward_and_backward_use_one_scaled_mask(device):
    x = gf.randn(20, 30, device=device, requires_grad=True)
    out = dropout(x, 0.4)
    grad = gf.randn(20, 30, device=device)
    out.backward(grad)
    kept = out.numpy(force=True) != 0
    assert 0.4 < kept.mean() < 0.8
    expected_grad = np.where(kept, grad.numpy(force=True) / np.float32(0.6), 0.0)
    np.testing.assert_allclose(x.grad.numpy(force=True), expected_grad, rtol=1e-6)
    np.testing.assert_allclose(out.numpy(force=True), np.where(kept, x.numpy(force=True) / np.float32(0.6), 0), 1e-6)


def test_dropout_same_seed_same_mask_and_rng_state_replays(device):
    x = gf.ones(64, device=device)
    gf.manual_seed(9)
    first = dropout(x, 0.5).numpy(force=True)
    gf.manual_seed(9)
    np.testing.assert_array_equal(dropout(x, 0.5).numpy(force=True), first)
    state = device.backend.get_rng_state()
    second = dropout(x, 0.5).numpy(force=True)
    assert not np.array_equal(second, first)
    device.backend.set_rng_state(state)
    np.testing.assert_array_equal(dropout(x, 0.5).numpy(force=True), second)


def _expected_mask(device, seed: int, shape, p: float) -> np.ndarray:
    """The keep-mask ``dropout`` draws on ``device`` right after ``gf.manual_seed(seed)``."""
    gf.manual_seed(seed)
    backend = device.backend
    if device.type == "cpu":
        return np.asarray(backend.rand(shape, np.dtype(np.float64))) < 1.0 - p
    state_seed, draws = backend.get_rng_state()
    return fused.dropout_mask_reference(state_seed, draws, shape, p).astype(bool)


def test_dropout_with_a_fixed_mask_matches_its_reference_and_finite_differences(device):
    # A seed per sample, set before every call, fixes the mask for forward and for each finite
    # difference; the backward (grad * mask * scale) is then checked at first and second order.
    @settings(max_examples=6, deadline=None)
    @given(
        shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
        p=st.sampled_from([0.2, 0.5, 0.8]),
        seed=st.integers(0, 2**31),
    )
    def check(shape, p, seed):
        x = gf.tensor(np.random.default_rng(seed).uniform(0.5, 2.0, shape), device=device, requires_grad=True)
        kept = _expected_mask(device, seed, shape, p)

        def fn(value):
            gf.manual_seed(seed)
            return dropout(value, p) * value  # curved in x, so second derivatives see the mask too

        out = fn(x)
        expected = np.where(kept, x.numpy(force=True) ** 2 / (1.0 - p), 0.0)
        np.testing.assert_allclose(out.numpy(force=True), expected, rtol=1e-12)
        assert gradcheck(fn, [x])
        assert gradgradcheck(fn, [x])

    check()


def test_dropout_edge_probabilities_and_modes():
    x = gf.randn(3, 4, requires_grad=True)
    assert dropout(x, 0.0) is x
    assert dropout(x, 0.7, training=False) is x
    zeros = dropout(x, 1.0)
    np.testing.assert_array_equal(zeros.numpy(force=True), 0.0)
    zeros.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout(x, 1.5)
    y = gf.ones(10)
    out = dropout(y, 0.5, inplace=True)
    assert out is y and set(np.unique(y.numpy())) <= {0.0, 2.0}


# -- CUDA: the kernel against the reference --------------------------------------------------
CUDA_SIZES = [1, 3, 4, 5, 255, 256, 1023, 4 * 1000 + 3, 1 << 20]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("n", CUDA_SIZES)
def test_cuda_kernel_masks_equal_the_philox_reference(dtype, n):
    import cupy

    rng = np.random.default_rng(n)
    x = (rng.normal(size=n) * rng.choice([1e-4, 1.0, 3e2], size=n)).astype(dtype)
    for seed, offset, p in [(0, 0, 0.5), (2**40 + 17, 3, 0.1), (-5, 2**33 + 1, 0.9), (7, 1, 0.0), (7, 2, 1.0)]:
        out = cupy.full(n, np.nan, dtype=dtype)
        mask = cupy.full(n, 7, dtype=cupy.uint8)
        got_out, got_mask = fused.cuda_dropout_forward(cupy.asarray(x), p, seed, offset, out=out, mask_out=mask)
        assert got_out is out and got_mask is mask
        expected_mask = fused.dropout_mask_reference(seed, offset, (n,), p)
        np.testing.assert_array_equal(cupy.asnumpy(mask), expected_mask)
        scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
        expected = x.astype(np.float64) * expected_mask * scale
        # float16: one rounding of x * scale, and products in the subnormal range (spacing 2**-24)
        # are off by up to half that spacing, a large relative error at that size.
        tol, floor = (1e-3, 2.0**-24) if dtype == np.float16 else (1e-6, 0.0)
        np.testing.assert_allclose(cupy.asnumpy(out).astype(np.float64), expected, rtol=tol, atol=floor)


@pytest.mark.cuda
def test_cuda_kernel_on_misaligned_and_multidimensional_input():
    import cupy

    base = cupy.arange(4 * 37, dtype=cupy.float32).reshape(4, 37) + 1
    x = base[:, 1:]  # rows of 36, not contiguous: the launcher copies it; then a misaligned flat view
    out, mask = fused.cuda_dropout_forward(x, 0.5, 11, 4)
    assert out.shape == mask.shape == (4, 36)
    expected_mask = fused.dropout_mask_reference(11, 4, (4, 36), 0.5)
    np.testing.assert_array_equal(cupy.asnumpy(mask), expected_mask)
    np.testing.assert_allclose(cupy.asnumpy(out), cupy.asnumpy(x) * expected_mask * 2.0, rtol=1e-6)
    flat = (cupy.arange(1001, dtype=cupy.float32) + 1)[1:]  # 4-byte offset: no 16-byte loads
    out, mask = fused.cuda_dropout_forward(flat, 0.25, 3, 0, out=cupy.full(1000, np.nan, cupy.float32))
    expected_mask = fused.dropout_mask_reference(3, 0, (1000,), 0.25)
    np.testing.assert_array_equal(cupy.asnumpy(mask), expected_mask)
    np.testing.assert_allclose(cupy.asnumpy(out), cupy.asnumpy(flat) * expected_mask / 0.75, rtol=1e-6)
    empty_out, empty_mask = fused.cuda_dropout_forward(cupy.zeros((0, 3), cupy.float32), 0.5, 0, 0)
    assert empty_out.shape == empty_mask.shape == (0, 3)


@pytest.mark.cuda
def test_dropout_op_on_cuda_uses_the_backend_seed_and_draw_count():
    device = gf.device("cuda")
    gf.manual_seed(21)
    seed, draws = device.backend.get_rng_state()
    x = gf.ones(5, 7, device=device, requires_grad=True)
    out = dropout(x, 0.3)
    expected_mask = fused.dropout_mask_reference(seed, draws, (5, 7), 0.3)
    np.testing.assert_array_equal(out.numpy(force=True) != 0, expected_mask.astype(bool))
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(force=True), expected_mask / np.float32(0.7), rtol=1e-6)
    assert device.backend.get_rng_state() == (seed, draws + 1)
