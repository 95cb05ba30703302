"""The backends' fused optimizer primitives: chunked NumPy against the xp formulas, in place, allocation-free."""

from __future__ import annotations

import copy
import inspect
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow import optim
from gradflow.backends import optim_numpy, optim_xp
from gradflow.backends.cupy_backend import CupyBackend
from gradflow.backends.numpy_backend import NumpyBackend

# name -> (state lists after params and grads, whether it takes steps, option sets covering every flag)
PRIMITIVES = {
    "sgd": (
        ["momentum_buffers"],
        False,
        [
            {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "maximize": False},
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1, "nesterov": False, "maximize": True},
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": True, "maximize": False},
        ],
    ),
    "adam": (
        ["exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"],
        True,
        [
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
            {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True},
            {"lr": 0.01, "beta1": 0.3, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.1, "amsgrad": False},
        ],
    ),
    "rmsprop": (
        ["square_avgs", "grad_avgs", "momentum_buffers"],
        True,
        [
            {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
            {"lr": 0.01, "alpha": 0.9, "eps": 1e-8, "weight_decay": 0.1, "momentum": 0.5, "centered": True},
            {"lr": 0.01, "alpha": 0.3, "eps": 1e-6, "weight_decay": 0.0, "momentum": 0.9, "centered": False},
        ],
    ),
    "adagrad": (
        ["state_sums"],
        True,
        [
            {"lr": 0.1, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10},
            {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "eps": 1e-3},
        ],
    ),
}


def state_is_used(name: str, state: str, options: dict) -> bool:
    """Optional state lists are passed empty when their option is off (the primitives' contract)."""
    if state == "max_exp_avg_sqs":
        return options["amsgrad"]
    if state == "grad_avgs":
        return options["centered"]
    if state == "momentum_buffers":
        return options["momentum"] != 0
    return True


def make_arrays(name, shapes, dtype, options, seed):
    rng = np.random.default_rng(seed)
    states, takes_steps, _ = PRIMITIVES[name]
    arrays = {
        "params": [rng.standard_normal(shape).astype(dtype) for shape in shapes],
        "grads": [rng.standard_normal(shape).astype(dtype) for shape in shapes],
    }
    for state in states:
        used = state_is_used(name, state, options)
        # Second moments must be non-negative; the rest may be anything.
        fill = (lambda s: rng.random(s)) if state in ("exp_avg_sqs", "square_avgs", "state_sums") else np.zeros
        arrays[state] = [np.asarray(fill(shape)).astype(dtype) for shape in shapes] if used else []
    if takes_steps:
        arrays["steps"] = [np.array(float(i), dtype=np.float32) for i in range(len(shapes))]
    return arrays


def call(name, implementation, arrays, options, maximize, first_steps=None):
    states, takes_steps, _ = PRIMITIVES[name]
    lists = [arrays["params"], arrays["grads"], *(arrays[s] for s in states)]
    if takes_steps:
        lists.append(arrays["steps"])
    keywords = dict(options, maximize=maximize)
    if name == "sgd":
        keywords["first_steps"] = first_steps
    if name == "adam":
        keywords["decoupled_weight_decay"] = maximize  # covers both variants across the maximize flag
    if implementation == "numpy":
        getattr(optim_numpy, f"{name}_step")(*lists, **keywords)
    else:
        getattr(optim_xp, f"{name}_step")(np, *lists, **keywords)


shape_lists = st.lists(st.lists(st.integers(1, 7), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=15, deadline=None)
@given(
    shapes=shape_lists,
    dtype=st.sampled_from([np.float64, np.float32]),
    option_index=st.integers(0, 2),
    maximize=st.booleans(),
    chunk=st.sampled_from([3, 8, 32768]),
    seed=st.integers(0, 2**16),
)
def test_chunked_numpy_update_matches_xp_formulas(name, shapes, dtype, option_index, maximize, chunk, seed):
    options = PRIMITIVES[name][2][option_index % len(PRIMITIVES[name][2])]
    chunked = make_arrays(name, shapes, dtype, options, seed)
    whole = copy.deepcopy(chunked)
    grads_before = copy.deepcopy(chunked["grads"])
    params_before = copy.deepcopy(chunked["params"])
    saved_chunk = optim_numpy.CHUNK_ELEMENTS
    optim_numpy.CHUNK_ELEMENTS = chunk  # small chunks split even these small arrays
    try:
        for iteration in range(3):
            first_steps = [iteration == 0] * len(shapes)
            call(name, "numpy", chunked, options, maximize, first_steps)
            call(name, "xp", whole, options, maximize, first_steps)
    finally:
        optim_numpy.CHUNK_ELEMENTS = saved_chunk
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for key, arrays in chunked.items():
        for got, want in zip(arrays, whole[key]):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=key)
    for got, want in zip(chunked["grads"], grads_before):
        np.testing.assert_array_equal(got, want)  # gradients are only read
    if "steps" in chunked:
        assert [float(s) for s in chunked["steps"]] == [i + 3.0 for i in range(len(shapes))]
    assert all(not np.array_equal(p, q) for p, q in zip(chunked["params"], params_before))


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_non_contiguous_arrays_are_updated_in_place(name, monkeypatch):
    monkeypatch.setattr(optim_numpy, "CHUNK_ELEMENTS", 5)
    options = PRIMITIVES[name][2][1]
    contiguous = make_arrays(name, [(4, 6)], np.float64, options, seed=1)
    # The same values, stored transposed: every array is a non-contiguous view of its base.
    bases = {key: [np.ascontiguousarray(a.T) for a in arrays] for key, arrays in contiguous.items() if key != "steps"}
    strided = {key: [b.T for b in arrays] for key, arrays in bases.items()}
    strided["steps"] = copy.deepcopy(contiguous.get("steps", []))
    assert not strided["params"][0].flags.c_contiguous
    for iteration in range(2):
        call(name, "numpy", contiguous, options, False, [iteration == 0])
        call(name, "numpy", strided, options, False, [iteration == 0])
    for key, arrays in bases.items():
        for base, want in zip(arrays, contiguous[key]):
            np.testing.assert_array_equal(base.T, want, err_msg=key)


def test_steps_are_float32_host_counters_incremented_in_place():
    arrays = make_arrays("adam", [(3,)], np.float32, PRIMITIVES["adam"][2][0], seed=0)
    counter = arrays["steps"][0]
    call("adam", "numpy", arrays, PRIMITIVES["adam"][2][0], False)
    assert arrays["steps"][0] is counter and counter.dtype == np.float32 and float(counter) == 1.0


def _positional(function) -> list:
    """The positional parameters a caller passes (``self`` of a method left out)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds]
    return names[1:] if names and names[0] == "self" else names


def _keywords(function) -> set:
    return {p.name for p in inspect.signature(function).parameters.values() if p.kind is p.KEYWORD_ONLY}


def test_backends_expose_the_same_primitive_signatures():
    for name in ("sgd_step", "adam_step", "rmsprop_step", "adagrad_step"):
        module_function = getattr(optim_numpy, name)
        assert getattr(NumpyBackend, name) is module_function
        assert _positional(getattr(CupyBackend, name)) == _positional(module_function)
        cupy_keywords = _keywords(getattr(CupyBackend, name))
        # The kernel launchers take the reference's keywords (plus param_dtype for bfloat16 bits);
        # the xp bodies behind RMSprop/Adagrad take **hyperparameters.
        assert not cupy_keywords or cupy_keywords - {"param_dtype"} == _keywords(module_function)
        xp_function = getattr(optim_xp, name)
        assert _positional(xp_function) == ["xp", *_positional(module_function)]
        assert _keywords(xp_function) == _keywords(module_function)


ALLOCATION_CASES = [
    (optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (optim.Adam, {"lr": 0.001, "amsgrad": True, "weight_decay": 0.01, "maximize": True}),
    (optim.AdamW, {"lr": 0.001}),
    (optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    (optim.Adagrad, {"lr": 0.01, "lr_decay": 0.01, "weight_decay": 0.01}),
]


@pytest.mark.parametrize(("cls", "options"), ALLOCATION_CASES, ids=[c.__name__ for c, _ in ALLOCATION_CASES])
def test_cpu_step_allocates_nothing_after_the_first(cls, options):
    param = gradflow.randn(1_000_000, requires_grad=True)
    param.grad = gradflow.randn(1_000_000)
    optimizer = cls([param], **options)
    optimizer.step()  # warm-up: state and scratch buffers are created here
    before = param.detach().numpy().copy()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        optimizer.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 64 * 1024, f"{cls.__name__} step allocated {peak - baseline} bytes"
    assert not np.array_equal(param.detach().numpy(), before)  # it did update the 4 MB parameter


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_cuda_backend_matches_numpy_backend(name):
    import cupy

    cuda_backend = gradflow.device("cuda").backend
    for option_index, options in enumerate(PRIMITIVES[name][2]):
        host = make_arrays(name, [(3, 5), (70000,)], np.float32, options, seed=option_index)
        gpu = {key: [cupy.asarray(a) for a in arrays] for key, arrays in host.items() if key != "steps"}
        gpu["steps"] = copy.deepcopy(host.get("steps", []))
        for iteration in range(3):
            for arrays, backend in ((host, NumpyBackend), (gpu, cuda_backend)):
                states, takes_steps, _ = PRIMITIVES[name]
                lists = [arrays["params"], arrays["grads"], *(arrays[s] for s in states)]
                keywords = dict(options, maximize=bool(option_index % 2))
                if takes_steps:
                    lists.append(arrays["steps"])
                if name == "sgd":
                    keywords["first_steps"] = [iteration == 0] * 2
                if name == "adam":
                    keywords["decoupled_weight_decay"] = option_index == 2
                getattr(backend, f"{name}_step")(*lists, **keywords)
        for key, arrays in host.items():
            for want, got in zip(arrays, gpu[key]):
                np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-5, atol=1e-6, err_msg=key)
