"""Ops called without a Tensor operand: add/sub/mul/div make a 0-d tensor of two numbers, as PyTorch does;
every other op raises a typed TypeError naming the op, the argument and the fix."""

from __future__ import annotations

import pytest

import gradflow as gf
from gradflow.errors import ArgumentTypeError, GradflowError

CASES = [
    ("add", lambda: gf.add([1], 2), "list"),
    ("sub", lambda: gf.sub(1.5, [2]), "float"),
    ("pow", lambda: gf.pow(2, 3), "int"),
    ("remainder", lambda: gf.remainder(5, 2), "int"),
    ("maximum", lambda: gf.maximum(1, 2), "int"),
    ("eq", lambda: gf.eq(1, 2), "int"),
    ("lt", lambda: gf.lt([1], [2]), "list"),
    ("exp", lambda: gf.exp(1.0), "float"),
    ("neg", lambda: gf.neg(1), "int"),
    ("relu", lambda: gf.relu(1.0), "float"),
    ("softmax", lambda: gf.softmax(1.0, 0), "float"),
]


@pytest.mark.parametrize(("op", "call", "kind"), CASES, ids=[case[0] for case in CASES])
def test_an_op_without_a_tensor_operand_raises_the_typed_error(op, call, kind):
    with pytest.raises(ArgumentTypeError) as caught:
        call()
    message = str(caught.value)
    assert message.startswith(f"{op}(): argument 'input' (position 1) must be a Tensor, not {kind};")
    assert f"gradflow.{op}(gradflow.tensor(" in message  # the fix
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, GradflowError)


def test_one_tensor_operand_is_enough_and_numbers_still_promote_weakly():
    assert gf.add(gf.tensor(1), 2).tolist() == 3
    assert gf.add(1, gf.tensor([1.0, 2.0])).tolist() == [2.0, 3.0]
    assert gf.eq(gf.tensor([1, 2]), 2).tolist() == [False, True]


NUMBER_CASES = [
    ("add", (1, 2)),
    ("add", (1.5, 2)),
    ("sub", (1, 2)),
    ("mul", (True, 2)),
    ("mul", (2.0, 3)),
    ("div", (1, 2)),
    ("true_divide", (3, 2)),
    ("floor_divide", (7, 2)),
]


@pytest.mark.parametrize(("op", "numbers"), NUMBER_CASES, ids=[f"{op}{numbers}" for op, numbers in NUMBER_CASES])
def test_arithmetic_of_two_numbers_gives_a_0d_tensor_like_torch(op, numbers):
    torch = pytest.importorskip("torch")
    expected = getattr(torch, op)(*numbers)
    result = getattr(gf, op)(*numbers)
    assert isinstance(result, gf.Tensor) and result.shape == () and result.device == gf.get_default_device()
    assert str(result.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    assert result.item() == expected.item()
