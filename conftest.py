"""Doctests in gradflow/ run on the CPU from seed 0, so their printed output is the same on every machine.

A docstring's example shows what a reader gets in a fresh session; the default device
(``GRADFLOW_DEVICE`` may say 'cuda' on a GPU machine) and the random state left by earlier
tests must not change it. NVRTC compiles take seconds per kernel family, so ``gradflow info``'s
example gets a recorded answer (tests/test_kernels_compile.py compiles every family for real).
"""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestItem

import gradflow
from gradflow.backends import kernels, nvrtc_check


@pytest.fixture(autouse=True)
def _doctest_on_cpu_from_seed_zero(request, monkeypatch):
    if not isinstance(request.node, DoctestItem):
        yield
        return
    monkeypatch.setattr(
        nvrtc_check, "check_all", lambda architecture: dict.fromkeys(kernels.FAMILIES, "not compiled in doctests")
    )
    previous = gradflow.get_default_device()
    gradflow.set_default_device("cpu")
    gradflow.manual_seed(0)
    try:
        yield
    finally:
        gradflow.set_default_device(previous)
