"""The backend interface: the NumPy reference primitives, and CuPy staying unimported on the CPU."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import array_module
from gradflow.backends.numpy_backend import NumpyBackend


def test_importing_gradflow_and_using_the_cpu_never_imports_cupy():
    code = (
        "import sys, gradflow as gf\n"
        "x = gf.randn(3, requires_grad=True); (x * x).sum().backward()\n"
        "gf.device('cpu'); gf.set_default_device('cpu')\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_add_at_accumulates_repeated_indices():
    target = np.zeros(3)
    NumpyBackend.add_at(target, np.array([0, 0, 2]), np.array([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(target, [3.0, 0.0, 5.0])


def test_erf_matches_the_math_module():
    points = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(NumpyBackend.erf(points), [math.erf(p) for p in points], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_random_draws_come_in_the_requested_dtype(dtype):
    backend = NumpyBackend()
    backend.manual_seed(0)
    assert backend.rand((4,), dtype).dtype == dtype and backend.randn((4,), dtype).dtype == dtype
    assert backend.randint(0, 5, (4,), np.int32).dtype == np.int32


def test_array_module_tells_numpy_arrays_apart():
    assert array_module(np.zeros(1)) is np


def test_manual_seed_reaches_backends_created_later(monkeypatch):
    from gradflow import backends

    cpu = gf.device("cpu")
    gf.manual_seed(11)
    # Forget the CPU backend, so the next draw creates a new one after the seed was set.
    monkeypatch.setattr(backends, "_backends", {})
    monkeypatch.setattr(cpu, "_backend", None)
    drawn = gf.rand(3).numpy()
    reference = NumpyBackend()
    reference.manual_seed(11)
    np.testing.assert_array_equal(drawn, reference.rand((3,), np.float32))
