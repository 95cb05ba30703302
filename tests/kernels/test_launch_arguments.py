"""Every CUDA launcher passes its kernel the arguments the kernel's signature declares, checked on the CPU.

CuPy passes a NumPy scalar by its own type, so an ``np.int64`` where the kernel takes a
``double`` (or one argument too few) would silently corrupt a launch. Here the launchers run
against a NumPy stand-in for the few CuPy calls they make, ``kernels.launch`` is replaced by a
check against the signatures parsed from ``kernels/*.cu``, and each launch must name a kernel
the loader compiles, pass one argument per parameter (array for a pointer, ``np.int64`` for
``long long``, ``np.float64`` for ``double``) and use whole warps.
"""

from __future__ import annotations

import re
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

from gradflow.backends import kernels
from gradflow.backends.fused import dropout, elementwise, loss, norm, optim, softmax


class _Device:
    id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Array(np.ndarray):
    """A NumPy array with CuPy's ``.data.ptr`` / ``.data.device_id`` and ``.device``."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0], device_id=0)

    @property
    def device(self):
        return _Device()


def _wrap(array):
    return np.asarray(array).view(_Array)


def _fake_cupy():
    def total(array, axis=None, dtype=None, out=None):
        with np.errstate(all="ignore"):  # the stand-in launches write nothing: arrays hold whatever np.empty left
            result = np.sum(np.asarray(array), axis=axis, dtype=dtype)
        if out is None:
            return _wrap(result)
        np.asarray(out)[...] = result
        return out

    return types.SimpleNamespace(
        ascontiguousarray=lambda a, dtype=None: _wrap(np.ascontiguousarray(np.asarray(a), dtype=dtype)),
        empty=lambda shape, dtype=float: _wrap(np.empty(shape, dtype)),
        zeros=lambda shape, dtype=float: _wrap(np.zeros(shape, dtype)),
        asarray=lambda a, dtype=None: _wrap(np.asarray(a, dtype=dtype)),
        broadcast_to=lambda a, shape: _wrap(np.broadcast_to(a, shape)),
        sum=total,
        int64=np.int64,
        cuda=types.SimpleNamespace(
            runtime=types.SimpleNamespace(getDevice=lambda: 0), Device=lambda index=0: _Device()
        ),
    )


def _signatures() -> dict[str, list[str]]:
    """Kernel name -> its parameter declarations, from every family's source."""
    found = {}
    pattern = re.compile(r"__global__ void(?: __launch_bounds__\([^)]*\))?\s*(\w+)\s*\(([^)]*)\)")
    for family in kernels.FAMILIES:
        for match in pattern.finditer(kernels.kernel_source(family)):
            found[match.group(1)] = [part.strip() for part in match.group(2).split(",")]
    return found


@pytest.fixture
def launches(monkeypatch):
    """The launches made while the test runs, each checked against its kernel's signature."""
    signatures = _signatures()
    made, arguments = [], []

    def check(family, name, array, grid, block, args, shared_mem=0):
        assert name in kernels.expected_kernels(family), f"{name} is not compiled by the loader"
        parameters = signatures[name.split("<")[0]]
        assert len(args) == len(parameters), f"{name}: {len(args)} arguments for {len(parameters)} parameters"
        for parameter, value in zip(parameters, args):
            if "*" in parameter:
                assert isinstance(value, np.ndarray), f"{name}: {parameter} got {type(value).__name__}"
            elif parameter.startswith("long long"):
                assert type(value) is np.int64, f"{name}: {parameter} got {type(value).__name__}"
            else:
                assert parameter.startswith("double"), f"{name}: unexpected parameter {parameter}"
                assert type(value) is np.float64, f"{name}: {parameter} got {type(value).__name__}"
        assert grid >= 1 and block >= 32 and block % 32 == 0, f"{name}: grid {grid}, block {block}"
        made.append(name)
        arguments.append(args)

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    monkeypatch.setattr(kernels, "launch", check)
    monkeypatch.setattr(kernels, "multiprocessor_count", lambda device_index: 132)
    monkeypatch.setattr(norm, "_registers", lambda name, device_index: 0)
    # The optimizer's caches must not keep this test's host arrays for later tests.
    monkeypatch.setattr(optim, "_TABLE_CACHE", OrderedDict())
    monkeypatch.setattr(optim, "_LAYOUTS", OrderedDict())
    return types.SimpleNamespace(names=made, arguments=arguments)


SHAPES = [(3, 7), (2, 16), (5, 300), (2, 9000), (2, 40000)]
DTYPES = [np.float32, np.float16, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_launchers_match_the_signatures(dtype, launches):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = _wrap(rng.normal(size=shape).astype(dtype))
        ones = _wrap(np.ones(shape[1], dtype))
        for log in (False, True):
            y = softmax.cuda_softmax_forward(x, log)
            softmax.cuda_softmax_backward(_wrap(np.ones(shape, dtype)), y, log)
        target = _wrap(rng.integers(0, shape[1], shape[0]))
        for weight in (None, ones):
            _, shift, total = loss.cuda_cross_entropy_forward(x, target, weight, -100, 0.1)
            loss.cuda_cross_entropy_backward(_wrap(np.float32(1)), x, target, weight, shift, total, -100, 0.1)
        for weight in (None, ones):
            _, mean, rstd = norm.cuda_layer_norm_forward(x, weight, weight, 1e-5)
            norm.cuda_layer_norm_backward(x, x, mean, rstd, weight, True, True)
            norm.cuda_layer_norm_backward(x, x, mean, rstd, weight, False, True)
    names = {name.split("<")[0] for name in launches.names}
    assert {"gf_softmax_forward", "gf_softmax_backward", "gf_loss_cross_entropy_forward"} <= names
    # Short rows take the row-cached layer-norm kernels, rows of 40000 the long-row ones.
    assert {"gf_norm_forward_cached", "gf_norm_backward_fused", "gf_norm_column_sum"} <= names
    assert {"gf_norm_forward", "gf_norm_backward", "gf_norm_param_grad"} <= names


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_and_dropout_launchers_match_the_signatures(dtype, launches):
    rng = np.random.default_rng(1)
    for shape in [(3, 7), (4, 16), (10,), ()]:  # () : ascontiguousarray turns 0-d arrays 1-d
        x = _wrap(rng.normal(size=shape).astype(dtype))
        for activation in elementwise.ACTIVATIONS:
            assert elementwise.cuda_activation_forward(x, activation).shape == shape
            assert elementwise.cuda_activation_backward(x, x, activation).shape == shape
        y, mask = dropout.cuda_dropout_forward(x, 0.3, 2**40 + 7, 5)
        assert y.shape == mask.shape == shape
    assert {name.split("<")[0] for name in launches.names} == {
        "gf_elementwise_activation_forward",
        "gf_elementwise_activation_backward",
        "gf_dropout_forward",
    }


@pytest.mark.parametrize("param_dtype", [np.float32, np.float16, np.float64])
def test_optimizer_launchers_match_the_signatures(param_dtype, launches):
    state = np.float64 if param_dtype == np.float64 else np.float32
    sizes = [5, 40000]
    params = [_wrap(np.zeros(n, param_dtype)) for n in sizes]
    grads = [_wrap(np.ones(n, param_dtype)) for n in sizes]

    def states():
        return [_wrap(np.zeros(n, state)) for n in sizes]

    # Different step counts: the per-tensor corrections table goes with the launch.
    corrections = {"step_sizes": [1.0, 0.5], "bias_correction2_sqrts": [0.1, 0.2]}
    adam = {"lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.1, "maximize": False}
    optim.cuda_adam_step(
        params, grads, states(), states(), states(), decoupled_weight_decay=True, amsgrad=True, **corrections, **adam
    )
    sgd = {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": True, "maximize": False}
    optim.cuda_sgd_step(params, grads, states(), first_steps=[True, False], **sgd)
    assert [name.split("<")[0] for name in launches.names] == ["gf_optim_adam", "gf_optim_sgd"]
    # Adam's per-tensor table: (-step size, sqrt(1 - beta2^t)) for each tensor, flagged as in use.
    adam_args = launches.arguments[0]
    np.testing.assert_array_equal(adam_args[4], [-1.0, 0.1, -0.5, 0.2])
    assert adam_args[5] == 1


def test_optimizer_tables_follow_a_parameter_replaced_by_a_new_array(launches):
    """Module.to / load_state_dict put new arrays in place: the next launch must write to those, not the old."""
    params = [_wrap(np.zeros(n, np.float32)) for n in (8, 12)]
    moments = [[_wrap(np.zeros(n, np.float32)) for n in (8, 12)] for _ in range(2)]
    options = {"lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.0, "maximize": False}
    options.update(step_sizes=[1.0, 1.0], bias_correction2_sqrts=[0.1, 0.1], decoupled_weight_decay=False)

    def step():
        grads = [_wrap(np.ones(p.shape, np.float32)) for p in params]
        optim.cuda_adam_step(params, grads, *moments, [], amsgrad=False, **options)
        return np.asarray(launches.arguments[-1][0]).view(np.uint64)  # the tensor table

    first = step()
    assert launches.arguments[-1][5] == 0  # one step count: the corrections go as uniform arguments
    assert launches.arguments[-1][6:8] == (-1.0, 0.1)
    assert first[0, 0] == params[0].data.ptr and first[1, 0] == params[1].data.ptr
    params[0] = _wrap(np.zeros(8, np.float32))  # a new array; the old one may be freed
    moments[1][1] = _wrap(np.zeros(12, np.float32))
    second = step()
    assert second[0, 0] == params[0].data.ptr, "the launch still points at the replaced parameter"
    assert second[1, 3] == moments[1][1].data.ptr, "the launch still points at the replaced state"
    assert [tuple(row[:1]) + tuple(row[2:]) for row in second] == [
        (p.data.ptr, m.data.ptr, v.data.ptr, 0, p.size) for p, m, v in zip(params, *moments)
    ]
