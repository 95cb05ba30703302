"""gradgradcheck checks the create_graph backward against the first-order gradient, not against itself.

A fused op may compute its first-order backward one way (a kernel, grad mode off) and its
create_graph backward another way (recorded ops). Differentiating the recorded path against
finite differences of the same recorded path cannot see a wrong formula there; gradgradcheck
takes plain backward (the path gradcheck verifies) as the reference instead.
"""

from __future__ import annotations

import pytest

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck, is_grad_enabled
from gradflow.errors import GradcheckError


def _cube_with_create_graph_branch(wrong):
    """x**3 whose backward is right with grad mode off and ``wrong(grad, x)`` under create_graph."""

    class Cube(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            if is_grad_enabled():  # create_graph=True: the recorded (here deliberately wrong) formula
                return wrong(grad, x)
            return grad * 3 * x * x

    return Cube.apply


WRONG_SECOND_ORDER = {
    # d/dx should be 6 x g: this branch gives 6.6 x g, and its value is 10% off too.
    "scaled": lambda grad, x: grad * 3.3 * x * x,
    # The value is off by a constant: the derivatives of the recorded graph are those of the true one.
    "offset": lambda grad, x: grad * (3 * x * x + 1),
    # Same value, but the graph does not depend on x: d/dx of the gradient is lost.
    "detached": lambda grad, x: grad * 3 * x.detach() * x.detach(),
}


@pytest.mark.parametrize("name", sorted(WRONG_SECOND_ORDER))
def test_a_wrong_create_graph_formula_fails_gradgradcheck(name, device):
    cube = _cube_with_create_graph_branch(WRONG_SECOND_ORDER[name])
    x = gf.tensor([0.5, -1.25, 2.0], dtype=gf.float64, device=device, requires_grad=True)
    assert gradcheck(cube, (x,))  # first order is right
    with pytest.raises(GradcheckError, match="create_graph|Jacobian mismatch"):
        gradgradcheck(cube, (x,))
    assert gradgradcheck(cube, (x,), raise_exception=False) is False


@pytest.mark.parametrize("name", ["scaled", "offset"])
def test_checking_the_recorded_path_against_itself_misses_a_wrong_formula(name, device):
    """Why the reference must be plain backward: the wrong recorded path is self-consistent."""
    cube = _cube_with_create_graph_branch(WRONG_SECOND_ORDER[name])
    x = gf.tensor([0.5, -1.25, 2.0], dtype=gf.float64, device=device, requires_grad=True)
    v = gf.tensor([1.0, -0.5, 0.25], dtype=gf.float64, device=device, requires_grad=True)

    def recorded_vjp(x, v):
        with gf.enable_grad():
            return gf.autograd.grad(cube(x), x, v, create_graph=True)[0]

    assert gradcheck(recorded_vjp, (x, v))  # the old gradgradcheck's comparison: blind to the error
    with pytest.raises(GradcheckError):
        gradgradcheck(cube, (x,), (v,))


def test_a_right_create_graph_formula_passes(device):
    cube = _cube_with_create_graph_branch(lambda grad, x: grad * 3 * x * x)
    x = gf.tensor([0.5, -1.25, 2.0], dtype=gf.float64, device=device, requires_grad=True)
    assert gradgradcheck(cube, (x,))


def test_unused_inputs_get_zero_gradients_on_both_paths(device):
    x = gf.tensor([0.5, -1.25], dtype=gf.float64, device=device, requires_grad=True)
    y = gf.tensor([2.0, 3.0], dtype=gf.float64, device=device, requires_grad=True)
    assert gradgradcheck(lambda a, b: a * a, (x, y))
