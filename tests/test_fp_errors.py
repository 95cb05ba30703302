"""NumPy's floating-point warnings stay inside gradflow's CPU ops (PyTorch computes silently)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import fp_errors


def _special_ops():
    inf = gf.tensor([np.inf, 0.0, -1.0], requires_grad=True)
    zero = gf.tensor([0.0, 0.0, 0.0])
    yield lambda: inf * zero  # inf * 0 = nan
    yield lambda: inf - inf
    yield lambda: inf / zero
    yield lambda: (inf * zero).log()
    yield lambda: gf.tensor([[np.inf, 1.0]]) @ gf.tensor([[0.0], [1.0]])
    yield lambda: (inf * inf).sum() * 0


def test_cpu_ops_and_their_backward_raise_no_runtime_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for op in _special_ops():
            out = op()
            if out.requires_grad:
                out.sum().backward()


def test_the_callers_numpy_error_state_is_restored():
    before = np.geterr()
    with np.errstate(divide="raise"):
        gf.tensor([1.0]) / gf.tensor([0.0])  # silent inside the op
        with pytest.raises(FloatingPointError):
            np.array([1.0]) / np.array([0.0])  # the caller's own setting still holds outside
    assert np.geterr() == before


@pytest.mark.parametrize(
    ("enter", "leave"),
    [
        (fp_errors._contextvar_enter, fp_errors._contextvar_leave),
        (fp_errors._errstate_enter, fp_errors._errstate_leave),
    ],
    ids=["contextvar", "errstate"],
)
def test_both_ways_ignore_and_restore(enter, leave):
    if enter is fp_errors._contextvar_enter and not fp_errors.FAST:
        pytest.skip("this NumPy has no error-state ContextVar")
    with np.errstate(invalid="raise"):
        token = enter()
        try:
            inner = np.array([np.inf]) * 0  # would raise under the caller's setting
        finally:
            leave(token)
        assert np.isnan(inner[0])
        with pytest.raises(FloatingPointError):
            np.array([np.inf]) * 0


def test_numpy_2_takes_the_fast_path():
    if int(np.__version__.split(".")[0]) >= 2:
        assert fp_errors.FAST, "numpy._core._ufunc_config changed: fp_errors fell back to np.errstate (slower)"


def test_an_op_whose_forward_raises_restores_the_callers_error_state():
    from gradflow.autograd.function import Function

    class Failing(Function):
        @staticmethod
        def forward(ctx, x):
            raise ZeroDivisionError("boom")

    before = np.geterr()
    with pytest.raises(ZeroDivisionError):
        Failing.apply(gf.tensor([1.0]))
    assert np.geterr() == before
    with pytest.raises(FloatingPointError), np.errstate(invalid="raise"):
        np.array([np.inf]) * 0
