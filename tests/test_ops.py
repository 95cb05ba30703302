"""The op table driver: every op in tests/opinfo is checked the same way."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck

from .opinfo import ALL_OPS

OPS = [pytest.param(op, id=op.name) for op in ALL_OPS]
SMOOTH = [pytest.param(op, id=op.name) for op in ALL_OPS if op.grad and op.gradgrad]
DIFFERENTIABLE = [pytest.param(op, id=op.name) for op in ALL_OPS if op.grad]


def _to_tensors(args, device, dtype=None, requires_grad=True):
    """Float arrays become tensors that require grad; other arrays become plain tensors."""
    converted = []
    for arg in args:
        if isinstance(arg, np.generic):
            arg = np.asarray(arg)
        if isinstance(arg, np.ndarray):
            is_float = arg.dtype.kind == "f"
            array = arg.astype(dtype) if (is_float and dtype is not None) else arg
            converted.append(gf.tensor(array, device=device, requires_grad=requires_grad and is_float))
        else:
            converted.append(arg)
    return converted


def _constants(kwargs, device, dtype=None):
    """Arrays among the keyword arguments (class weights, pos_weight, ...) become tensors without grad."""
    return {
        key: gf.tensor(value.astype(dtype) if dtype is not None and value.dtype.kind == "f" else value, device=device)
        if isinstance(value, np.ndarray)
        else value
        for key, value in kwargs.items()
    }


def _host(value):
    if isinstance(value, gf.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, (tuple, list)):
        return type(value)(_host(v) for v in value)
    return value


def _assert_matches(actual, expected, op):
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), op.name
        for got, want in zip(actual, expected):
            _assert_matches(got, want, op)
        return
    got = _host(actual)
    want = np.asarray(expected)
    assert got.shape == want.shape, f"{op.name}: shape {got.shape} != reference {want.shape}"
    if want.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=op.rtol, atol=op.atol, equal_nan=True, err_msg=op.name)
    else:
        np.testing.assert_array_equal(got, want, err_msg=op.name)


def _settings(op, examples=None):
    return settings(
        max_examples=op.max_examples if examples is None else examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.parametrize("op", OPS)
def test_forward_matches_numpy_reference(op, device):
    @_settings(op)
    @given(st.data())
    def check(data):
        sample = op.sample(data.draw)
        expected = op.ref(*sample.args, **sample.kwargs)
        kwargs = _constants(sample.kwargs, device)
        actual = op.op(*_to_tensors(sample.args, device, requires_grad=False), **kwargs)
        _assert_matches(actual, expected, op)
        if op.method is not None:
            tensors = _to_tensors(sample.args, device, requires_grad=False)
            _assert_matches(getattr(tensors[0], op.method)(*tensors[1:], **kwargs), expected, op)

    check()


@pytest.mark.parametrize("op", OPS)
def test_float32_forward_keeps_float32(op, device):
    @_settings(op)
    @given(st.data())
    def check(data):
        sample = op.sample(data.draw)
        kwargs = _constants(sample.kwargs, device, dtype=np.float32)
        actual = op.op(*_to_tensors(sample.args, device, dtype=np.float32, requires_grad=False), **kwargs)
        expected = op.ref(*[_single(a) for a in sample.args], **{k: _single(v) for k, v in sample.kwargs.items()})
        for got, want in zip(
            actual if isinstance(actual, tuple) else (actual,), expected if isinstance(expected, tuple) else (expected,)
        ):
            if got.dtype.is_floating_point:
                assert got.dtype is gf.float32, f"{op.name}: float32 inputs gave {got.dtype}"
                np.testing.assert_allclose(_host(got), np.asarray(want, dtype=np.float64), rtol=2e-4, atol=2e-5)

    check()


def _single(value):
    return value.astype(np.float32) if isinstance(value, np.ndarray) and value.dtype.kind == "f" else value


def _check_gradients(op, device, checker, examples):
    @_settings(op, examples)
    @given(st.data())
    def check(data):
        sample = op.sample(data.draw)
        tensors, kwargs = _to_tensors(sample.args, device), _constants(sample.kwargs, device)
        assert checker(lambda *ts: op.op(*ts, **kwargs), tensors)

    check()


@pytest.mark.parametrize("op", DIFFERENTIABLE)
def test_gradcheck_float64(op, device):
    _check_gradients(op, device, gradcheck, op.max_examples)


@pytest.mark.parametrize("op", SMOOTH)
def test_gradgradcheck_float64(op, device):
    _check_gradients(op, device, gradgradcheck, max(2, op.max_examples // 2))


@pytest.mark.parametrize("op", DIFFERENTIABLE)
def test_backward_leaves_inputs_unchanged_and_grads_unaliased(op, device):
    @_settings(op, 2)
    @given(st.data())
    def check(data):
        sample = op.sample(data.draw)
        tensors = _to_tensors(sample.args, device)
        before = [_host(t).copy() for t in tensors if isinstance(t, gf.Tensor)]
        outputs = op.op(*tensors, **_constants(sample.kwargs, device))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        total = sum(o.sum() for o in outputs if isinstance(o, gf.Tensor) and o.requires_grad)
        if not isinstance(total, gf.Tensor):
            return
        total.backward()
        after = [_host(t) for t in tensors if isinstance(t, gf.Tensor)]
        for old, new in zip(before, after):
            np.testing.assert_array_equal(old, new)
        grads = [t.grad for t in tensors if isinstance(t, gf.Tensor) and t.grad is not None]
        for i, first in enumerate(grads):
            for second in grads[i + 1 :]:
                assert not np.shares_memory(_host(first), _host(second)) or first.device.type != "cpu"

    check()
