"""The backends' optimizer primitives: the CPU's chunked NumPy (chunk-invariant, in place, allocation-free)
against the xp formulas the CUDA backend runs for RMSprop and Adagrad."""

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
from gradflow.optim import _functional

# name -> (state lists after params and grads, whether it counts steps, option sets covering every flag)
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
        arrays["counts"] = [float(i) for i in range(len(shapes))]  # unequal step counts, as after add_param_group
    return arrays


def primitive_keywords(name, arrays, options, maximize, first_steps=None):
    """The keywords of the primitive ``name``: the options plus the step-dependent scalars (counting one step)."""
    keywords = dict(options, maximize=maximize)
    if "counts" in arrays:
        arrays["counts"] = [t + 1 for t in arrays["counts"]]
    if name == "sgd":
        keywords["first_steps"] = first_steps
    if name == "adam":
        keywords["decoupled_weight_decay"] = maximize  # covers both variants across the maximize flag
        step_sizes, corrections = _functional.adam_scalars(
            arrays["counts"], options["lr"], options["beta1"], options["beta2"]
        )
        keywords.update(step_sizes=step_sizes, bias_correction2_sqrts=corrections)
    if name == "adagrad":
        lr, lr_decay = keywords.pop("lr"), keywords.pop("lr_decay")
        keywords["learning_rates"] = _functional.adagrad_learning_rates(arrays["counts"], lr, lr_decay)
    return keywords


def call(name, implementation, arrays, options, maximize, first_steps=None):
    """One step of the CPU primitive (``"numpy"``) or of the CUDA backend's xp formula run on NumPy (``"xp"``)."""
    lists = [arrays["params"], arrays["grads"], *(arrays[s] for s in PRIMITIVES[name][0])]
    keywords = primitive_keywords(name, arrays, options, maximize, first_steps)
    if implementation == "numpy":
        getattr(optim_numpy, f"{name}_step")(*lists, **keywords)
    else:
        getattr(optim_xp, f"{name}_step")(np, *lists, **keywords)


shape_lists = st.lists(st.lists(st.integers(1, 7), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4)


def run_steps(name, arrays, implementation, options, maximize, chunk=None, steps=3):
    saved_chunk = optim_numpy.CHUNK_ELEMENTS
    optim_numpy.CHUNK_ELEMENTS = chunk or saved_chunk  # small chunks split even these small arrays
    try:
        for iteration in range(steps):
            call(name, implementation, arrays, options, maximize, [iteration == 0] * len(arrays["params"]))
    finally:
        optim_numpy.CHUNK_ELEMENTS = saved_chunk


case = {
    "shapes": shape_lists,
    "dtype": st.sampled_from([np.float64, np.float32]),
    "option_index": st.integers(0, 2),
    "maximize": st.booleans(),
    "seed": st.integers(0, 2**16),
}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=15, deadline=None)
@given(chunk=st.sampled_from([3, 8]), **case)
def test_chunked_cpu_update_is_bit_equal_to_the_whole_array_one(
    name, shapes, dtype, option_index, maximize, chunk, seed
):
    options = PRIMITIVES[name][2][option_index % len(PRIMITIVES[name][2])]
    chunked = make_arrays(name, shapes, dtype, options, seed)
    whole = copy.deepcopy(chunked)
    grads_before = copy.deepcopy(chunked["grads"])
    params_before = copy.deepcopy(chunked["params"])
    run_steps(name, chunked, "numpy", options, maximize, chunk)
    run_steps(name, whole, "numpy", options, maximize)
    for key, arrays in chunked.items():
        for got, want in zip(arrays, whole[key]):
            assert np.asarray(got).dtype == np.asarray(want).dtype
            np.testing.assert_array_equal(got, want, err_msg=key)
    for got, want in zip(chunked["grads"], grads_before):
        np.testing.assert_array_equal(got, want)  # gradients are only read
    assert all(not np.array_equal(p, q) for p, q in zip(chunked["params"], params_before))


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
@settings(max_examples=15, deadline=None)
@given(chunk=st.sampled_from([3, 32768]), **case)
def test_cuda_xp_formulas_match_the_cpu_update(name, shapes, dtype, option_index, maximize, chunk, seed):
    # RMSprop and Adagrad have no kernel: the CUDA backend runs optim_xp, checked here on NumPy.
    options = PRIMITIVES[name][2][option_index % len(PRIMITIVES[name][2])]
    cpu = make_arrays(name, shapes, dtype, options, seed)
    xp = copy.deepcopy(cpu)
    grads_before = copy.deepcopy(xp["grads"])
    run_steps(name, cpu, "numpy", options, maximize, chunk)
    run_steps(name, xp, "xp", options, maximize)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for key, arrays in cpu.items():
        for got, want in zip(xp[key], arrays):
            assert np.asarray(got).dtype == np.asarray(want).dtype
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=key)
    for got, want in zip(xp["grads"], grads_before):
        np.testing.assert_array_equal(got, want)  # gradients are only read


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_non_contiguous_arrays_are_updated_in_place(name, monkeypatch):
    monkeypatch.setattr(optim_numpy, "CHUNK_ELEMENTS", 5)
    options = PRIMITIVES[name][2][1]
    contiguous = make_arrays(name, [(4, 6)], np.float64, options, seed=1)
    # The same values, stored transposed: every array is a non-contiguous view of its base.
    bases = {key: [np.ascontiguousarray(a.T) for a in arrays] for key, arrays in contiguous.items() if key != "counts"}
    strided = {key: [b.T for b in arrays] for key, arrays in bases.items()}
    if "counts" in contiguous:
        strided["counts"] = list(contiguous["counts"])
    assert not strided["params"][0].flags.c_contiguous
    for iteration in range(2):
        call(name, "numpy", contiguous, options, False, [iteration == 0])
        call(name, "numpy", strided, options, False, [iteration == 0])
    for key, arrays in bases.items():
        for base, want in zip(arrays, contiguous[key]):
            np.testing.assert_array_equal(base.T, want, err_msg=key)


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
        # The kernel launchers take the CPU's keywords (plus param_dtype for bfloat16 bits);
        # the xp bodies behind RMSprop/Adagrad take **hyperparameters and are checked below.
        assert not cupy_keywords or cupy_keywords - {"param_dtype"} == _keywords(module_function)
    for name in ("rmsprop_step", "adagrad_step"):
        xp_function, module_function = getattr(optim_xp, name), getattr(optim_numpy, name)
        assert _positional(xp_function) == ["xp", *_positional(module_function)]
        assert _keywords(xp_function) == _keywords(module_function)
    # One CUDA implementation each: SGD and Adam have kernels and no xp copy.
    assert not hasattr(optim_xp, "sgd_step") and not hasattr(optim_xp, "adam_step")


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
        gpu = {key: [cupy.asarray(a) for a in arrays] for key, arrays in host.items() if key != "counts"}
        if "counts" in host:
            gpu["counts"] = list(host["counts"])
        for iteration in range(3):
            for arrays, backend in ((host, NumpyBackend), (gpu, cuda_backend)):
                lists = [arrays["params"], arrays["grads"], *(arrays[s] for s in PRIMITIVES[name][0])]
                maximize = bool(option_index % 2)
                keywords = primitive_keywords(name, arrays, options, maximize, [iteration == 0] * 2)
                getattr(backend, f"{name}_step")(*lists, **keywords)
        for key, arrays in host.items():
            if key == "counts":
                continue
            for want, got in zip(arrays, gpu[key]):
                np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-5, atol=1e-6, err_msg=key)
