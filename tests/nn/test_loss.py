"""Losses (functional and module forms) against PyTorch, NumPy references and finite differences."""

from __future__ import annotations

import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.errors import DtypeError, IndexOutOfRangeError, ShapeError
from gradflow.nn.modules import loss as modules
from gradflow.ops import loss as regression
from gradflow.ops import loss_classification as classification
from gradflow.ops.softmax import log_softmax, softmax
from gradflow.ops.statistics import logsumexp

REDUCTIONS = ("mean", "sum", "none")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
RNG = np.random.default_rng(1234)


def _host(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _leaf(array, device, requires_grad=True):
    return gf.tensor(np.asarray(array), device=device, requires_grad=requires_grad)


def _functional(name):
    return getattr(regression, name, None) or getattr(classification, name)


def _assert_close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)


def _compare_with_torch(name, arrays, device, differentiable=(0, 1), constants=None, grad_rtol=1e-10, **kwargs):
    """Run gradflow's and torch's ``name`` on the same float64 data; compare values and input gradients."""
    torch = pytest.importorskip("torch")
    constants = constants or {}
    ours = [_leaf(a, device, i in differentiable) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in differentiable) for i, a in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn alike (kl_div's 'mean', broadcasting); checked elsewhere
        out = _functional(name)(*ours, **{k: _leaf(v, device, False) for k, v in constants.items()}, **kwargs)
        expected = getattr(torch.nn.functional, name)(
            *theirs, **{k: torch.tensor(v) for k, v in constants.items()}, **kwargs
        )
    assert out.shape == tuple(expected.shape)
    _assert_close(_host(out), expected.detach().numpy())
    cotangent = RNG.standard_normal(tuple(expected.shape))
    out.backward(_leaf(cotangent, device, False))
    expected.backward(torch.tensor(cotangent))
    for index in differentiable:
        np.testing.assert_allclose(_host(ours[index].grad), theirs[index].grad.numpy(), rtol=grad_rtol, atol=1e-12)


# -- elementwise losses against PyTorch ------------------------------------------------------------


def _regression_data(name, shape=(3, 4)):
    """(input, target, constants) in the domain of each loss."""
    x, y = RNG.standard_normal(shape), RNG.standard_normal(shape)
    if name == "binary_cross_entropy":
        return RNG.uniform(0.05, 0.95, shape), RNG.uniform(0, 1, shape)
    if name == "binary_cross_entropy_with_logits":
        return 3 * x, RNG.uniform(0, 1, shape)
    if name == "kl_div":
        probs = RNG.uniform(0.1, 1, shape)
        return np.log(RNG.dirichlet(np.ones(shape[-1]), shape[:-1])), probs / probs.sum(-1, keepdims=True)
    return x, y


POINTWISE_CASES = [
    ("mse_loss", {}),
    ("mse_loss", {"weight": "elementwise"}),
    ("l1_loss", {}),
    ("l1_loss", {"weight": "elementwise"}),
    ("smooth_l1_loss", {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}),
    ("huber_loss", {"delta": 0.7}),
    ("huber_loss", {"weight": "elementwise"}),
    ("binary_cross_entropy", {}),
    ("binary_cross_entropy", {"weight": "row"}),
    ("binary_cross_entropy_with_logits", {}),
    ("binary_cross_entropy_with_logits", {"weight": "row", "pos_weight": "row"}),
    ("kl_div", {}),
    ("kl_div", {"log_target": True}),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, options", POINTWISE_CASES)
def test_pointwise_loss_values_and_gradients_match_pytorch(name, options, reduction, device):
    x, y = _regression_data(name)
    options = dict(options)
    if options.get("log_target"):
        y = np.log(y)
    constants = {}
    for key in ("weight", "pos_weight"):
        if options.get(key) == "elementwise":
            constants[key] = RNG.uniform(0.5, 2, x.shape)
        elif options.get(key) == "row":
            constants[key] = RNG.uniform(0.5, 2, x.shape[-1:])
        options.pop(key, None)
    _compare_with_torch(name, [x, y], device, constants=constants, reduction=reduction, **options)


def test_kl_div_batchmean_matches_pytorch(device):
    x, y = _regression_data("kl_div", (4, 3))
    _compare_with_torch("kl_div", [x, y], device, reduction="batchmean")
    _compare_with_torch("kl_div", [x, np.log(y)], device, reduction="batchmean", log_target=True)


def test_binary_cross_entropy_at_exact_zero_and_one_matches_pytorch(device):
    # log(0) is clamped to -100 and the gradient's denominator to 1e-12: finite, as in PyTorch.
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.3])
    # PyTorch's clamp constant is float32(1e-12), 4e-9 away from ours: the 1e12-sized gradients differ by that much.
    _compare_with_torch("binary_cross_entropy", [x, y], device, (0,), grad_rtol=1e-8, reduction="none")
    # The target gradient is that of the clamped loss: finite (PyTorch's unclamped formula gives +-inf here).
    target = _leaf(y, device)
    loss = regression.binary_cross_entropy(_leaf(x, device), target, reduction="none")
    loss.sum().backward()
    assert _host(loss)[2] == pytest.approx(100.0)
    np.testing.assert_allclose(_host(target.grad)[:4], [100.0, -100.0, 100.0, -100.0])


# -- class-index and class-probability losses against PyTorch --------------------------------------


CLASS_SHAPES = [(5, 4), (2, 3, 2, 2), (4,)]


def _class_data(shape, ignore):
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = RNG.integers(0, classes, target_shape)
    if ignore == "default" and target.ndim:
        target.flat[0] = -100
    return 3 * RNG.standard_normal(shape), target, RNG.uniform(0.5, 2, classes)


@pytest.mark.parametrize("ignore", ["none", "default", "in_range"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_nll_loss_matches_pytorch(shape, reduction, weighted, ignore, device):
    x, target, weight = _class_data(shape, ignore)
    options = {"ignore_index": 1} if ignore == "in_range" else {}
    constants = {"weight": weight} if weighted else {}
    log_probs = x - np.log(np.exp(x).sum(0 if len(shape) == 1 else 1, keepdims=True))
    _compare_with_torch(
        "nll_loss", [log_probs, target], device, (0,), constants=constants, reduction=reduction, **options
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("ignore", ["none", "default", "in_range"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_cross_entropy_with_class_indices_matches_pytorch(shape, reduction, weighted, ignore, label_smoothing, device):
    x, target, weight = _class_data(shape, ignore)
    options = {"ignore_index": 1} if ignore == "in_range" else {}
    constants = {"weight": weight} if weighted else {}
    _compare_with_torch(
        "cross_entropy",
        [x, target],
        device,
        (0,),
        constants=constants,
        reduction=reduction,
        label_smoothing=label_smoothing,
        **options,
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_cross_entropy_with_class_probabilities_matches_pytorch(shape, reduction, weighted, label_smoothing, device):
    x, _, weight = _class_data(shape, "none")
    class_axis = 0 if len(shape) == 1 else 1
    probs = RNG.uniform(0, 1, shape)
    probs /= probs.sum(class_axis, keepdims=True)
    constants = {"weight": weight} if weighted else {}
    _compare_with_torch(
        "cross_entropy", [x, probs], device, constants=constants, reduction=reduction, label_smoothing=label_smoothing
    )


@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy"])
def test_all_targets_ignored_gives_nan_mean_zero_sum_and_zero_gradients(name, device):
    x = _leaf(RNG.standard_normal((3, 4)), device)
    target = _leaf([-100, -100, -100], device, False)
    assert np.isnan(_host(_functional(name)(x, target)))
    assert _host(_functional(name)(x, target, reduction="sum")) == 0
    _functional(name)(x, target).backward()
    np.testing.assert_array_equal(_host(x.grad), np.zeros((3, 4)))


def test_cross_entropy_float32_stays_float32_and_matches_float64(device):
    x = RNG.standard_normal((6, 5))
    target = _leaf(RNG.integers(0, 5, 6), device, False)
    single = classification.cross_entropy(_leaf(x.astype(np.float32), device), target, label_smoothing=0.1)
    double = classification.cross_entropy(_leaf(x, device), target, label_smoothing=0.1)
    assert single.dtype is gf.float32
    assert _host(single) == pytest.approx(_host(double), rel=1e-5)


# -- finite differences ----------------------------------------------------------------------------


def _gradient_cases(device):
    def leaf(array):
        return _leaf(array, device)

    def const(array):
        return _leaf(array, device, False)

    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    probs = RNG.uniform(0.1, 0.9, (2, 3))
    classes = const(np.array([2, -100]))
    weight = const(RNG.uniform(0.5, 2, 3))
    return [
        ("mse_loss", lambda a, b: regression.mse_loss(a, b), (leaf(x), leaf(y))),
        ("l1_loss", lambda a, b: regression.l1_loss(a, b, reduction="sum"), (leaf(x), leaf(y))),
        ("smooth_l1_loss", lambda a, b: regression.smooth_l1_loss(a, b, beta=0.8), (leaf(x), leaf(y))),
        ("huber_loss", lambda a, b: regression.huber_loss(a, b, delta=0.8, reduction="none"), (leaf(x), leaf(y))),
        ("binary_cross_entropy", lambda a, b: regression.binary_cross_entropy(a, b), (leaf(probs), leaf(probs[::-1]))),
        (
            "binary_cross_entropy_with_logits",
            lambda a, b, w: regression.binary_cross_entropy_with_logits(a, b, pos_weight=w),
            (leaf(x), leaf(probs), leaf(RNG.uniform(0.5, 2, 3))),
        ),
        ("kl_div", lambda a, b: regression.kl_div(a, b, reduction="batchmean"), (leaf(x), leaf(probs))),
        (
            "nll_loss",
            lambda a: classification.nll_loss(a, classes, weight=weight, reduction="none"),
            (leaf(x),),
        ),
        (
            "cross_entropy",
            lambda a: classification.cross_entropy(a, classes, weight=weight, label_smoothing=0.2),
            (leaf(x),),
        ),
        (
            "cross_entropy_spatial",
            lambda a: classification.cross_entropy(a, const(np.array([[0, 2]])), reduction="none"),
            (leaf(RNG.standard_normal((1, 3, 2))),),
        ),
        ("cross_entropy_probabilities", lambda a, b: classification.cross_entropy(a, b), (leaf(x), leaf(probs))),
    ]


def test_every_loss_passes_gradcheck_and_gradgradcheck(device):
    for name, fn, inputs in _gradient_cases(device):
        assert gradcheck(fn, inputs), name
        assert gradgradcheck(fn, inputs), name


def test_cross_entropy_hessian_matches_pytorch(device):
    # Double backward through the fused Function: d/dx of (grad . v) is the softmax Hessian times v.
    torch = pytest.importorskip("torch")
    x, v = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    target = np.array([1, 3, 0])
    ours = _leaf(x, device)
    loss = classification.cross_entropy(ours, _leaf(target, device, False))
    (grad,) = gf.autograd.grad(loss, [ours], create_graph=True)
    (grad * _leaf(v, device, False)).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    (torch_grad,) = torch.autograd.grad(
        torch.nn.functional.cross_entropy(theirs, torch.tensor(target)), [theirs], create_graph=True
    )
    (torch_grad * torch.tensor(v)).sum().backward()
    _assert_close(_host(ours.grad), theirs.grad.numpy())


# -- Hypothesis: shapes of the elementwise losses --------------------------------------------------


def _reference(name, difference, option):
    distance = np.abs(difference)
    if name == "mse_loss":
        return difference**2
    if name == "l1_loss":
        return distance
    if name == "smooth_l1_loss":
        return np.where(distance < option, 0.5 * difference**2 / option, distance - 0.5 * option)
    return np.where(distance < option, 0.5 * difference**2, option * (distance - 0.5 * option))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), seed=st.integers(0, 2**16))
def test_pointwise_losses_broadcast_and_match_numpy(name, shapes, seed, device):
    generator = np.random.default_rng(seed)
    input_shape, target_shape = shapes.input_shapes
    x, y = generator.standard_normal(input_shape), generator.standard_normal(target_shape)
    option = {"smooth_l1_loss": {"beta": 0.6}, "huber_loss": {"delta": 0.6}}.get(name, {})
    expected = _reference(name, x - y, next(iter(option.values()), None))
    function = getattr(regression, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unreduced = function(_leaf(x, device, False), _leaf(y, device, False), reduction="none", **option)
    assert any("different to the input size" in str(w.message) for w in caught) == (input_shape != target_shape)
    assert unreduced.shape == shapes.result_shape
    np.testing.assert_allclose(_host(unreduced), expected, rtol=1e-12, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = function(_leaf(x, device, False), _leaf(y, device, False), reduction="sum", **option)
        mean = function(_leaf(x, device, False), _leaf(y, device, False), **option)
    np.testing.assert_allclose(_host(total), expected.sum(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_host(mean), expected.mean() if expected.size else np.nan, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), seed=st.integers(0, 2**16))
def test_binary_cross_entropy_with_logits_matches_numpy_for_any_shape(shape, seed, device):
    generator = np.random.default_rng(seed)
    x, y = 10 * generator.standard_normal(shape), generator.uniform(0, 1, shape)
    expected = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    got = regression.binary_cross_entropy_with_logits(_leaf(x, device), _leaf(y, device), reduction="none")
    np.testing.assert_allclose(_host(got), expected, rtol=1e-12, atol=1e-12)


# -- numerical stability ---------------------------------------------------------------------------


STABILITY_CASES = [
    ("softmax", lambda x: softmax(x, dim=1)),
    ("log_softmax", lambda x: log_softmax(x, dim=1)),
    ("logsumexp", lambda x: logsumexp(x, 1)),
    ("cross_entropy", lambda x: classification.cross_entropy(x, gf.tensor([1, 0], device=x.device), reduction="none")),
    (
        "cross_entropy_smoothed",
        lambda x: classification.cross_entropy(x, gf.tensor([1, 0], device=x.device), label_smoothing=0.1),
    ),
    (
        "binary_cross_entropy_with_logits",
        lambda x: regression.binary_cross_entropy_with_logits(x, (x > 0).float(), reduction="none"),
    ),
]


@pytest.mark.parametrize("name, fn", STABILITY_CASES)
def test_float32_logits_of_1e4_give_finite_values_and_gradients(name, fn, device):
    x = gf.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=gf.float32, device=device, requires_grad=True)
    out = fn(x)
    weights = gf.tensor(RNG.standard_normal(out.shape), dtype=gf.float32, device=device)
    (out * weights).sum().backward()
    assert np.isfinite(_host(out)).all(), name
    assert np.isfinite(_host(x.grad)).all(), name


def test_cross_entropy_at_1e4_has_the_exact_margin_loss(device):
    x = gf.tensor([[1e4, -1e4]], dtype=gf.float32, device=device, requires_grad=True)
    loss = classification.cross_entropy(x, gf.tensor([1], device=device))
    loss.backward()
    assert _host(loss) == pytest.approx(2e4)
    np.testing.assert_allclose(_host(x.grad), [[1.0, -1.0]])


def test_kl_div_zero_target_contributes_zero_with_finite_gradients(device):
    x = _leaf(np.log([0.5, 0.25, 0.25]), device)
    y = _leaf([0.0, 0.5, 0.5], device)
    loss = regression.kl_div(x, y, reduction="sum")
    loss.backward()
    expected = 0.5 * (np.log(0.5) - np.log(0.25)) * 2
    assert _host(loss) == pytest.approx(expected)
    assert np.isfinite(_host(y.grad)).all() and _host(x.grad)[0] == 0


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "kl_div"]
)
def test_integer_inputs_raise_dtype_error(name, device):
    ints = gf.tensor([[0, 1]], device=device)
    with pytest.raises(DtypeError, match=name):
        getattr(regression, name)(ints, ints, reduction="sum")


@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy", "binary_cross_entropy_with_logits"])
def test_integer_logits_raise_dtype_error(name, device):
    with pytest.raises(DtypeError, match="int64"):
        _functional(name)(gf.tensor([[0, 1]], device=device), gf.tensor([[0, 1]], device=device))


def test_mse_loss_with_unbroadcastable_shapes_names_both(device):
    with pytest.raises(ShapeError, match=r"\[3\] and \[4\]"):
        regression.mse_loss(gf.zeros(3, device=device), gf.zeros(4, device=device))


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_binary_losses_refuse_a_target_of_another_shape(name, device):
    with pytest.raises(ShapeError, match=r"\[3, 1\].*\[3, 2\]"):
        getattr(regression, name)(gf.full((3, 2), 0.5, device=device), gf.zeros(3, 1, device=device))


@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy"])
def test_class_index_out_of_range_names_the_value_and_the_class_count(name, device):
    x = gf.zeros(3, 4, device=device)
    with pytest.raises(IndexOutOfRangeError, match=r"target 7 .* 4 classes"):
        _functional(name)(x, gf.tensor([0, 7, 1], device=device))
    with pytest.raises(IndexOutOfRangeError, match="target -1"):
        _functional(name)(x, gf.tensor([0, -1, 1], device=device))
    assert np.isfinite(_host(_functional(name)(x, gf.tensor([0, -5, 1], device=device), ignore_index=-5)))


@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy"])
def test_class_target_shape_and_dtype_errors(name, device):
    loss = _functional(name)
    x = gf.zeros(3, 4, device=device)
    with pytest.raises(ShapeError, match=r"batch_size \(3\).*batch_size \(2\)"):
        loss(x, gf.tensor([0, 1], device=device))
    with pytest.raises(ShapeError, match=r"\[2, 4\].*\[2, 5\]"):
        loss(gf.zeros(2, 3, 4, device=device), gf.zeros(2, 5, dtype=gf.int64, device=device))
    with pytest.raises(DtypeError, match="int32"):
        loss(x, gf.tensor([0, 1, 2], dtype=gf.int32, device=device))
    with pytest.raises(ShapeError, match="1 or more dimensions"):
        loss(gf.zeros((), device=device), gf.tensor(0, device=device))
    with pytest.raises(ShapeError, match=r"all 4 classes.*\[3\]"):
        loss(x, gf.tensor([0, 1, 2], device=device), weight=gf.ones(3, device=device))
    # uint8 class indices are accepted, as in PyTorch
    assert np.isfinite(_host(loss(x, gf.tensor([0, 1, 2], dtype=gf.uint8, device=device))))


def test_cross_entropy_argument_errors(device):
    x = gf.zeros(3, 4, device=device)
    with pytest.raises(ValueError, match="label_smoothing"):
        classification.cross_entropy(x, gf.tensor([0, 1, 2], device=device), label_smoothing=1.5)
    with pytest.raises(ValueError, match="ignore_index"):
        classification.cross_entropy(x, gf.full((3, 4), 0.25, device=device), ignore_index=1)
    with pytest.raises(DtypeError, match="floating point target"):
        classification.cross_entropy(x, gf.zeros(3, 4, dtype=gf.int64, device=device))


@pytest.mark.parametrize("name", ["mse_loss", "nll_loss", "cross_entropy", "kl_div", "binary_cross_entropy"])
def test_unknown_reduction_raises_value_error(name, device):
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        _functional(name)(gf.full((2, 2), 0.5, device=device), gf.tensor([0, 1], device=device), reduction="avg")


def test_binary_cross_entropy_refuses_values_outside_the_unit_interval(device):
    half = gf.full((2,), 0.5, device=device)
    with pytest.raises(ValueError, match=r"input should be between 0 and 1, got 1.5"):
        regression.binary_cross_entropy(gf.tensor([0.5, 1.5], device=device), half)
    with pytest.raises(ValueError, match="input should be between 0 and 1, got nan"):
        regression.binary_cross_entropy(gf.tensor([float("nan"), 0.5], device=device), half)
    with pytest.raises(ValueError, match="target should be between 0 and 1, got 2.0"):
        regression.binary_cross_entropy(half, gf.tensor([0.5, 2.0], device=device))


def test_hyperparameter_errors(device):
    x = gf.zeros(2, device=device)
    with pytest.raises(ValueError, match="beta"):
        regression.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="delta"):
        regression.huber_loss(x, x, delta=0.0)
    with pytest.raises(ShapeError, match="weight"):
        regression.mse_loss(x, x, weight=gf.ones(3, device=device))


def test_legacy_size_average_and_reduce_pick_the_reduction_with_a_warning(device):
    x, y = gf.tensor([1.0, 3.0], device=device), gf.zeros(2, device=device)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert _host(regression.mse_loss(x, y, size_average=False)) == 10.0
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert _host(regression.mse_loss(x, y, reduce=False)).tolist() == [1.0, 9.0]


def test_kl_div_mean_warns_like_pytorch_and_batchmean_does_not(device):
    x, y = gf.zeros(2, 3, device=device), gf.full((2, 3), 1 / 3, device=device)
    with pytest.warns(UserWarning, match="batchmean"):
        regression.kl_div(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regression.kl_div(x, y, reduction="batchmean")


# -- module forms ----------------------------------------------------------------------------------


def test_loss_modules_match_their_functional_forms(device):
    x = _leaf(RNG.standard_normal((4, 3)), device, False)
    y = _leaf(RNG.standard_normal((4, 3)), device, False)
    probs = _leaf(RNG.uniform(0.1, 0.9, (4, 3)), device, False)
    classes = _leaf(np.array([0, 2, 1, 2]), device, False)
    weight = _leaf(np.array([1.0, 2.0, 0.5]), device, False)
    cases = [
        (modules.L1Loss(reduction="sum"), regression.l1_loss(x, y, reduction="sum"), (x, y)),
        (modules.MSELoss(), regression.mse_loss(x, y), (x, y)),
        (modules.SmoothL1Loss(beta=0.3), regression.smooth_l1_loss(x, y, beta=0.3), (x, y)),
        (modules.HuberLoss(delta=0.3), regression.huber_loss(x, y, delta=0.3), (x, y)),
        (modules.NLLLoss(weight, ignore_index=2), classification.nll_loss(x, classes, weight, ignore_index=2), None),
        (
            modules.CrossEntropyLoss(weight, label_smoothing=0.1),
            classification.cross_entropy(x, classes, weight, label_smoothing=0.1),
            None,
        ),
        (modules.BCELoss(weight), regression.binary_cross_entropy(probs, probs, weight), (probs, probs)),
        (
            modules.BCEWithLogitsLoss(pos_weight=weight),
            regression.binary_cross_entropy_with_logits(x, probs, pos_weight=weight),
            (x, probs),
        ),
        (
            modules.KLDivLoss(reduction="batchmean", log_target=True),
            regression.kl_div(x, y, reduction="batchmean", log_target=True),
            (x, y),
        ),
    ]
    for module, expected, arguments in cases:
        got = module(*(arguments or (x, classes)))
        _assert_close(_host(got), _host(expected))
        assert repr(module) == f"{type(module).__name__}()"


def test_weighted_loss_modules_register_weights_as_buffers():
    weight = gf.tensor([1.0, 2.0])
    for module in (modules.CrossEntropyLoss(weight), modules.NLLLoss(weight), modules.BCELoss(weight)):
        assert list(module.state_dict()) == ["weight"] and module.weight is weight
        assert module.double().weight.dtype is gf.float64
    logits_loss = modules.BCEWithLogitsLoss(weight=weight, pos_weight=weight)
    assert list(logits_loss.state_dict()) == ["weight", "pos_weight"]
    assert modules.CrossEntropyLoss().weight is None


def test_loss_module_defaults_and_legacy_arguments_follow_pytorch():
    cross_entropy = modules.CrossEntropyLoss()
    assert (cross_entropy.reduction, cross_entropy.ignore_index, cross_entropy.label_smoothing) == ("mean", -100, 0.0)
    assert modules.SmoothL1Loss().beta == 1.0 and modules.HuberLoss().delta == 1.0
    assert modules.KLDivLoss().log_target is False
    with pytest.warns(UserWarning, match="size_average and reduce"):
        assert modules.NLLLoss(None, False).reduction == "sum"
    with pytest.warns(UserWarning):
        assert modules.MSELoss(reduce=False).reduction == "none"


def test_cross_entropy_loss_module_trains_a_linear_classifier(device):
    # A loss that is wrong in sign or scale would not drive the training loss down this far.
    features = gf.randn(64, 2, dtype=gf.float64, device=device)
    labels = (features[:, 0] + features[:, 1] > 0).long()
    weight = gf.zeros(2, 2, dtype=gf.float64, device=device, requires_grad=True)
    criterion = modules.CrossEntropyLoss()
    for _ in range(100):
        loss = criterion(features @ weight, labels)
        weight.grad = None
        loss.backward()
        with gf.no_grad():
            weight -= 0.5 * weight.grad
    assert _host(loss) < 0.2
