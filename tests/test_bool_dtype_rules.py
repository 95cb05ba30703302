"""Bool operands follow PyTorch 2.13's dtype rules (found by the differential fuzz suite, issue 12).

square(bool) is int64, add keeps bool and takes ``bool(alpha)``, ``bool ** bool`` stays bool, and where
PyTorch refuses (relu of bool, a float or bool alpha that does not fit the result, the base's gradient
under a bool exponent tensor) gradflow raises a typed error.
"""

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import ArgumentTypeError, DtypeError

torch = pytest.importorskip("torch")

MASK = [True, False, True, False]


def _same(ours, theirs):
    assert str(ours.dtype).removeprefix("gradflow.") == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_square_of_bool_is_int64():
    _same(gf.square(gf.tensor(MASK)), torch.square(torch.tensor(MASK)))
    _same(gf.tensor(MASK).square(), torch.tensor(MASK).square())
    # integers keep their own dtype
    _same(gf.square(gf.tensor([3, -2], dtype=gf.int32)), torch.square(torch.tensor([3, -2], dtype=torch.int32)))


@pytest.mark.parametrize("alpha", [2, -1, 0, True, False])
def test_add_of_bools_stays_bool_with_bool_of_alpha(alpha):
    a, b = [True, False, False, True], [True, True, False, False]
    _same(gf.add(gf.tensor(a), gf.tensor(b), alpha=alpha), torch.add(torch.tensor(a), torch.tensor(b), alpha=alpha))
    _same(gf.add(gf.tensor(a), True, alpha=alpha), torch.add(torch.tensor(a), True, alpha=alpha))


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.add(lib.tensor([1, 2]), lib.tensor([3, 4]), alpha=2.0),
        lambda lib: lib.add(lib.tensor(MASK), lib.tensor(MASK), alpha=2.5),
        lambda lib: lib.sub(lib.tensor([1, 2]), lib.tensor([3, 4]), alpha=0.5),
        lambda lib: lib.rsub(lib.tensor([1, 2]), lib.tensor([3, 4]), alpha=2.0),
        lambda lib: lib.add(lib.tensor([1, 2]), lib.tensor([3, 4]), alpha=True),
        lambda lib: lib.sub(lib.tensor([1.0, 2.0]), lib.tensor([3.0, 4.0]), alpha=True),
    ],
    ids=["int-float-alpha", "bool-float-alpha", "sub-int-float", "rsub-int", "int-bool-alpha", "float-bool-alpha"],
)
def test_alpha_that_does_not_fit_the_result_raises(make):
    with pytest.raises(RuntimeError):
        make(torch)
    with pytest.raises(ArgumentTypeError, match="alpha"):
        make(gf)


def test_alpha_that_fits_still_computes():
    for make in (
        lambda lib: lib.add(lib.tensor([1, 2]), 1.5, alpha=2),  # float result: an int alpha is fine
        lambda lib: lib.add(lib.tensor([1.0, 2.0]), lib.tensor([1, 2]), alpha=2.5),
        lambda lib: lib.rsub(lib.tensor([1, 2]), 5, alpha=3),
    ):
        _same(make(gf), make(torch))


@pytest.mark.parametrize("exponent", [True, False])
def test_bool_to_a_bool_power_stays_bool(exponent):
    _same(gf.tensor(MASK) ** exponent, torch.tensor(MASK) ** exponent)
    # PyTorch's CPU build has no bool ** bool-tensor kernel; the value it would give is the same rule
    base, power = gf.tensor([True, True, False, False]), gf.tensor([True, False, True, False])
    _same(gf.pow(base, power), torch.tensor([True, True, False, True]))
    _same(gf.pow(True, power), torch.tensor([True, True, True, True]))


def test_relu_of_bool_raises():
    with pytest.raises(RuntimeError, match="Boolean"):
        torch.relu(torch.tensor(MASK))
    for call in (gf.relu, gf.nn.functional.relu, gf.nn.ReLU(), lambda t: t.relu()):
        with pytest.raises(DtypeError, match="relu"):
            call(gf.tensor(MASK))
    _same(gf.relu(gf.tensor([-1, 2])), torch.relu(torch.tensor([-1, 2])))


def test_pow_with_a_bool_exponent_tensor_refuses_the_base_gradient_in_backward():
    values = [1.5, 2.0, -0.5, 3.0]
    x = torch.tensor(values, requires_grad=True)
    y = x ** torch.tensor(MASK)
    with pytest.raises(RuntimeError, match="Subtraction"):
        y.sum().backward()
    ours = gf.tensor(values, requires_grad=True)
    out = ours ** gf.tensor(MASK)  # the forward computes, as PyTorch's does
    np.testing.assert_allclose(out.detach().numpy(), y.detach().numpy())
    with pytest.raises(DtypeError, match="bool exponent"):
        out.sum().backward()
    # a Python bool exponent keeps its gradient: d(x ** True)/dx = 1
    ours = gf.tensor(values, requires_grad=True)
    (ours**True).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), np.ones(4, dtype=np.float32))


def test_subtraction_with_bool_raises_like_torch():
    for make in (
        lambda lib: lib.tensor([1, 2]) - lib.tensor([True, False]),
        lambda lib: lib.tensor([1.0, 2.0]) - lib.tensor([True, False]),
        lambda lib: 1 - lib.tensor([True, False]),
    ):
        with pytest.raises(RuntimeError, match="Subtraction"):
            make(torch)
        with pytest.raises(DtypeError, match="Subtraction"):
            make(gf)
