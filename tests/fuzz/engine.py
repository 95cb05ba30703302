"""The differential engine: run one drawn case through gradflow and PyTorch and judge the outcome.

A ``FuzzSpec`` names an op, its gradflow and torch callables and a sampler. The sampler returns a
``Case`` whose ``args``/``kwargs`` hold ``Arr`` (an array that becomes a tensor on both sides, with
``grad=True`` when the gradient is compared) and plain Python values (passed as they are); a
``module`` builder makes the case a layer: the torch layer is built seeded, and gradflow's gets its
exact parameters, so both compute with the same weights and the parameters' gradients are compared.

``run_case`` returns an ``Outcome``: ``match`` (values, dtypes, shapes and NaN/inf positions agree,
forward and gradient), ``typed`` (both raise; ours is a ``GradflowError``) or a mismatch whose
``kind`` says what went wrong (``value``, ``grad``, ``dtype``, ``shape``, ``accepts`` where torch
raises and we do not, ``refuses`` where we raise a typed error and torch computes, ``untyped`` for
any other exception of ours). ``tests/fuzz/verdict.py`` decides which mismatches are deliberate or
known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import GradflowError

from .case import Arr, Case, Outcome

torch = pytest.importorskip("torch")  # the whole suite skips cleanly without PyTorch

FLOATS = ("float16", "float32", "float64")
INTS = ("int32", "int64")
ALL_DTYPES = ("bool", *INTS, *FLOATS)

# Tolerances as torch.testing.assert_close uses them, a little wider for float16's accumulations.
RTOL = {"float16": 2e-3, "float32": 2e-5, "float64": 1e-7}
ATOL = {"float16": 1e-3, "float32": 1e-5, "float64": 1e-9}


@dataclass
class FuzzSpec:
    """One op or layer under differential test."""

    name: str
    ours: Callable | None  # gradflow callable (None for a layer case: the module is called)
    theirs: Callable | None  # torch callable
    sample: Callable  # sample(draw, dtype) -> Case
    dtypes: tuple = FLOATS
    grad: bool = True  # compare gradients of the float ``Arr(grad=True)`` inputs
    scale: Callable | None = None  # scale(arrays) -> magnitude that widens atol (sums, products)
    tol: float = 1.0  # multiplies rtol/atol (ops whose algorithms round differently)

    def __repr__(self) -> str:
        return self.name


def torch_dtype(name: str):
    return getattr(torch, name)


def _to_torch(value, requires_grad):
    if isinstance(value, Arr):
        tensor = torch.from_numpy(np.array(value.value, copy=True))
        if requires_grad and value.grad:
            tensor.requires_grad_(True)
        return tensor
    if isinstance(value, (list, tuple)):
        return type(value)(_to_torch(v, requires_grad) for v in value)
    return value


def _to_ours(value, requires_grad):
    if isinstance(value, Arr):
        return gf.tensor(np.array(value.value, copy=True), requires_grad=bool(requires_grad and value.grad))
    if isinstance(value, (list, tuple)):
        return type(value)(_to_ours(v, requires_grad) for v in value)
    return value


def _leaves(values, lib_tensor):
    found = []
    for value in values:
        if isinstance(value, lib_tensor) and value.requires_grad:
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(_leaves(value, lib_tensor))
    return found


def _outputs(result) -> list:
    if isinstance(result, (list, tuple)):
        return [r for item in result for r in _outputs(item)]
    return [result] if result is not None else []


def _as_numpy(tensor) -> np.ndarray:
    if isinstance(tensor, torch.Tensor):
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float64)
        return tensor.numpy()
    array = tensor.detach().numpy()
    return array.astype(np.float64) if np.issubdtype(array.dtype, np.floating) else array


def _dtype_name(tensor) -> str:
    return str(tensor.dtype).replace("torch.", "").replace("gradflow.", "")


def _magnitude(arrays) -> float:
    """Largest finite |value| over ``arrays`` (1 when none): the yardstick of rounding in sums."""
    best = 1.0
    for array in arrays:
        finite = np.abs(array[np.isfinite(array)]) if array.dtype.kind == "f" else np.abs(array)
        if finite.size:
            best = max(best, float(finite.max()))
    return best


def sum_scale(arrays) -> float:
    """Rounding yardstick of a sum over the inputs: the number of terms times the largest term."""
    size = max((a.size for a in arrays), default=1)
    return size * _magnitude(arrays)


def product_scale(arrays) -> float:
    """Rounding yardstick of sums of products (matmul, conv, linear): terms times the largest product."""
    size = max((a.size for a in arrays), default=1)
    result = float(size)
    for array in arrays:
        result *= _magnitude([array])
    return result


def compare(ours, theirs, dtype_name: str, tol: float, scale: float, what: str) -> Outcome | None:
    """None when ``ours`` matches ``theirs``; else the mismatch."""
    if tuple(ours.shape) != tuple(theirs.shape):
        return Outcome("shape", f"{what}: shape {tuple(ours.shape)} != torch {tuple(theirs.shape)}")
    if _dtype_name(ours) != _dtype_name(theirs):
        return Outcome("dtype", f"{what}: dtype {_dtype_name(ours)} != torch {_dtype_name(theirs)}")
    mine, reference = _as_numpy(ours), _as_numpy(theirs)
    if mine.dtype.kind != "f":
        bad = mine != reference
        if bad.any():
            return Outcome(
                "value", f"{what}: {int(bad.sum())} of {bad.size} differ, e.g. {mine[bad][:3]} vs {reference[bad][:3]}"
            )
        return None
    name = _dtype_name(theirs)
    rtol, atol = RTOL.get(name, 1e-9) * tol, ATOL.get(name, 1e-10) * tol
    atol += RTOL.get(name, 1e-9) * tol * scale
    nan_ours, nan_theirs = np.isnan(mine), np.isnan(reference)
    if (nan_ours != nan_theirs).any():
        where = np.argwhere(nan_ours != nan_theirs)[:3].tolist()
        return Outcome(
            "grad" if what != "forward" else "value",
            f"{what}: NaN at different places {where}: ours {mine[nan_ours != nan_theirs][:3]}, torch "
            f"{reference[nan_ours != nan_theirs][:3]}",
        )
    inf_bad = (np.isinf(mine) | np.isinf(reference)) & (mine != reference)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(mine - reference) <= atol + rtol * np.abs(reference)
    bad = inf_bad | (~close & np.isfinite(mine) & np.isfinite(reference))
    if bad.any():
        return Outcome(
            "grad" if what != "forward" else "value",
            f"{what}: {int(bad.sum())} of {bad.size} differ, e.g. ours {mine[bad][:3]} vs torch {reference[bad][:3]}",
        )
    return None


def _cotangent(tensor, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=tuple(tensor.shape)).astype(_as_numpy(tensor).dtype)


def _call(spec: FuzzSpec, case: Case, lib: str):
    """Build the inputs (and layer) for ``lib`` and call; returns (result, leaves)."""
    convert, tensor_type = (_to_torch, torch.Tensor) if lib == "torch" else (_to_ours, gf.Tensor)
    args = convert(tuple(case.args), spec.grad)
    kwargs = {k: convert(v, spec.grad) for k, v in case.kwargs.items()}
    leaves = _leaves(list(args) + list(kwargs.values()), tensor_type)
    if case.module is None:
        return (spec.theirs if lib == "torch" else spec.ours)(*args, **kwargs), leaves
    raise AssertionError("layer cases go through run_layer")


def _layers(case: Case):
    """The torch layer (seeded) and gradflow's twin with the same parameters, in the case's dtype."""
    torch.manual_seed(0)
    theirs = case.module(torch.nn).to(torch_dtype(case.dtype))
    ours = case.module(gf.nn)
    state = {k: gf.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)
    ours = ours.to(getattr(gf, case.dtype))
    return ours, theirs


def run_case(spec: FuzzSpec, case: Case, seed: int = 0) -> Outcome:
    """Run ``case`` on both sides and judge it."""
    try:
        if case.module is None:
            their_result, their_leaves = _call(spec, case, "torch")
        else:
            their_layer, our_layer = None, None
            our_layer, their_layer = _layers(case)
            targs = _to_torch(tuple(case.args), spec.grad)
            their_result = their_layer(*targs, **{k: _to_torch(v, spec.grad) for k, v in case.kwargs.items()})
            their_leaves = _leaves(list(targs), torch.Tensor) + [p for _, p in sorted(their_layer.named_parameters())]
    except Exception as error:  # noqa: BLE001 - any torch error means "torch refuses"
        torch_error = error
    else:
        torch_error = None
    try:
        if case.module is None:
            our_result, our_leaves = _call(spec, case, "ours")
        else:
            oargs = _to_ours(tuple(case.args), spec.grad)
            our_result = our_layer(*oargs, **{k: _to_ours(v, spec.grad) for k, v in case.kwargs.items()})
            our_leaves = _leaves(list(oargs), gf.Tensor) + [p for _, p in sorted(our_layer.named_parameters())]
    except GradflowError as error:
        if torch_error is not None:
            return Outcome("typed", f"{type(error).__name__}")
        return Outcome("refuses", f"ours raised {type(error).__name__}: {error}"[:400])
    except Exception as error:  # noqa: BLE001 - an untyped error is itself the finding
        return Outcome("untyped", f"ours raised {type(error).__name__}: {error}"[:400])
    if torch_error is not None:
        return Outcome("accepts", f"torch raised {type(torch_error).__name__}: {torch_error}"[:300])
    return _compare_results(spec, case, our_result, their_result, our_leaves, their_leaves, seed)


def _compare_results(spec, case, our_result, their_result, our_leaves, their_leaves, seed) -> Outcome:
    ours_out, theirs_out = _outputs(our_result), _outputs(their_result)
    if len(ours_out) != len(theirs_out):
        return Outcome("shape", f"{len(ours_out)} outputs, torch {len(theirs_out)}")
    arrays = [a.value for a in list(case.args) + list(case.kwargs.values()) if isinstance(a, Arr)]
    arrays = [a.astype(np.float64) if a.dtype.kind in "fb" else a for a in arrays]
    scale = spec.scale(arrays) if spec.scale else 0.0
    for mine, reference in zip(ours_out, theirs_out):
        mismatch = compare(mine, reference, case.dtype, spec.tol, scale, "forward")
        if mismatch:
            return mismatch
    differentiable = [(m, r) for m, r in zip(ours_out, theirs_out) if r.requires_grad and r.is_floating_point()]
    if not (spec.grad and their_leaves and differentiable):
        return Outcome("match")
    cotangents = [_cotangent(r, seed + i) for i, (_, r) in enumerate(differentiable)]
    try:
        their_grads = torch.autograd.grad(
            [r for _, r in differentiable],
            their_leaves,
            [torch.from_numpy(c).to(r.dtype) for c, (_, r) in zip(cotangents, differentiable)],
            allow_unused=True,
        )
    except Exception as error:  # noqa: BLE001
        torch_error = error
    else:
        torch_error = None
    try:
        our_grads = gf.autograd.grad(
            [m for m, _ in differentiable],
            our_leaves,
            [gf.tensor(c).to(m.dtype) for c, (m, _) in zip(cotangents, differentiable)],
            allow_unused=True,
        )
    except GradflowError as error:
        if torch_error is not None:
            return Outcome("typed", f"backward {type(error).__name__}")
        return Outcome("refuses", f"backward: ours raised {type(error).__name__}: {error}"[:400])
    except Exception as error:  # noqa: BLE001
        return Outcome("untyped", f"backward: ours raised {type(error).__name__}: {error}"[:400])
    if torch_error is not None:
        return Outcome("accepts", f"backward: torch raised {type(torch_error).__name__}: {torch_error}"[:300])
    grad_scale = scale * max((_magnitude([c]) for c in cotangents), default=1.0) if spec.scale else 0.0
    for index, (mine, reference, leaf) in enumerate(zip(our_grads, their_grads, their_leaves)):
        if reference is None:
            reference = torch.zeros_like(leaf)
        if mine is None:
            mine = gf.zeros(tuple(leaf.shape), dtype=getattr(gf, _dtype_name(leaf)))
        mismatch = compare(mine, reference, case.dtype, spec.tol, grad_scale, f"grad of input {index}")
        if mismatch:
            return mismatch
    return Outcome("match")
