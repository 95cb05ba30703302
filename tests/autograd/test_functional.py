"""gradflow.autograd.functional: jacobian, hessian, vjp, jvp, hvp and vhp.

Values are checked against closed forms and central differences in float64, return
structures and errors against PyTorch's rules, and everything against
torch.autograd.functional when torch is installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import Tensor
from gradflow.autograd.function import Function
from gradflow.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp
from gradflow.errors import DtypeError, GraphError, ShapeError

STRATEGIES = ["reverse-mode", "forward-mode"]
# The device fixture only picks the device, so reusing it across examples is safe.
FAST = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def host(value):
    """Nested tuples of Tensors as the same nesting of NumPy arrays."""
    if isinstance(value, tuple):
        return tuple(host(element) for element in value)
    return value.numpy(force=True)


def make(array, device, requires_grad=False):
    return gf.tensor(np.asarray(array, dtype=np.float64), device=device, requires_grad=requires_grad)


def numeric_jacobian(func, arrays, device, eps=1e-6):
    """blocks[i][j] = d output_i / d input_j by central differences, shape out_i.shape + in_j.shape."""

    def evaluate(values):
        outs = func(*[make(value, device) for value in values])
        return [host(out) for out in (outs if isinstance(outs, tuple) else (outs,))]

    base = evaluate(arrays)
    blocks = [[np.zeros(out.shape + array.shape) for array in arrays] for out in base]
    for j, array in enumerate(arrays):
        for index in np.ndindex(array.shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[j][index] += eps
            minus[j][index] -= eps
            for i, (high, low) in enumerate(zip(evaluate(plus), evaluate(minus))):
                blocks[i][j][(Ellipsis, *index)] = (high - low) / (2 * eps)
    return blocks


def mixed(x, y):
    """Two outputs that each depend on both inputs."""
    return x.sin() * y.sum(), y.tanh() * (x * x).sum()


def scalar(x, y):
    return (x.sin() * y.cos().sum()).sum() + (x * x).sum() * y.exp().sum()


shapes = st.sampled_from([(), (1,), (3,), (2, 2)])


@FAST
@given(x_shape=shapes, y_shape=shapes, seed=st.integers(0, 2**16))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jacobian_and_products_match_central_differences(device, strategy, x_shape, y_shape, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=x_shape), rng.normal(size=y_shape)]
    x, y = make(arrays[0], device), make(arrays[1], device)
    expected = numeric_jacobian(mixed, arrays, device)
    ours = host(jacobian(mixed, (x, y), strategy=strategy))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(ours[i][j], expected[i][j], rtol=1e-6, atol=1e-7)
    # v^T J and J v are the same contractions of the numerical blocks.
    u = [rng.normal(size=x_shape), rng.normal(size=y_shape)]
    _, products = vjp(mixed, (x, y), (make(u[0], device), make(u[1], device)))
    for j in range(2):
        want = sum(np.tensordot(u[i], expected[i][j], axes=u[i].ndim) for i in range(2))
        np.testing.assert_allclose(host(products[j]), want, rtol=1e-6, atol=1e-7)
    _, products = jvp(mixed, (x, y), (make(u[0], device), make(u[1], device)))
    for i in range(2):
        want = sum(np.tensordot(expected[i][j], u[j], axes=u[j].ndim) for j in range(2))
        np.testing.assert_allclose(host(products[i]), want, rtol=1e-6, atol=1e-7)


@FAST
@given(x_shape=shapes, y_shape=shapes, seed=st.integers(0, 2**16))
def test_hessian_hvp_and_vhp_match_differences_of_the_gradient(device, x_shape, y_shape, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=x_shape), rng.normal(size=y_shape)]
    x, y = make(arrays[0], device), make(arrays[1], device)
    expected = numeric_jacobian(lambda a, b: vjp(scalar, (a, b))[1], arrays, device)
    for strategy in STRATEGIES:
        ours = host(hessian(scalar, (x, y), outer_jacobian_strategy=strategy))
        for i in range(2):
            for j in range(2):
                np.testing.assert_allclose(ours[i][j], expected[i][j], rtol=1e-5, atol=1e-6)
    v = (make(rng.normal(size=x_shape), device), make(rng.normal(size=y_shape), device))
    for product in (hvp, vhp):
        value, result = product(scalar, (x, y), v)
        assert value.shape == ()
        for i in range(2):
            want = sum(np.tensordot(expected[i][j], host(v[j]), axes=v[j].ndim) for j in range(2))
            np.testing.assert_allclose(host(result[i]), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jacobian_of_a_batched_linear_map_is_the_matrix(device, strategy):
    matrix = np.random.default_rng(1).normal(size=(4, 3))
    weight_t = make(matrix.T, device)
    x = make(np.random.default_rng(2).normal(size=(2, 3)), device)
    result = jacobian(lambda t: t @ weight_t, x, strategy=strategy)
    assert result.shape == (2, 4, 2, 3)
    np.testing.assert_allclose(host(result), np.einsum("ik,bc->bick", matrix, np.eye(2)), atol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose(device, strategy):
    rng = np.random.default_rng(3)
    matrix, point = rng.normal(size=(4, 4)), rng.normal(size=4)
    a = make(matrix, device)
    quadratic = lambda t: t @ (a @ t)
    x = make(point, device)
    result = hessian(quadratic, x, outer_jacobian_strategy=strategy)
    assert result.shape == (4, 4)
    np.testing.assert_allclose(host(result), matrix + matrix.T, atol=1e-12)
    # The function returns a 0-d tensor: its Jacobian has the input's shape.
    gradient = jacobian(quadratic, x, strategy=strategy)
    np.testing.assert_allclose(host(gradient), (matrix + matrix.T) @ point, atol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_jacobian_of_softmax_is_diag_s_minus_s_s_transpose(device, strategy):
    x = make(np.random.default_rng(4).normal(size=5), device)
    s = host(x.softmax(0))
    result = jacobian(lambda t: t.softmax(0), x, strategy=strategy)
    np.testing.assert_allclose(host(result), np.diag(s) - np.outer(s, s), atol=1e-12)


@FAST
@given(shape=st.sampled_from([(1,), (4,), (2, 3)]), seed=st.integers(0, 2**16))
def test_jacobian_of_an_elementwise_function_is_diagonal(device, shape, seed):
    values = np.random.default_rng(seed).normal(size=shape)
    x = make(values, device)
    expected = np.diag((1 - np.tanh(values) ** 2).ravel()).reshape(shape + shape)
    for strategy in STRATEGIES:
        np.testing.assert_allclose(host(jacobian(lambda t: t.tanh(), x, strategy=strategy)), expected, atol=1e-12)


def test_return_structures_follow_the_tuple_nesting_of_inputs_and_outputs(device):
    x, y = make([1.0, 2.0], device), make([0.5, -1.0, 2.0], device)
    both = jacobian(lambda a, b: (a * b.sum(), b.exp()), (x, y))
    assert isinstance(both, tuple) and all(isinstance(row, tuple) and len(row) == 2 for row in both)
    assert [[block.shape for block in row] for row in both] == [[(2, 2), (2, 3)], [(3, 2), (3, 3)]]
    np.testing.assert_allclose(host(both[0][0]), 1.5 * np.eye(2))
    np.testing.assert_allclose(host(both[0][1]), np.array([[1.0] * 3, [2.0] * 3]))
    np.testing.assert_allclose(host(both[1][0]), np.zeros((3, 2)))
    np.testing.assert_allclose(host(both[1][1]), np.diag(np.exp([0.5, -1.0, 2.0])))
    single_in_tuple = jacobian(lambda a: a * 2, (x,))
    assert isinstance(single_in_tuple, tuple) and len(single_in_tuple) == 1 and single_in_tuple[0].shape == (2, 2)
    tuple_out = jacobian(lambda a: (a * 2,), x)
    assert isinstance(tuple_out, tuple) and len(tuple_out) == 1 and isinstance(tuple_out[0], gf.Tensor)
    output, result = vjp(lambda a, b: (a * 2, b), (x, y), (make([1.0, 1.0], device), make([1.0] * 3, device)))
    assert isinstance(output, tuple) and isinstance(result, tuple) and len(result) == 2
    output, result = jvp(lambda a: a * 2, (x,), (make([1.0, 1.0], device),))
    assert isinstance(output, gf.Tensor) and isinstance(result, gf.Tensor)
    table = hessian(lambda a, b: (a * a).sum() * b.sum(), (x, y))
    assert [[block.shape for block in row] for row in table] == [[(2, 2), (2, 3)], [(3, 2), (3, 3)]]
    assert isinstance(hvp(lambda a: (a * a).sum(), (x,), (x,))[1], tuple)


def test_strict_mode_names_the_independent_output_and_input(device):
    x, y = make([1.0, 2.0], device), make([3.0], device)
    for strategy in STRATEGIES:
        with pytest.raises(GraphError, match="Output 0 of the user-provided function is independent of input 1"):
            jacobian(lambda a, b: a * 2, (x, y), strict=True, strategy=strategy)
        relaxed = jacobian(lambda a, b: a * 2, (x, y), strategy=strategy)
        np.testing.assert_array_equal(host(relaxed[1]), np.zeros((2, 1)))
        with pytest.raises(GraphError, match="does not require gradients"):
            jacobian(lambda a: a.detach(), x, strict=True, strategy=strategy)
        with pytest.raises(GraphError, match="independent of input 0.*create_graph=True"):
            jacobian(lambda a: a * 2, x, strict=True, create_graph=True, strategy=strategy)
    with pytest.raises(GraphError, match="independent of input 1"):
        vjp(lambda a, b: a.sum(), (x, y), strict=True)
    with pytest.raises(GraphError, match="independent of input 1"):
        jvp(lambda a, b: a.sum(), (x, y), (x, y), strict=True)
    np.testing.assert_array_equal(host(vjp(lambda a, b: a.sum(), (x, y))[1][1]), [0.0])


class _ConstantBackward(Function):
    """Identity forward whose backward ignores the incoming gradient (as a step function's does)."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return Tensor._wrap(ctx.device.backend.xp.zeros(grad.shape, dtype=grad._data.dtype), ctx.device)


def test_jvp_strict_mode_refuses_a_gradient_that_ignores_the_cotangent(device):
    x = make([1.0, 2.0], device)
    with pytest.raises(GraphError, match="gradient with respect to input 0 is independent of the inputs"):
        jvp(_ConstantBackward.apply, x, x, strict=True)
    np.testing.assert_array_equal(host(jvp(_ConstantBackward.apply, x, x)[1]), [0.0, 0.0])
    # An output without a graph gets a zero product when strict is off.
    output, product = jvp(lambda t: (t * 2, t.detach()), x, x)
    np.testing.assert_array_equal(host(product[1]), [0.0, 0.0])
    np.testing.assert_array_equal(host(output[1]), [1.0, 2.0])


def test_strict_mode_refuses_a_hessian_whose_gradient_is_constant(device):
    x = make([1.0, 2.0], device)
    linear = lambda a: a.sum() * 3
    for call in (lambda s: hessian(linear, x, strict=s), lambda s: hvp(linear, x, x, strict=s)[1]):
        with pytest.raises(GraphError, match="jacobian of the user-provided function with respect to input 0"):
            call(True)
        assert not host(call(False)).any()
    with pytest.raises(GraphError, match="jacobian of the user-provided function with respect to input 0"):
        vhp(linear, x, x, strict=True)


def test_v_may_be_none_only_for_single_element_tensors(device):
    x = make([1.0, 2.0, 3.0], device)
    output, gradient = vjp(lambda t: (t * t).sum(), x)
    np.testing.assert_allclose(host(gradient), [2.0, 4.0, 6.0])
    with pytest.raises(ShapeError, match="v can only be None if the user-provided function returns"):
        vjp(lambda t: t * t, x)
    np.testing.assert_allclose(host(jvp(lambda t: t * 3, make([2.0], device))[1]), [3.0])
    for product in (jvp, hvp, vhp):
        with pytest.raises(ShapeError, match="v can only be None if the input to the user-provided function"):
            product(lambda t: (t * t).sum(), x)
    np.testing.assert_allclose(host(hvp(lambda t: (t**3).sum(), make([[2.0]], device))[1]), [[12.0]])


def test_v_is_checked_against_the_shapes_it_multiplies(device):
    x = make([1.0, 2.0, 3.0], device)
    with pytest.raises(ShapeError, match=r"v has invalid size: should be \[3\] but got \[2\]"):
        vjp(lambda t: t * 2, x, make([1.0, 1.0], device))
    with pytest.raises(ShapeError, match="should contain a single Tensor"):
        vjp(lambda t: t * 2, x, (x, x))
    with pytest.raises(ShapeError, match="v is a tuple of invalid length: should be 1 but got 2"):
        vjp(lambda t: (t * 2,), x, (x, x))
    with pytest.raises(ShapeError, match=r"Entry 1 in v has invalid size"):
        jvp(lambda a, b: a * b.sum(), (x, x), (x, make([1.0], device)))
    with pytest.raises(TypeError, match="the value at index 1 has type int"):
        jvp(lambda t: t, (x,), (x, 1))


def test_bad_inputs_outputs_and_strategies_raise_typed_errors(device):
    x = make([1.0, 2.0], device)
    with pytest.raises(DtypeError, match="input 0 .* has dtype int64"):
        jacobian(lambda t: t * 2, gf.tensor([1, 2], device=device))
    with pytest.raises(TypeError, match="given inputs has type list"):
        jacobian(lambda t: t * 2, [x])
    with pytest.raises(TypeError, match="outputs of the user-provided function"):
        jacobian(lambda t: [t], x)
    with pytest.raises(ValueError, match='"forward-mode" or "reverse-mode"'):
        jacobian(lambda t: t, x, strategy="sideways")
    with pytest.raises(ValueError, match="outer_jacobian_strategy"):
        hessian(lambda t: t.sum(), x, outer_jacobian_strategy="sideways")
    with pytest.raises(ShapeError, match="should contain a single element"):
        hessian(lambda t: t * t, x)
    with pytest.raises(ShapeError, match="should return a single Tensor"):
        hvp(lambda t: (t.sum(),), x, x)


def test_results_are_detached_and_the_callers_tensors_untouched(device):
    x = make([0.5, 1.5], device, requires_grad=True)
    f = lambda t: t.sin() * t.sum()
    result = jacobian(f, x)
    output, product = vjp(f, x, make([1.0, 1.0], device))
    assert not result.requires_grad and not output.requires_grad and not product.requires_grad
    assert x.grad is None and x.is_leaf and x.requires_grad
    plain = make([0.5, 1.5], device)
    jacobian(f, plain, create_graph=True)
    assert not plain.requires_grad


def test_vectorize_is_a_hint_that_gives_the_same_result(device):
    x = make([0.3, -0.7, 1.1], device)
    f = lambda t: t.exp() * t.sum()
    np.testing.assert_array_equal(host(jacobian(f, x, vectorize=True)), host(jacobian(f, x)))
    g = lambda t: (t**3).sum()
    np.testing.assert_array_equal(host(hessian(g, x, vectorize=True)), host(hessian(g, x)))


def test_transforms_record_even_inside_no_grad(device):
    x = make([1.0, 2.0], device)
    with gf.no_grad():
        np.testing.assert_allclose(host(jacobian(lambda t: t * t, x)), np.diag([2.0, 4.0]))


def test_empty_outputs_give_empty_blocks(device):
    x = make([1.0, 2.0, 3.0], device)
    for strategy in STRATEGIES:
        assert jacobian(lambda t: t[:0] * 2, x, strategy=strategy).shape == (0, 3)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_create_graph_makes_the_jacobian_differentiable(device, strategy):
    x = make([0.4, -1.2, 0.9], device, requires_grad=True)
    f = lambda t: t.sin() * t.sum()
    result = jacobian(f, x, create_graph=True, strategy=strategy)
    assert result.requires_grad
    # J[0, 1] = sin(x0), whose gradient is (cos(x0), 0, 0).
    (gradient,) = gf.autograd.grad(result[0, 1], x)
    np.testing.assert_allclose(host(gradient), [np.cos(0.4), 0.0, 0.0], atol=1e-12)
    gf.autograd.gradcheck(lambda t: jacobian(f, t, create_graph=True, strategy=strategy), (x,))


def test_create_graph_makes_hessians_and_products_differentiable(device):
    x = make([0.4, -1.2], device, requires_grad=True)
    v = make([0.3, 0.8], device, requires_grad=True)
    g = lambda t: (t.sin() * (t * t).sum()).sum()
    assert gf.autograd.gradcheck(lambda t: hessian(g, t, create_graph=True), (x,))
    f = lambda s: s.sin() * s.sum()
    for product in (vjp, jvp):
        assert gf.autograd.gradcheck(lambda t, u, p=product: p(f, t, u, create_graph=True), (x, v))
    for product in (hvp, vhp):
        assert gf.autograd.gradcheck(lambda t, u, p=product: p(g, t, u, create_graph=True), (x, v))


def _to_torch(value, torch):
    return tuple(_to_torch(v, torch) for v in value) if isinstance(value, tuple) else torch.tensor(host(value))


def _assert_same(ours, theirs, torch):
    if isinstance(theirs, (tuple, list)):  # torch's forward-mode hessian returns lists; gradflow tuples
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for mine, reference in zip(ours, theirs):
            _assert_same(mine, reference, torch)
    else:
        assert isinstance(ours, gf.Tensor) and isinstance(theirs, torch.Tensor)
        np.testing.assert_allclose(host(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_every_transform_matches_torch_autograd_functional(device):
    torch = pytest.importorskip("torch")
    functional = torch.autograd.functional
    rng = np.random.default_rng(5)
    x, y = make(rng.normal(size=(2, 2)), device), make(rng.normal(size=3), device)
    u = (make(rng.normal(size=(2, 2)), device), make(rng.normal(size=3), device))
    ours_args, their_args = (x, y), _to_torch((x, y), torch)
    their_u = _to_torch(u, torch)
    one = lambda t: t.sin() * t.sum()
    for strategy in STRATEGIES:
        vectorize = strategy == "forward-mode"  # torch's forward mode needs vectorize=True
        for fn, args, targs in ((mixed, ours_args, their_args), (one, x, their_args[0]), (one, (x,), their_args[:1])):
            theirs = functional.jacobian(fn, targs, vectorize=vectorize, strategy=strategy)
            _assert_same(jacobian(fn, args, strategy=strategy), theirs, torch)
        theirs = functional.hessian(scalar, their_args, vectorize=vectorize, outer_jacobian_strategy=strategy)
        _assert_same(hessian(scalar, ours_args, outer_jacobian_strategy=strategy), theirs, torch)
    _assert_same(vjp(mixed, ours_args, u), functional.vjp(mixed, their_args, their_u), torch)
    _assert_same(jvp(mixed, ours_args, u), functional.jvp(mixed, their_args, their_u), torch)
    _assert_same(hvp(scalar, ours_args, u), functional.hvp(scalar, their_args, their_u), torch)
    _assert_same(vhp(scalar, ours_args, u), functional.vhp(scalar, their_args, their_u), torch)
    _assert_same(vjp(one, x, u[0]), functional.vjp(one, their_args[0], their_u[0]), torch)
    _assert_same(hessian(lambda t: (t**3).sum(), x), functional.hessian(lambda t: (t**3).sum(), their_args[0]), torch)
