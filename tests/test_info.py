"""gradflow info: describe()'s structure, the JSON and table outputs, and machines without CUDA."""

from __future__ import annotations

import argparse
import builtins
import json

import pytest

import gradflow
from gradflow import cli, info
from gradflow.backends import availability, kernels, nvrtc_check

NO_CUDA = "CuPy is not installed; install the CUDA extra"


@pytest.fixture(autouse=True)
def fast_kernel_check(monkeypatch, request):
    """NVRTC needs ~2 s per family: describe() gets a recorded answer (tests/test_kernels_compile.py and the
    tiny-family tests below compile for real)."""
    if "tiny_family" in request.fixturenames or "nvrtc" in request.node.name:
        return
    monkeypatch.setattr(nvrtc_check, "check_all", lambda architecture: dict.fromkeys(kernels.FAMILIES, "ok"))


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without CuPy: the probe's answer says so and `import cupy` fails."""
    monkeypatch.setattr(availability, "_probe_result", (NO_CUDA, 0))
    real_import = builtins.__import__

    def refuse_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_cupy)


def test_describe_has_every_section_with_the_documented_types():
    described = info.describe()
    assert set(described) == {
        "gradflow", "python", "platform", "numpy", "scipy", "cupy", "cuda", "kernels", "auto_device"
    }  # fmt: skip
    assert described["gradflow"]["version"] == gradflow.__version__
    assert described["python"]["implementation"] in ("CPython", "PyPy")
    assert isinstance(described["platform"]["cpu_count"], int) and described["platform"]["cpu_count"] >= 1
    import numpy as np

    assert described["numpy"]["version"] == np.__version__
    threads = described["numpy"]["blas"]["threads"]
    assert threads is None or (isinstance(threads, int) and threads >= 1)
    assert isinstance(described["cuda"]["available"], bool)
    assert isinstance(described["cuda"]["devices"], list)
    assert set(described["kernels"]["families"]) == set(kernels.FAMILIES)
    assert described["auto_device"]["device"] in ("cpu", "cuda:0") or described["auto_device"]["device"].startswith(
        "cuda:"
    )
    json.dumps(described)  # JSON-ready all the way down


def test_auto_device_reason_matches_cuda_availability():
    described = info.describe()
    if gradflow.cuda.is_available():
        assert described["auto_device"]["device"].startswith("cuda") and described["auto_device"]["reason"] is None
        assert described["cuda"]["devices"] and "compute_capability" in described["cuda"]["devices"][0]
    else:
        assert described["auto_device"] == {"device": "cpu", "reason": gradflow.cuda.unavailable_reason()}
        assert described["cuda"]["reason"] == gradflow.cuda.unavailable_reason()


def test_without_cupy_every_missing_piece_says_why(no_cuda, monkeypatch):
    monkeypatch.setattr(nvrtc_check, "nvrtc_unavailable_reason", lambda: "cuda-python not installed (pip ...)")
    described = info.describe()
    assert described["cupy"]["version"] is None and described["cupy"]["status"].startswith("not installed")
    assert described["cuda"]["available"] is False and described["cuda"]["reason"] == NO_CUDA
    assert described["cuda"]["devices"] == []
    assert described["auto_device"] == {"device": "cpu", "reason": NO_CUDA}
    assert described["kernels"]["nvrtc"].startswith("cuda-python not installed")
    assert set(described["kernels"]["families"].values()) == {"cuda-python not installed (pip ...)"}
    assert described["kernels"]["architecture"] == "compute_90"
    assert described["kernels"]["all_ok"] is False


def test_nvrtc_unavailable_reason_names_cuda_python_when_it_cannot_import(monkeypatch):
    real_import = builtins.__import__

    def refuse_cuda(name, *args, **kwargs):
        if name.startswith("cuda"):
            raise ImportError("No module named 'cuda'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_cuda)
    assert nvrtc_check.nvrtc_unavailable_reason().startswith("cuda-python not installed")
    assert set(nvrtc_check.check_all("compute_90").values()) == {nvrtc_check.nvrtc_unavailable_reason()}


def test_run_json_prints_describe_as_json(capsys):
    assert info.run(argparse.Namespace(json=True)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["gradflow"]["version"] == gradflow.__version__
    assert set(printed["kernels"]["families"]) == set(kernels.FAMILIES)


def test_cli_info_json_goes_through_the_gradflow_command(capsys):
    assert cli.main(["info", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["auto_device"]["device"] == info.describe()["auto_device"]["device"]


def test_readable_report_without_cuda_prints_the_reason(no_cuda, capsys):
    assert info.run(argparse.Namespace(json=False)) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long cells: compare without line breaks
    for expected in ("gradflow info", "NumPy", "BLAS threads", "CuPy", "resolves to", "cpu"):
        assert expected in out
    assert "CuPy is not installed" in out


# -- the NVRTC helper moved out of tests/test_kernels_compile.py ------------------------------------
TINY_SOURCE = """
template <typename T> __global__ void gf_tiny_scale(T* data, long long n) {
    for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) data[i] *= 2;
}
"""


@pytest.fixture
def tiny_family(monkeypatch):
    monkeypatch.setattr(kernels, "FAMILIES", ("tiny",))
    monkeypatch.setattr(kernels, "expected_kernels", lambda family: ("gf_tiny_scale<float>",))
    monkeypatch.setattr(kernels, "kernel_source", lambda family: TINY_SOURCE)


def test_compile_family_returns_ptx_holding_every_lowered_name(tiny_family):
    pytest.importorskip("cuda.bindings.nvrtc", reason="cuda-python is not installed")
    ptx, lowered = nvrtc_check.compile_family("tiny", "compute_80")
    assert set(lowered) == {"gf_tiny_scale<float>"}
    assert lowered["gf_tiny_scale<float>"] in ptx and ".target sm_80" in ptx
    assert nvrtc_check.check_all("compute_80") == {"tiny": "ok"}


def test_a_source_nvrtc_refuses_is_reported_per_family(tiny_family, monkeypatch):
    pytest.importorskip("cuda.bindings.nvrtc", reason="cuda-python is not installed")
    monkeypatch.setattr(kernels, "kernel_source", lambda family: TINY_SOURCE + "\nthis is not C++;\n")
    with pytest.raises(nvrtc_check.NvrtcCompileError, match="NVRTC compiling tiny.cu: NVRTC_ERROR_COMPILATION"):
        nvrtc_check.compile_family("tiny", "compute_80")
    assert nvrtc_check.check_all("compute_80")["tiny"].startswith("error: NVRTC compiling tiny.cu")
