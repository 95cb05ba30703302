"""Behaviour of the tape engine: order, accumulation, retain/create graph, grad mode."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import GraphError, InplaceError


def test_chain_of_100000_ops_backpropagates_without_hitting_the_recursion_limit():
    limit = sys.getrecursionlimit()
    x = gf.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad.item() == 1.0
    assert sys.getrecursionlimit() == limit


def test_gradients_are_summed_back_over_broadcast_dimensions(device):
    a = gf.ones(3, 1, device=device, requires_grad=True)
    b = gf.ones(4, device=device, requires_grad=True)
    c = gf.ones(2, 1, 1, device=device, requires_grad=True)
    (a * b * c).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and c.grad.shape == (2, 1, 1)
    np.testing.assert_array_equal(a.grad.cpu().numpy(), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(b.grad.cpu().numpy(), np.full(4, 6.0))
    np.testing.assert_array_equal(c.grad.cpu().numpy(), np.full((2, 1, 1), 12.0))


def test_leaf_gradients_accumulate_across_backward_calls(device):
    x = gf.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [2 + 3, 4 + 3])


def test_backward_twice_without_retain_graph_raises():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(GraphError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(force=True), [4.0, 8.0])


def test_saved_tensors_are_released_after_backward():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    node = y.grad_fn
    y.sum().backward()
    assert node._saved == "released"


def test_modifying_a_saved_tensor_in_place_makes_backward_raise_with_op_shape_and_versions():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    y = h * h
    h.add_(1)
    with pytest.raises(InplaceError, match=r"MulBackward.*float32 \[3\] is at version 1; expected version 0"):
        y.sum().backward()


def test_inplace_change_of_an_unsaved_input_is_allowed():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = h.exp()  # exp saves its output, not h
    h.add_(1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([2.0, 4.0]), rtol=1e-6)


def test_create_graph_records_the_backward_pass_for_second_derivatives(device):
    x = gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64, device=device, requires_grad=True)
    (dy,) = gf.autograd.grad((x**3).sum(), x, create_graph=True)
    assert dy.requires_grad and dy.grad_fn is not None
    np.testing.assert_allclose(dy.detach().cpu().numpy(), [3.0, 12.0, 27.0])
    (d2y,) = gf.autograd.grad(dy.sum(), x)
    np.testing.assert_allclose(d2y.cpu().numpy(), [6.0, 12.0, 18.0])


def test_third_derivative_through_nested_create_graph():
    x = gf.tensor(0.7, dtype=gf.float64, requires_grad=True)
    (first,) = gf.autograd.grad(x.sin(), x, create_graph=True)
    (second,) = gf.autograd.grad(first, x, create_graph=True)
    (third,) = gf.autograd.grad(second, x)
    assert third.item() == pytest.approx(-np.cos(0.7))


def test_hessian_of_a_quadratic_form_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    matrix = gf.tensor(a, dtype=gf.float64)
    x = gf.tensor(rng.normal(size=3), dtype=gf.float64, requires_grad=True)
    (grad,) = gf.autograd.grad(x @ matrix @ x, x, create_graph=True)
    rows = [gf.autograd.grad(grad[i], x, retain_graph=True)[0].numpy() for i in range(3)]
    np.testing.assert_allclose(np.stack(rows), a + a.T, rtol=1e-12)


def test_autograd_grad_leaves_dot_grad_untouched():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    (g,) = gf.autograd.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_autograd_grad_of_an_unused_input_raises_unless_allow_unused():
    x = gf.tensor([1.0], requires_grad=True)
    unused = gf.tensor([1.0], requires_grad=True)
    with pytest.raises(GraphError, match="input 1 .* was not used.*allow_unused=True"):
        gf.autograd.grad((x * 2).sum(), [x, unused])
    gx, gu = gf.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_autograd_grad_with_respect_to_an_intermediate_tensor():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    (gh,) = gf.autograd.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.numpy(), [6.0, 12.0])


def test_backward_of_a_non_scalar_without_gradient_raises():
    x = gf.ones(2, 3, requires_grad=True)
    with pytest.raises(GraphError, match=r"implicitly created only for scalar outputs.*\[2, 3\]"):
        (x * 2).backward()


def test_backward_with_a_gradient_computes_a_vector_jacobian_product():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).backward(gf.tensor([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 0.0])


def test_autograd_backward_takes_several_roots_and_their_gradients():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    gf.autograd.backward([x * 2, (x * x).sum()], [gf.ones(2), None])
    np.testing.assert_allclose(x.grad.numpy(), [2 + 2, 2 + 4])


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(GraphError, match="does not require grad"):
        gf.ones(2).sum().backward()


def test_gradient_of_wrong_shape_raises():
    x = gf.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient 0 has shape \[2\] but output 0 has shape \[3\]"):
        (x * 2).backward(gf.ones(2))


def test_no_grad_records_nothing_and_works_as_a_decorator():
    x = gf.ones(2, requires_grad=True)
    with gf.no_grad():
        y = x * 2
        assert not gf.is_grad_enabled()
    assert gf.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad

    @gf.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert gf.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_set_grad_enabled():
    x = gf.ones(2, requires_grad=True)
    with gf.no_grad():
        with gf.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with gf.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert gf.is_grad_enabled()
    gf.set_grad_enabled(False)
    try:
        assert not gf.is_grad_enabled()
    finally:
        gf.set_grad_enabled(True)

    @gf.set_grad_enabled(False)
    def inner():
        return gf.is_grad_enabled()

    assert inner() is False and gf.is_grad_enabled()


def test_detach_shares_memory_and_version_but_not_history():
    x = gf.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad and d.is_leaf
    with gf.no_grad():
        d.add_(1)
    assert y._version == 1
    np.testing.assert_allclose(y.detach().numpy(), [3.0, 3.0, 3.0])


def test_detach_in_place_cuts_the_tensor_from_the_graph():
    x = gf.ones(2, requires_grad=True)
    y = x * 2
    y.detach_()
    assert y.is_leaf and not y.requires_grad


def test_requires_grad_cannot_be_cleared_on_a_non_leaf():
    y = gf.ones(2, requires_grad=True) * 2
    with pytest.raises(GraphError, match="only change requires_grad of leaf tensors"):
        y.requires_grad_(False)


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.retains_grad
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])


def test_grad_fn_names_the_op_and_links_to_its_inputs():
    x = gf.ones(2, requires_grad=True)
    y = x.exp() * 2
    assert y.grad_fn.name() == "MulBackward"
    (first, _), (second, _) = y.grad_fn.next_functions
    assert first.name() == "ExpBackward" and second is None
    assert "grad_fn=<MulBackward>" in repr(y)


def test_the_graph_is_freed_with_its_tensors():
    x = gf.ones(4, requires_grad=True)
    y = (x * 2).exp().sum()
    node = weakref.ref(y.grad_fn)
    del y
    gc.collect()
    assert node() is None


def test_multi_use_of_an_intermediate_gets_the_sum_of_both_paths():
    x = gf.tensor(2.0, dtype=gf.float64, requires_grad=True)
    h = x * x
    y = h * h + h  # d/dx = (2h + 1) * 2x
    y.backward()
    assert x.grad.item() == pytest.approx((2 * 4 + 1) * 4)


def test_gradcheck_reports_a_wrong_gradient():
    from gradflow.autograd.function import Function
    from gradflow.errors import GradcheckError

    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x  # should be 2x

    x = gf.randn(3, dtype=gf.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        gf.autograd.gradcheck(WrongSquare.apply, (x,))
    assert gf.autograd.gradcheck(WrongSquare.apply, (x,), raise_exception=False) is False


def test_backward_returning_a_gradient_of_the_wrong_shape_names_the_function():
    from gradflow.autograd.function import Function

    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return gf.ones(5, dtype=grad.dtype)

    with pytest.raises(GraphError, match=r"BadShapeBackward.*shape \[5\].*input of shape \[3\]"):
        BadShape.apply(gf.ones(3, requires_grad=True)).sum().backward()


def test_gradgradcheck_reports_a_wrong_second_derivative():
    from gradflow.autograd.function import Function
    from gradflow.errors import GradcheckError

    class CubeWithFrozenBackward(Function):
        """Right first derivative, but its backward is not differentiable in x (detached)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x.detach() ** 2

    x = gf.randn(3, dtype=gf.float64, requires_grad=True)
    assert gf.autograd.gradcheck(CubeWithFrozenBackward.apply, (x,))
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gf.autograd.gradgradcheck(CubeWithFrozenBackward.apply, (x,))


def test_an_unshared_leaf_gradient_is_adopted_and_a_shared_one_copied():
    returned = []

    class Double(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            result = grad * 2
            returned.append(weakref.ref(result))
            return result

    x = gf.ones(3, requires_grad=True)
    Double.apply(x).sum().backward()
    assert returned[0]() is x.grad  # nothing else held it: no copy

    kept = []

    class DoubleAndKeep(Double):
        @staticmethod
        def backward(ctx, grad):
            result = grad * 2
            kept.append(result)  # someone else holds the gradient: .grad must not alias it
            return result

    y = gf.ones(3, requires_grad=True)
    DoubleAndKeep.apply(y).sum().backward()
    assert y.grad is not kept[0] and not np.shares_memory(y.grad.numpy(), kept[0].numpy())
    kept[0].add_(1)
    assert y.grad.tolist() == [2.0, 2.0, 2.0]


def test_backward_inputs_accumulates_into_non_leaf_inputs_and_skips_other_leaves():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    w = gf.tensor([3.0, 4.0], requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append("x"))
    y = x * 2
    (y * w).sum().backward(inputs=[y, w])
    assert y.grad.tolist() == [3.0, 4.0] and w.grad.tolist() == [2.0, 4.0]
    assert x.grad is None and seen == []  # x was not asked for: neither computed nor hooked
    with pytest.raises(GraphError, match="cannot be empty"):
        (x * 2).sum().backward(inputs=[])


def test_autograd_grad_returns_a_tuple():
    x = gf.tensor([1.0], requires_grad=True)
    assert isinstance(gf.autograd.grad((x * x).sum(), [x]), tuple)


def test_grad_accumulates_in_place_into_a_grad_the_user_holds():
    p = gf.tensor([1.0, 1.0], requires_grad=True)
    (p * 2).sum().backward()
    held = p.grad
    (p * 3).sum().backward()
    assert held is p.grad and held.tolist() == [5.0, 5.0]  # as torch: the held reference sees the sum


def test_retain_grad_sees_the_gradient_after_every_hook_whatever_the_order():
    x = gf.tensor([1.0, 1.0], requires_grad=True)
    y = x * 1
    y.retain_grad()
    y.register_hook(lambda grad: grad * 10)
    y.sum().backward()
    assert y.grad.tolist() == [10.0, 10.0] and x.grad.tolist() == [10.0, 10.0]


def test_retained_grad_stays_differentiable_under_create_graph():
    x = gf.tensor([2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    (y * y).sum().backward(create_graph=True)  # y.grad = 2 y = 2 x^2
    assert y.grad.grad_fn is not None
    (second,) = gf.autograd.grad(y.grad.sum(), x)
    assert second.tolist() == [8.0]  # d(2 x^2)/dx = 4 x


def test_grad_setter_refuses_another_dtype():
    p = gf.tensor([1.0], requires_grad=True)
    with pytest.raises(gf.errors.DtypeError, match="float64 but the tensor has dtype float32"):
        p.grad = gf.tensor([1.0], dtype=gf.float64)
