"""How a custom Function treats its inputs, as PyTorch does: arguments bound to positions with their
defaults, keyword-only arguments refused, extra None gradients accepted, needs_input_grad under no_grad,
and inputs returned as they are (non-differentiable marks, in-place writes).
"""

from __future__ import annotations

import pytest

import gradflow as gf
from gradflow.autograd import Function
from gradflow.errors import InplaceError


class ScaleWithDefault(Function):
    """Old-style forward with a defaulted argument; backward returns a None for it, as PyTorch code does."""

    @staticmethod
    def forward(ctx, x, scale=2.0):
        ctx.scale = scale
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def test_trailing_none_gradients_beyond_the_inputs_are_accepted(device):
    # The caller leaves the default out: one input, two gradients (the extra one None). PyTorch accepts it.
    x = gf.ones(3, device=device, requires_grad=True)
    ScaleWithDefault.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]

    class TooMany(Function):  # an extra gradient that is not None is still an error, as in PyTorch
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2, grad

    out = TooMany.apply(gf.ones(2, device=device, requires_grad=True))
    with pytest.raises(gf.errors.GraphError, match=r"TooManyBackward.*expected 1, got 2"):
        out.sum().backward()


def test_keyword_only_forward_argument_raises_instead_of_being_dropped():
    class Shift(Function):
        @staticmethod
        def forward(ctx, x, *, shift=0.0):
            return x + shift

        @staticmethod
        def backward(ctx, grad):
            return grad

    # PyTorch raises a TypeError; the value must never be silently ignored (the output would lack the shift).
    with pytest.raises(TypeError, match="keyword-only argument.*'shift'"):
        Shift.apply(gf.ones(2, requires_grad=True), shift=5.0)


def test_setup_context_receives_defaults_bound_to_positions():
    class Scale(Function):
        @staticmethod
        def forward(x, scale=3.0):
            return x * scale

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.scale = inputs[1]  # PyTorch binds the default, so inputs has two entries

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.scale, None

    x = gf.ones(2, requires_grad=True)
    Scale.apply(x).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_needs_input_grad_in_forward_matches_torch_under_no_grad():
    torch = pytest.importorskip("torch")
    seen = {}

    def make(base, key):
        class Probe(base):
            @staticmethod
            def forward(ctx, x, y, k):
                seen[key] = tuple(ctx.needs_input_grad)
                return x * y * k

            @staticmethod
            def backward(ctx, grad):
                return grad, None, None

        return Probe

    with torch.no_grad():
        make(torch.autograd.Function, "torch").apply(torch.ones(1, requires_grad=True), torch.ones(1), 2)
    with gf.no_grad():
        make(Function, "gradflow").apply(gf.ones(1, requires_grad=True), gf.ones(1), 2)
    assert seen["gradflow"] == seen["torch"] == (True, False, False)


class PassMask(Function):
    """Returns its second input as it is, marked non-differentiable."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.mark_non_differentiable(mask)
        return x * 2, mask

    @staticmethod
    def backward(ctx, grad, grad_mask):
        return grad * 2, None


def test_mark_non_differentiable_applies_to_an_input_returned_as_is():
    x = gf.ones(2, requires_grad=True)
    mask = gf.ones(2, requires_grad=True)
    value, passed = PassMask.apply(x, mask)
    assert value.requires_grad and value.grad_fn is not None
    assert not passed.requires_grad and passed.grad_fn is None  # as in PyTorch
    value.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0] and mask.grad is None


class Identity(Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_in_place_on_an_input_returned_as_is_is_refused():
    # The output shares the leaf's memory: writing into it would silently change the leaf (PyTorch raises).
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = Identity.apply(x)
    with pytest.raises(InplaceError, match="view"):
        y.add_(1)
    assert x.tolist() == [1.0, 2.0]
    plain = gf.tensor([1.0, 2.0])  # without a graph the write goes through to the input, as in PyTorch
    Identity.apply(plain).add_(1)
    assert plain.tolist() == [2.0, 3.0]
