"""Errors are typed, one line, and name the op and the fix; where PyTorch 2.13 computes, gradflow computes the same.

Each case runs the same call on gradflow and on torch (skipped without torch): when torch raises, gradflow must
raise a ``gradflow.errors`` type that is also the built-in a torch user catches (RuntimeError, TypeError, ...);
when torch returns, gradflow returns the same values and dtype, without a RuntimeWarning.
"""

from __future__ import annotations

import ast
import builtins
import math
import pathlib
import warnings

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import DtypeError, GradflowError

NAN, INF = math.nan, math.inf

# (id, call on a module m (gradflow or torch), a word the message must contain)
CASES = [
    # silent acceptance: torch raises
    ("full_nan_int64", lambda m: m.full((2,), NAN, dtype=m.int64), "full"),
    ("full_inf_int64", lambda m: m.full((2,), INF, dtype=m.int64), "full"),
    ("full_300_uint8", lambda m: m.full((1,), 300, dtype=m.uint8), "full"),
    ("full_300_int8", lambda m: m.full((1,), 300, dtype=m.int8), "full"),
    ("full_2e70_int64", lambda m: m.full((1,), 2**70, dtype=m.int64), "full"),
    ("full_1e300_float32", lambda m: m.full((1,), 1e300, dtype=m.float32), "full"),
    ("ones_float_size", lambda m: m.ones(2.5), "ones"),
    ("ones_float_in_tuple", lambda m: m.ones((2, 2.5)), "ones"),
    ("zeros_bool_size", lambda m: m.zeros(True), "zeros"),
    ("zeros_negative", lambda m: m.zeros(-1), "zeros"),
    ("zeros_2e62", lambda m: m.zeros(2**62), "zeros"),
    ("eye_negative", lambda m: m.eye(-1), "eye"),
    ("eye_negative_m", lambda m: m.eye(2, -1), "eye"),
    ("eye_float", lambda m: m.eye(2.5), "eye"),
    ("arange_inf", lambda m: m.arange(0, INF), "arange"),
    ("tensor_2e70", lambda m: m.tensor([2**70]), "tensor"),
    ("tensor_2e63", lambda m: m.tensor([2**63]), "tensor"),
    ("tensor_nan_int64", lambda m: m.tensor([NAN], dtype=m.int64), "tensor"),
    ("tensor_300_uint8", lambda m: m.tensor([300], dtype=m.uint8), "tensor"),
    ("tensor_ragged", lambda m: m.tensor([[1, 2], [3]]), "tensor"),
    ("int_floordiv_zero", lambda m: m.tensor([1, 2]) // 0, "floor_divide"),
    ("int_mod_zero", lambda m: m.tensor([1, 2]) % 0, "remainder"),
    ("int_floordiv_zero_tensor", lambda m: m.tensor([1, 2]) // m.tensor([0, 1]), "floor_divide"),
    ("int_rfloordiv_zero", lambda m: 1 // m.tensor([0]), "floor_divide"),
    ("uint8_floordiv_zero", lambda m: m.tensor([1], dtype=m.uint8) // 0, "floor_divide"),
    ("int_div_trunc_zero", lambda m: m.div(m.tensor([1]), 0, rounding_mode="trunc"), "div"),
    ("int_remainder_zero_tensor", lambda m: m.remainder(m.tensor([1]), m.tensor([0])), "remainder"),
    ("bool_floordiv", lambda m: m.tensor([True]) // m.tensor([True]), "floor_divide"),
    ("view_non_contiguous", lambda m: m.ones(2, 3).t().view(6), "view"),
    ("view_strided", lambda m: m.ones(4, 3)[::2].view(6), "view"),
    # raw NumPy errors before
    ("neg_bool", lambda m: -m.tensor([True]), "neg"),
    ("bool_sub_bool", lambda m: m.tensor([True]) - m.tensor([False]), "sub"),
    ("bool_sub_int", lambda m: m.tensor([True]) - 1, "sub"),
    ("int_rsub_bool", lambda m: 1 - m.tensor([True]), "sub"),
    ("abs_bool", lambda m: m.tensor([True]).abs(), "abs"),
    ("int_pow_negative_scalar", lambda m: m.tensor([2, 3]) ** -1, "pow"),
    ("sum_float_dim", lambda m: m.ones(2, 2).sum(dim=1.0), "sum"),
    ("sum_float_dims", lambda m: m.ones(2, 2).sum(dim=(1.0,)), "sum"),
    ("mean_float_dim", lambda m: m.ones(2, 2).mean(dim=1.0), "mean"),
    ("chunk_zero", lambda m: m.ones(3).chunk(0), "chunk"),
    ("item_of_many", lambda m: m.ones(3).item(), "item"),
    ("to_dtype_name_string", lambda m: m.ones(2).to("float64"), "to"),
    ("to_numpy_type", lambda m: m.ones(2).to(np.float64), "to"),
    ("to_numpy_dtype", lambda m: m.ones(2).to(np.dtype("float64")), "to"),
    ("to_unknown_device", lambda m: m.ones(2).to("tpu"), "to"),
    ("len_0d", lambda m: len(m.tensor(1.0)), "len"),
    # torch computes: gradflow computes the same, silently
    ("full_minus1_uint8", lambda m: m.full((1,), -1, dtype=m.uint8), None),
    ("full_2_5_int64", lambda m: m.full((2,), 2.5, dtype=m.int64), None),
    ("full_inf_float16", lambda m: m.full((1,), INF, dtype=m.float16), None),
    ("tensor_minus_2e63", lambda m: m.tensor([-(2**63)]), None),
    ("tensor_1e300_float32", lambda m: m.tensor([1e300], dtype=m.float32), None),
    ("tensor_2_5_int64", lambda m: m.tensor([2.5, -2.5], dtype=m.int64), None),
    ("tensor_nan_bool", lambda m: m.tensor([NAN, 0.0], dtype=m.bool), None),
    ("tensor_empty_rows", lambda m: m.tensor([[], []]), None),
    ("ones_numpy_int", lambda m: m.ones(np.int64(2)), None),
    ("zeros_tensor_size", lambda m: m.zeros(m.tensor(2)), None),
    ("eye_zero", lambda m: m.eye(0), None),
    ("int_floordiv_empty", lambda m: m.tensor([], dtype=m.int64) // 0, None),
    ("int_floordiv", lambda m: m.tensor([7, -7, 7, -7]) // m.tensor([2, 2, -2, -2]), None),
    ("int_mod", lambda m: m.tensor([7, -7, 7, -7]) % m.tensor([2, 2, -2, -2]), None),
    ("int_div_zero_true", lambda m: m.tensor([1, 0, -1]) / 0, None),
    ("float_floordiv_zero", lambda m: m.tensor([1.0, -2.0, 0.0]) // 0, None),
    ("float_mod_zero", lambda m: m.tensor([1.0, -2.0, 0.0]) % 0, None),
    ("float_div_zero_tensor", lambda m: m.tensor([1.0, -1.0, 0.0]) / m.tensor([0.0, 0.0, 0.0]), None),
    ("bool_div_false", lambda m: m.tensor([True]) / m.tensor([False]), None),
    ("int_mod_true", lambda m: m.tensor([5]) % m.tensor([True]), None),
    ("int_pow_negative_tensor", lambda m: m.tensor([0, 1, -1, 2, -2, 0]) ** m.tensor([-1, -1, -1, -2, -3, 0]), None),
    (
        "int32_pow_negative",
        lambda m: m.tensor([1, -1, 3], dtype=m.int32) ** m.tensor([-2, -3, -1], dtype=m.int32),
        None,
    ),
    ("int_pow_negative_float", lambda m: m.tensor([2]) ** -1.0, None),
    ("sign_bool", lambda m: m.sign(m.tensor([True, False])), None),
    ("sign_uint8", lambda m: m.sign(m.tensor([1, 0], dtype=m.uint8)), None),
    ("bool_add_bool", lambda m: m.tensor([True, False]) + m.tensor([True, False]), None),
    ("log_zero", lambda m: m.log(m.tensor([0.0, 1.0])), None),
    ("log_negative", lambda m: m.log(m.tensor([-1.0])), None),
    ("log2_zero", lambda m: m.log2(m.tensor([0.0])), None),
    ("sqrt_negative", lambda m: m.sqrt(m.tensor([-1.0])), None),
    ("rsqrt_zero", lambda m: m.rsqrt(m.tensor([0.0])), None),
    ("reciprocal_zero", lambda m: m.reciprocal(m.tensor([0.0, -0.0])), None),
    ("exp_overflow", lambda m: m.exp(m.tensor([1000.0])), None),
    ("asin_outside", lambda m: m.asin(m.tensor([2.0])), None),
    ("causal_mask_log", lambda m: m.log(m.tril(m.ones(3, 3))), None),
    ("sum_numpy_dim", lambda m: m.ones(2, 2).sum(dim=np.int64(1)), None),
    ("view_compatible_strides", lambda m: m.ones(2, 3).t().view(3, 1, 2), None),
    ("view_strided_rows", lambda m: m.ones(4, 3)[::2].view(2, 3), None),
    ("to_python_float", lambda m: m.ones(2).to(float), None),
    ("to_python_int", lambda m: m.ones(2).to(int), None),
    ("to_python_bool", lambda m: m.ones(2).to(bool), None),
    ("to_none", lambda m: m.ones(2).to(None), None),
    ("to_keyword_float", lambda m: m.ones(2).to(dtype=float), None),
]

# torch's exception class -> the built-in a user of torch catches it as
_BUILTIN_OF = [NotImplementedError, OverflowError, ZeroDivisionError, IndexError, TypeError, ValueError, RuntimeError]


def _as_numpy(result):
    if isinstance(result, (tuple, list)):
        return [_as_numpy(r) for r in result]
    return result.detach().cpu().numpy() if hasattr(result, "detach") else np.asarray(result)


def _dtype_name(result) -> str:
    return str(result.dtype).split(".")[-1]


@pytest.mark.parametrize("call, word", [pytest.param(c, w, id=i) for i, c, w in CASES])
def test_matches_torch_or_raises_typed_error(call, word):
    torch = pytest.importorskip("torch")
    try:
        expected = call(torch)
        torch_error = None
    except Exception as error:  # noqa: BLE001 - any torch error is the expectation
        torch_error = error
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if torch_error is not None:
            catch = next(kind for kind in _BUILTIN_OF if isinstance(torch_error, kind))
            catch = RuntimeError if catch is NotImplementedError else catch  # a torch NotImplementedError
            with pytest.raises(GradflowError) as info:
                call(gf)
            assert isinstance(info.value, catch), f"{type(info.value).__name__} is not a {catch.__name__}"
            message = str(info.value)
            assert "\n" not in message and word in message, message
            assert ";" in message or "use" in message, f"the message should say what to do: {message}"
            return
        result = call(gf)
    assert word is None, "torch computes this case"
    assert _dtype_name(result) == _dtype_name(expected)
    np.testing.assert_array_equal(_as_numpy(result), _as_numpy(expected))


def test_raise_sites_use_typed_errors():
    """No `raise ValueError(...)` (or another plain built-in) in gradflow/: every deliberate error is typed."""
    # Built-ins that are the protocol itself, each with its reason.
    allowed = {
        "AttributeError": "__getattr__/__setattr__: hasattr() and getattr(default) rely on exactly AttributeError",
        "NotImplementedError": "abstract methods of base classes (Function, Dataset, Sampler), as in torch",
        "BufferError": "the DLPack protocol's error for tensors that cannot be exported",
        "FileNotFoundError": "OS errors of checkpoint paths: callers catch OSError",
        "IsADirectoryError": "OS errors of checkpoint paths: callers catch OSError",
    }
    root = pathlib.Path(gf.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = getattr(target, "id", None)
                if isinstance(getattr(builtins, name or "", None), type) and name not in allowed:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: raise {name}")
    assert not found, "use a gradflow.errors type instead:\n" + "\n".join(found)


def test_every_error_type_is_also_a_builtin():
    """Each typed error is something a Python user already catches."""
    for name in dir(gf.errors):
        kind = getattr(gf.errors, name)
        if isinstance(kind, type) and issubclass(kind, GradflowError) and kind is not GradflowError:
            assert any(
                issubclass(kind, base)
                for base in (
                    ValueError,
                    TypeError,
                    LookupError,
                    RuntimeError,
                    ArithmeticError,
                    MemoryError,
                    ImportError,
                )
            ), name


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_and_argmin_of_bool_raise_the_typed_error_like_torch(op):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        getattr(torch, op)(torch.tensor([True, False]))
    with pytest.raises(DtypeError, match=rf"^{op}: bool inputs are not supported; convert first"):
        getattr(gf, op)(gf.tensor([True, False]))
    assert getattr(gf, op)(gf.tensor([True, False]).long()).item() == getattr(torch, op)(torch.tensor([1, 0])).item()
