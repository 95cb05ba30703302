"""Behaviour of the reductions beyond the op table: zeros, ties, stability, dtypes, errors, edge shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.errors import DtypeError, GraphError, IndexOutOfRangeError, ShapeError


def _t(data, device="cpu", dtype=gf.float64, requires_grad=True):
    return gf.tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _np(tensor):
    return tensor.detach().cpu().numpy()


def _grad(output, x):
    (gradient,) = gf.autograd.grad(output, x)
    return _np(gradient)


def _assert_hessian_matches_finite_differences(fn, data, device="cpu", eps=1e-6):
    """The Hessian of sum(w * fn(x)) from double backward against central differences of the gradient.

    Checked here directly (not only with gradgradcheck) because prod's second derivative at
    zeros is the hard case this file exists for.
    """
    data = np.asarray(data, dtype=np.float64)
    weights = np.random.default_rng(0).standard_normal(fn(_t(data, device, requires_grad=False)).shape)

    def gradient(x, create_graph):
        out = (fn(x) * _t(weights, device, requires_grad=False)).sum()
        return gf.autograd.grad(out, x, create_graph=create_graph)[0]

    x = _t(data, device)
    first = gradient(x, True).reshape(-1)
    analytic = np.zeros((data.size, data.size))
    for row in range(data.size):
        (second,) = gf.autograd.grad(first[row], x, retain_graph=True, allow_unused=True)
        if second is not None:
            analytic[row] = _np(second).ravel()
    numeric = np.zeros_like(analytic)
    for column in range(data.size):
        step = np.zeros(data.size)
        step[column] = eps
        plus = _np(gradient(_t(data + step.reshape(data.shape), device), False)).ravel()
        minus = _np(gradient(_t(data - step.reshape(data.shape), device), False)).ravel()
        numeric[:, column] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)


# -- prod at zeros -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [[2.0, 0.0, 3.0, -1.5], [0.0, 2.0, 0.0, 3.0], [0.0, 0.0, 0.0]])
def test_prod_gradient_with_zeros_matches_finite_differences_to_second_order(device, data):
    x = _t(data, device)
    assert gradcheck(lambda t: t.prod(), (x,))
    assert gradgradcheck(lambda t: t.prod(), (x,))
    _assert_hessian_matches_finite_differences(lambda t: t.prod(), data, device)


def test_prod_gradient_with_one_zero_is_the_product_of_the_others():
    x = _t([2.0, 0.0, 3.0, -1.5])
    np.testing.assert_allclose(_grad(x.prod(), x), [0.0, -9.0, 0.0, 0.0])


def test_prod_second_derivative_with_two_zeros_pairs_the_zeros():
    x = _t([0.0, 2.0, 0.0, 3.0])
    (first,) = gf.autograd.grad(x.prod(), x, create_graph=True)
    np.testing.assert_allclose(_np(first), [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(_grad(first.sum(), x), [6.0, 0.0, 6.0, 0.0])  # what PyTorch gives


def test_prod_along_dim_with_zeros_in_some_rows(device):
    data = [[0.0, 2.0, 3.0], [1.0, 4.0, 0.5], [0.0, 0.0, 5.0]]
    assert gradcheck(lambda t: t.prod(1, keepdim=True), (_t(data, device),))
    _assert_hessian_matches_finite_differences(lambda t: t.prod(0), data, device)
    _assert_hessian_matches_finite_differences(lambda t: t.prod(1, keepdim=True), data, device)


@pytest.mark.parametrize("name", ["logsumexp", "norm", "var", "std"])
def test_statistics_second_derivatives_match_finite_differences(name):
    data = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    call = {
        "logsumexp": lambda t: gf.logsumexp(t, 1),
        "norm": lambda t: t.norm(3.0, 0),
        "var": lambda t: t.var(1, correction=0),
        "std": lambda t: t.std((0, 1)),
    }[name]
    _assert_hessian_matches_finite_differences(call, data)


# -- max / min -----------------------------------------------------------------------------------------


def test_max_with_dim_returns_values_and_int64_indices_namedtuple(device):
    x = _t([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], device)
    result = gf.max(x, 1)
    values, indices = result
    assert result._fields == ("values", "indices")
    assert result.values is values and result.indices is indices
    assert indices.dtype is gf.int64 and not indices.requires_grad
    assert values.requires_grad
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.min(dim=0, keepdim=True).indices.tolist() == [[0, 1, 0]]


def test_max_with_dim_sends_the_gradient_to_the_returned_index_only(device):
    x = _t([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]], device)
    values, indices = x.max(1)
    gradient = _grad((values * _t([2.0, 3.0], device, requires_grad=False)).sum(), x)
    expected = np.zeros((2, 3))
    expected[[0, 1], _np(indices)] = [2.0, 3.0]
    np.testing.assert_array_equal(gradient, expected)


def test_max_without_dim_splits_the_gradient_evenly_among_ties(device):
    x = _t([1.0, 3.0, 3.0, 3.0, -2.0], device)
    out = gf.max(x)
    assert out.shape == ()
    np.testing.assert_allclose(_grad(out, x), [0.0, 1 / 3, 1 / 3, 1 / 3, 0.0])


def test_amax_and_amin_split_ties_per_slice(device):
    x = _t([[2.0, 2.0, 1.0], [0.0, 4.0, 0.0]], device)
    np.testing.assert_allclose(_grad(x.amax(1).sum(), x), [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(_grad(x.amin(dim=(0, 1)), x), [[0.0, 0.0, 0.0], [0.5, 0.0, 0.5]])


def test_max_with_a_tensor_is_the_elementwise_maximum():
    a, b = _t([1.0, 5.0]), _t([3.0, 2.0])
    assert gf.max(a, b).tolist() == [3.0, 5.0]
    assert a.min(b).tolist() == [1.0, 2.0]


def test_max_and_argmax_work_on_integers_and_keep_the_dtype():
    x = gf.tensor([[3, 9, 1], [4, 4, 8]], dtype=gf.int32)
    assert gf.max(x).dtype is gf.int32 and gf.max(x).item() == 9
    assert x.amax(0).tolist() == [4, 9, 8]
    values, indices = x.min(1)
    assert values.dtype is gf.int32 and indices.dtype is gf.int64
    assert x.argmax().dtype is gf.int64 and x.argmax().item() == 1
    assert x.argmin(dim=1, keepdim=True).tolist() == [[2], [0]]


def test_argmax_never_requires_grad():
    x = _t([[1.0, 2.0], [3.0, 0.0]])
    assert not x.argmax().requires_grad and not x.argmin(0).requires_grad


# -- logsumexp -------------------------------------------------------------------------------------------


def test_logsumexp_is_finite_for_float32_inputs_of_plus_minus_1e4():
    x = gf.tensor([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4]], dtype=gf.float32, requires_grad=True)
    out = gf.logsumexp(x, 1)
    assert out.dtype is gf.float32
    expected = [1e4 + math.log1p(math.exp(-1.0)), -1e4 + math.log(3.0)]
    np.testing.assert_allclose(_np(out), expected, rtol=1e-6)
    gradient = _grad(out.sum(), x)
    assert np.isfinite(gradient).all()
    np.testing.assert_allclose(gradient.sum(axis=1), [1.0, 1.0], rtol=1e-5)


def test_logsumexp_of_a_row_of_all_minus_inf_is_minus_inf_without_nan(device):
    x = gf.tensor([[-math.inf, -math.inf], [0.0, -math.inf], [math.inf, 1.0]], device=device)
    out = _np(gf.logsumexp(x, 1))
    assert out[0] == -math.inf and out[1] == 0.0 and out[2] == math.inf


def test_logsumexp_over_nothing_is_minus_inf():
    assert _np(gf.logsumexp(gf.zeros(2, 0), 1)).tolist() == [-math.inf, -math.inf]


# -- norm ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", ["fro", 2, 3.0, 1.5])
def test_norm_gradient_at_an_all_zero_input_is_zero_not_nan(device, p):
    x = _t([[0.0, 0.0], [0.0, 0.0]], device)
    np.testing.assert_array_equal(_grad(gf.norm(x, p), x), np.zeros((2, 2)))


def test_norm_gradient_is_zero_at_zero_entries_for_p_below_one():
    x = _t([0.0, 1.0, 2.0])
    # PyTorch gives [0, 2.4142, 1.7071] for p=0.5.
    np.testing.assert_allclose(_grad(x.norm(0.5), x), [0.0, 1 + math.sqrt(2), (1 + math.sqrt(2)) / math.sqrt(2)])


def test_norm_inf_splits_ties_of_the_absolute_value():
    x = _t([-3.0, 3.0, 1.0])
    assert x.norm(math.inf).item() == 3.0
    np.testing.assert_allclose(_grad(x.norm(math.inf), x), [-0.5, 0.5, 0.0])


def test_norm_rejects_matrix_norm_names_and_negative_p():
    with pytest.raises(ValueError, match="nuc"):
        gf.norm(gf.ones(2, 2), "nuc")
    with pytest.raises(ValueError, match="positive"):
        gf.norm(gf.ones(2), -1.0)


# -- var / std -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("correction", [0, 1, 2])
def test_var_divides_by_n_minus_correction(correction):
    data = np.array([[1.0, 2.0, 4.0, 8.0], [0.5, 0.5, 1.0, -3.0]])
    x = _t(data)
    np.testing.assert_allclose(_np(x.var(1, correction=correction)), np.var(data, axis=1, ddof=correction))
    np.testing.assert_allclose(_np(gf.std(x, correction=correction)), np.std(data, ddof=correction))


def test_var_accepts_the_legacy_unbiased_flag_by_keyword_and_position():
    data = np.array([[1.0, 2.0, 4.0], [3.0, 0.0, 1.0]])
    x = _t(data)
    np.testing.assert_allclose(_np(x.var(unbiased=False)), np.var(data))
    np.testing.assert_allclose(_np(x.var(True)), np.var(data, ddof=1))  # var(x, unbiased)
    np.testing.assert_allclose(_np(x.std(1, False, True)), np.std(data, axis=1, ddof=0, keepdims=True))
    with pytest.raises(TypeError, match="either unbiased or correction"):
        x.var(unbiased=True, correction=1)


def test_var_of_one_element_with_correction_one_is_nan_like_pytorch():
    assert math.isnan(gf.tensor([2.0]).var().item())


def test_var_and_std_of_integers_raise_a_dtype_error_that_says_how_to_fix():
    with pytest.raises(DtypeError, match=r"var: expected a floating point tensor.*\.float\(\)"):
        gf.tensor([1, 2, 3]).var()
    with pytest.raises(DtypeError, match=r"std: .*int64"):
        gf.std(gf.tensor([1, 2, 3]))


def test_mean_of_integers_raises_a_dtype_error_that_says_how_to_fix():
    with pytest.raises(DtypeError, match=r"mean: .*floating point, got int64.*\.float\(\)"):
        gf.tensor([1, 2, 3]).mean()
    assert gf.tensor([1, 2]).mean(dtype=gf.float64).item() == 1.5


# -- dtypes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sum", "prod"])
def test_sum_and_prod_of_integers_and_bools_give_int64(name):
    ints = gf.tensor([1, 2, 3], dtype=gf.int32)
    assert getattr(ints, name)().dtype is gf.int64
    assert getattr(gf.tensor([True, True]), name)().dtype is gf.int64
    assert getattr(ints, name)(dtype=gf.float64).dtype is gf.float64


def test_cumsum_and_cumprod_of_integers_give_int64():
    x = gf.tensor([1, 2, 3], dtype=gf.int32)
    assert x.cumsum(0).dtype is gf.int64 and x.cumsum(0).tolist() == [1, 3, 6]
    assert x.cumprod(0).dtype is gf.int64 and x.cumprod(0).tolist() == [1, 2, 6]
    assert gf.cumsum(gf.tensor([1.0, 2.0]), 0, dtype=gf.float64).dtype is gf.float64


def test_all_and_any_return_bool_tensors():
    x = gf.tensor([[1.0, 0.0], [2.0, 3.0]])
    assert x.all().dtype is gf.bool and not x.all().item()
    assert x.all(1).tolist() == [False, True]
    assert x.any(0, keepdim=True).tolist() == [[True, True]]
    assert gf.equal(x, x.clone())


# -- cumulative ops ----------------------------------------------------------------------------------------


def test_cumprod_gradient_with_a_zero_matches_pytorch():
    x = _t([1.0, 0.0, 3.0, 4.0])
    np.testing.assert_allclose(_grad(x.cumprod(0).sum(), x), [1.0, 16.0, 0.0, 0.0])
    assert gradcheck(lambda t: t.cumprod(1), (_t([[0.0, 2.0, 0.0], [2.0, -1.0, 0.0]]),))


def test_cumprod_second_derivative_at_zeros_raises_instead_of_being_wrong():
    x = _t([1.0, 0.0, 3.0])
    (first,) = gf.autograd.grad(x.cumprod(0).sum(), x, create_graph=True)
    with pytest.raises(GraphError, match="cumprod"):
        gf.autograd.grad(first.sum(), x)


def test_cumsum_gradient_is_the_reverse_running_sum():
    x = _t([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        _grad((x.cumsum(0) * _t([1.0, 10.0, 100.0], requires_grad=False)).sum(), x), [111.0, 110.0, 100.0]
    )


# -- bad dims, empty and 0-d inputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.sum(2),
        lambda x: x.mean((0, -3)),
        lambda x: x.prod(5),
        lambda x: x.max(2),
        lambda x: x.amin(-3),
        lambda x: x.argmax(2),
        lambda x: x.cumsum(2),
        lambda x: x.var(2),
        lambda x: gf.logsumexp(x, 3),
        lambda x: x.norm(dim=2),
        lambda x: x.all(2),
    ],
)
def test_a_dim_outside_the_tensor_raises_index_out_of_range(call):
    with pytest.raises(IndexOutOfRangeError, match=r"dimension out of range \(expected to be in range of \[-2, 1\]"):
        call(gf.ones(2, 3))


def test_reductions_of_empty_tensors_give_their_identity():
    empty = gf.zeros(0, 3)
    assert empty.sum().item() == 0 and empty.prod().item() == 1
    assert empty.sum(0).tolist() == [0.0, 0.0, 0.0]
    assert math.isnan(empty.mean().item())
    assert empty.all().item() and not empty.any().item()
    assert empty.amax(1).shape == (0,)
    assert empty.cumsum(0).shape == (0, 3)


def test_max_of_an_empty_tensor_raises_like_pytorch():
    with pytest.raises(ShapeError, match="max: expected reduction dim to be specified"):
        gf.max(gf.zeros(0))
    with pytest.raises(IndexOutOfRangeError, match="max: expected reduction dim 0 to have non-zero size"):
        gf.max(gf.zeros(0, 3), 0)
    with pytest.raises(IndexOutOfRangeError, match="amax"):
        gf.amax(gf.zeros(0, 3), 0)
    with pytest.raises(ShapeError, match="argmax"):
        gf.argmax(gf.zeros(0))


def test_zero_dimensional_inputs_reduce_to_themselves():
    x = _t(3.0)
    for out in (
        x.sum(),
        x.sum(0),
        x.prod(0),
        x.amax(),
        x.max(),
        x.max(0).values,
        x.var(0, correction=0) + 3.0,
        x.cumsum(0),
        x.cumprod(-1),
        gf.logsumexp(x, 0),
    ):
        assert out.shape == () and out.item() == 3.0
    assert x.max(0).indices.item() == 0 and x.argmax(0).item() == 0 and x.argmin().item() == 0
    assert _grad(x.prod(), x) == 1.0 and _grad(x.max(0).values, x) == 1.0


def test_an_empty_dim_tuple_reduces_every_dimension():
    x = gf.ones(2, 3)
    assert x.sum(()).item() == 6.0 and x.amax(()).shape == () and x.mean([]).item() == 1.0


def test_keepdim_without_dim_keeps_every_dimension_as_one():
    x = gf.ones(2, 3)
    assert x.sum(keepdim=True).shape == (1, 1) and x.argmax(keepdim=True).shape == (1, 1)


# -- parity with PyTorch (skipped where torch is not installed) ----------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


PARITY = {
    "sum_dim": lambda m, x: m.sum(x, 1, keepdim=True),
    "mean_tuple": lambda m, x: m.mean(x, (0, 2)),
    "prod_dim": lambda m, x: m.prod(x, 2),
    "max_dim": lambda m, x: m.max(x, 1)[0],
    "min_all": lambda m, x: m.min(x),
    "amax_tuple": lambda m, x: m.amax(x, (1, 2)),
    "var_correction_2": lambda m, x: m.var(x, 2, correction=2),
    "std_unbiased_false": lambda m, x: m.std(x, 0, False, True),
    "logsumexp": lambda m, x: m.logsumexp(x, (0, 1)),
    "norm_fro": lambda m, x: m.norm(x),
    "norm_1_dim": lambda m, x: m.norm(x, 1, 1),
    "norm_3_dim": lambda m, x: m.norm(x, 3, (0, 2), True),
    "norm_inf": lambda m, x: m.norm(x, math.inf, 2),
    "cumsum": lambda m, x: m.cumsum(x, 1),
    "cumprod": lambda m, x: m.cumprod(x, 2),
}


@pytest.mark.parametrize("name", sorted(PARITY))
@pytest.mark.parametrize("zeros", [False, True])
def test_values_and_gradients_match_pytorch(torch, name, zeros):
    rng = np.random.default_rng(7)
    data = rng.uniform(-2, 2, size=(2, 3, 4))
    if zeros:
        data[0, 1, 2] = data[1, 0, 0] = data[1, 0, 3] = 0.0
    upstream = None
    results = []
    for module, make in (
        (gf, lambda a: gf.tensor(a, requires_grad=True)),
        (torch, lambda a: torch.tensor(a, requires_grad=True)),
    ):
        x = make(data)
        out = PARITY[name](module, x)
        if upstream is None:
            upstream = rng.standard_normal(tuple(out.shape))
        (gradient,) = (gf.autograd.grad if module is gf else torch.autograd.grad)(
            (out * make(upstream).detach()).sum(), x
        )
        results.append((out.detach().numpy(), gradient.numpy()))
    (ours, our_grad), (theirs, their_grad) = results
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-10, atol=1e-12)


def test_argmax_and_boolean_reductions_match_pytorch(torch):
    data = np.random.default_rng(3).uniform(-2, 2, size=(3, 4))
    data[1, 2] = 0.0
    for call in (
        lambda m, x: m.argmax(x, 1),
        lambda m, x: m.argmin(x),
        lambda m, x: m.argmax(x, 0, keepdim=True),
        lambda m, x: m.all(x, 1),
        lambda m, x: m.any(x == 0, 0),
    ):
        np.testing.assert_array_equal(call(gf, gf.tensor(data)).numpy(), call(torch, torch.tensor(data)).numpy())
