"""Shared fixtures: the device list (CUDA cases carry the `cuda` mark and skip without a GPU)."""

from __future__ import annotations

import pytest

import gradflow

CUDA_REASON = gradflow.cuda.unavailable_reason()

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    if CUDA_REASON is None:
        return
    skip = pytest.mark.skip(reason=f"no CUDA here: {CUDA_REASON}")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request):
    """Each test that takes `device` runs on the CPU and, where present, on the GPU."""
    return gradflow.device(request.param)


@pytest.fixture(autouse=True)
def _seeded():
    gradflow.manual_seed(0)
    yield
