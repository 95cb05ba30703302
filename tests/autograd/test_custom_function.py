"""Custom autograd Functions with PyTorch's shape: forward/backward, ctx API, checks, devices, double backward."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import Function, gradcheck, gradgradcheck
from gradflow.errors import GraphError, InplaceError


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class ScaledMul(Function):
    """a * b * scale, with a non-tensor argument that gets a None gradient."""

    @staticmethod
    def forward(ctx, a, b, scale=2.0):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return a * b * scale

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = grad * b * ctx.scale if ctx.needs_input_grad[0] else None
        grad_b = grad * a * ctx.scale if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


class MaxWithIndex(Function):
    """Two outputs, one of them a non-differentiable integer index."""

    @staticmethod
    def forward(ctx, x):
        value, index = x.max(0, keepdim=True)
        ctx.mark_non_differentiable(index)
        ctx.save_for_backward(index)
        ctx.size = x.shape[0]
        return value, index

    @staticmethod
    def backward(ctx, grad_value, grad_index):
        (index,) = ctx.saved_tensors
        return gf.zeros(ctx.size, dtype=grad_value.dtype).scatter(0, index, grad_value)


def test_forward_backward_and_grad_fn_name(device):
    x = gf.randn(4, dtype=gf.float64, device=device, requires_grad=True)
    y = Exp.apply(x)
    assert y.grad_fn.name() == "ExpBackward" and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.exp(x.detach().cpu().numpy()))


def test_gradcheck_and_double_backward(device):
    a = gf.randn(3, dtype=gf.float64, device=device, requires_grad=True)
    b = gf.randn(3, dtype=gf.float64, device=device, requires_grad=True)
    assert gradcheck(Exp.apply, (a,)) and gradgradcheck(Exp.apply, (a,))
    assert gradcheck(lambda p, q: ScaledMul.apply(p, q, 3.0), (a, b))
    assert gradgradcheck(lambda p, q: ScaledMul.apply(p, q, 3.0), (a, b))


def test_create_graph_through_custom_backward():
    x = gf.tensor([0.5, -1.0], dtype=gf.float64, requires_grad=True)
    (first,) = gf.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    (second,) = gf.autograd.grad(first.sum(), x)
    np.testing.assert_allclose(second.numpy(), np.exp([0.5, -1.0]))


def test_keyword_arguments_bind_to_positions():
    a = gf.tensor([1.0, 2.0], requires_grad=True)
    b = gf.tensor([3.0, 4.0], requires_grad=True)
    ScaledMul.apply(a, b=b, scale=0.5).sum().backward()
    assert a.grad.tolist() == [1.5, 2.0] and b.grad.tolist() == [0.5, 1.0]


def test_needs_input_grad_is_visible_in_forward_and_backward():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen.append(ctx.needs_input_grad)
            return a + b

        @staticmethod
        def backward(ctx, grad):
            seen.append(ctx.needs_input_grad)
            return grad, None

    Probe.apply(gf.ones(2, requires_grad=True), gf.ones(2)).sum().backward()
    assert seen == [(True, False), (True, False)]


def test_forward_runs_without_recording():
    class Inspect(Function):
        @staticmethod
        def forward(ctx, x):
            inner = x * 2
            assert not inner.requires_grad and not gf.is_grad_enabled()
            return inner

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    out = Inspect.apply(gf.ones(2, requires_grad=True))
    assert out.grad_fn.name() == "InspectBackward"


def test_no_node_without_grad():
    y = Exp.apply(gf.ones(2))
    assert y.grad_fn is None and not y.requires_grad
    with gf.no_grad():
        assert Exp.apply(gf.ones(2, requires_grad=True)).grad_fn is None


def test_mark_non_differentiable_outputs():
    x = gf.tensor([1.0, 3.0, 2.0], requires_grad=True)
    value, index = MaxWithIndex.apply(x)
    assert value.requires_grad and not index.requires_grad and index.grad_fn is None
    (value * 10).sum().backward()
    assert x.grad.tolist() == [0.0, 10.0, 0.0]


def test_set_materialize_grads_false_passes_none():
    received = []

    class TwoOut(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 1, x * 2

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            received.append((grad_a is None, grad_b is None))
            return grad_a if grad_a is not None else gf.zeros(2)

    first, _ = TwoOut.apply(gf.ones(2, requires_grad=True))
    first.sum().backward()
    assert received == [(False, True)]

    class TwoOutDefault(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1, x * 2

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            received.append(grad_b.tolist())
            return grad_a

    first, _ = TwoOutDefault.apply(gf.ones(2, requires_grad=True))
    first.sum().backward()
    assert received[-1] == [0.0, 0.0]


def test_returning_an_input_gives_a_new_tensor():
    class Passthrough(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 3

    x = gf.ones(2, requires_grad=True)
    y = Passthrough.apply(x)
    assert y is not x and y.grad_fn is not None
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_setup_context_style():
    class Square(Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = gf.tensor([3.0], requires_grad=True)
    Square.apply(x).backward()
    assert x.grad.tolist() == [6.0]


def test_wrong_number_of_gradients_names_the_function():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad

    out = TooFew.apply(gf.ones(2, requires_grad=True), gf.ones(2, requires_grad=True))
    with pytest.raises(
        GraphError, match=r"TooFewBackward returned an incorrect number of gradients \(expected 2, got 1\)"
    ):
        out.sum().backward()


def test_wrong_gradient_shape_names_the_function():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, grad):
            return gf.ones(5)

    out = BadShape.apply(gf.ones(2, 3, requires_grad=True))
    with pytest.raises(GraphError, match=r"BadShapeBackward.*shape \[5\].*input of shape \[2, 3\]"):
        out.backward()


def test_gradient_for_a_non_tensor_input_raises():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(GraphError, match="position 1.*not a Tensor"):
        Wrong.apply(gf.ones(2, requires_grad=True), 2.0).sum().backward()


def test_non_tensor_gradient_raises_type_error():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return 2.0

    with pytest.raises(TypeError, match="WrongBackward returned a float"):
        Wrong.apply(gf.ones(2, requires_grad=True)).sum().backward()


def test_saved_tensors_are_version_checked():
    class SaveInput(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    base = gf.ones(2, requires_grad=True)
    x = base * 1
    out = SaveInput.apply(x)
    x.mul_(3)
    with pytest.raises(InplaceError, match="SaveInputBackward.*version 1; expected version 0"):
        out.sum().backward()


def test_save_for_backward_rejects_non_tensors():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(TypeError, match="argument 1 is a int"):
        Bad.apply(gf.ones(1, requires_grad=True))


def test_second_backward_without_retain_graph_raises():
    x = gf.ones(2, requires_grad=True)
    y = Exp.apply(x).sum()
    y.backward()
    with pytest.raises(GraphError, match="retain_graph=True"):
        y.backward()


def test_matches_pytorch_custom_function():
    torch = pytest.importorskip("torch")

    class TorchExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    values = np.random.default_rng(0).normal(size=5)
    x = gf.tensor(values, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    (Exp.apply(x) * x).sum().backward()
    (TorchExp.apply(tx) * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


class MulInPlace(Function):
    @staticmethod
    def forward(ctx, x, factor):
        x._data *= factor  # an in-place kernel, as a user's extension would write it
        ctx.mark_dirty(x)
        ctx.factor = factor
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def test_mark_dirty_makes_the_modified_input_the_output():
    base = gf.tensor([1.0, 2.0], requires_grad=True)
    x = base * 1
    version = x._version
    y = MulInPlace.apply(x, 3.0)
    assert y is x and x._version == version + 1
    assert x.grad_fn.name() == "MulInPlaceBackward"
    (x * x).sum().backward()
    assert base.grad.tolist() == [18.0, 36.0]  # d/d base of (3 base)^2


def test_mark_dirty_invalidates_earlier_saves_and_refuses_leaves():
    base = gf.tensor([1.0, 2.0], requires_grad=True)
    x = base * 1
    squared = x * x  # saves x at its current version
    MulInPlace.apply(x, 2.0)
    with pytest.raises(InplaceError):
        squared.sum().backward()
    with pytest.raises(InplaceError, match="leaf tensor that requires grad"):
        MulInPlace.apply(gf.ones(2, requires_grad=True), 2.0)
