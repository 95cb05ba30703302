"""Anomaly detection: the forward location of the op whose backward produced NaN/inf, and zero cost when off."""

from __future__ import annotations

import pytest

import gradflow as gf
from gradflow.autograd import Function, detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from gradflow.errors import AnomalyError


def _nan_in_backward(x):
    return x.sqrt()  # d sqrt at 0 is inf; 0 * inf upstream makes NaN


def test_detect_anomaly_names_the_op_and_the_forward_line():
    x = gf.tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly():
        y = _nan_in_backward(x)
        with pytest.raises(AnomalyError) as info:
            y.sum().backward()
    message = str(info.value)
    assert "SqrtBackward" in message and "inf values" in message
    assert "_nan_in_backward" in message and "return x.sqrt()" in message
    assert not is_anomaly_enabled()


def test_nan_values_are_reported_as_nan():
    class MakesNan(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad * float("nan")

    with detect_anomaly():
        out = MakesNan.apply(gf.ones(2, requires_grad=True))
        with pytest.raises(AnomalyError, match="MakesNanBackward' returned nan values in its 0th output"):
            out.sum().backward()


def test_without_anomaly_mode_nan_flows_silently():
    x = gf.tensor([0.0, 1.0], requires_grad=True)
    _nan_in_backward(x).sum().backward()
    assert x.grad.tolist()[0] == float("inf")


def test_node_recorded_before_enabling_says_so():
    x = gf.tensor([0.0], requires_grad=True)
    y = x.sqrt()
    with detect_anomaly(), pytest.raises(AnomalyError, match="recorded before anomaly detection was enabled"):
        y.sum().backward()


def test_check_nan_false_records_but_does_not_check():
    x = gf.tensor([0.0], requires_grad=True)
    with detect_anomaly(check_nan=False):
        x.sqrt().sum().backward()
    assert x.grad.tolist() == [float("inf")]


def test_errors_in_backward_carry_the_forward_location():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("boom")

    with detect_anomaly():
        out = Broken.apply(gf.ones(1, requires_grad=True))
        with pytest.raises(ValueError, match="boom") as info:
            out.sum().backward()
    assert any("BrokenBackward" in note and "test_anomaly.py" in note for note in info.value.__notes__)


def test_set_detect_anomaly_as_call_and_context():
    set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled()
        with set_detect_anomaly(False):
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
    finally:
        set_detect_anomaly(False)
    assert not is_anomaly_enabled()


def test_decorator_form():
    @detect_anomaly()
    def run():
        return is_anomaly_enabled()

    assert run() and not is_anomaly_enabled()


def test_nodes_keep_no_trace_when_off():
    y = gf.ones(1, requires_grad=True) * 2
    assert getattr(y.grad_fn, "forward_stack", None) is None
    with detect_anomaly():
        z = gf.ones(1, requires_grad=True) * 2
    assert "test_nodes_keep_no_trace_when_off" in z.grad_fn.forward_stack


def test_detect_anomaly_object_entered_twice_restores_the_state():
    assert not is_anomaly_enabled()
    mode = detect_anomaly()
    try:
        with mode:
            with mode:
                assert is_anomaly_enabled()
            assert is_anomaly_enabled()
        assert not is_anomaly_enabled()  # before the fix anomaly mode stayed on for good
    finally:
        gf.autograd.set_detect_anomaly(False)
