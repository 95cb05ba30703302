"""Compile the kernel sources of ``kernels/*.cu`` with NVRTC, no GPU needed.

Used by ``gradflow info`` (do the custom kernels compile on this machine?) and
by ``tests/test_kernels_compile.py`` (every family compiles for compute_80 and
compute_90, and every name expression the loader launches is in the PTX).
NVRTC comes from the nvidia-cuda-nvrtc wheel through cuda-python
(``cuda.bindings.nvrtc``); without it ``nvrtc_unavailable_reason()`` says why.
"""

from __future__ import annotations

# concurrent.futures loads its thread pool (and queue) on first use of ThreadPoolExecutor: importing
# the package, not the name, keeps that cost out of `import gradflow` (bench -> info -> this module).
import concurrent.futures
import os

from . import kernels


class NvrtcCompileError(RuntimeError):
    """NVRTC refused a kernel source; the message holds NVRTC's status and its compile log."""


def nvrtc_unavailable_reason() -> str | None:
    """Why NVRTC cannot be used here (cuda-python missing or broken), or None when it can."""
    try:
        from cuda.bindings import nvrtc  # noqa: F401
    except ImportError:
        return "cuda-python not installed (pip install cuda-python, or the 'test' extra)"
    except Exception as error:  # a wheel without its shared library raises OSError/RuntimeError on import
        return f"cuda-python failed to import ({type(error).__name__}: {error})"
    return None


def _check(nvrtc, result, family: str, program=None):
    """Unpack a cuda-python result tuple, raising NvrtcCompileError with the program log on failure."""
    status = result[0]
    if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        log = ""
        if program is not None:
            _, size = nvrtc.nvrtcGetProgramLogSize(program)
            buffer = b" " * size
            nvrtc.nvrtcGetProgramLog(program, buffer)
            log = buffer.decode(errors="replace").strip()
        raise NvrtcCompileError(f"NVRTC compiling {family}.cu: {status.name}" + (f"\n{log}" if log else ""))
    if len(result) > 2:
        return result[1:]
    return result[1] if len(result) == 2 else None


def compile_family(family: str, architecture: str) -> tuple[str, dict[str, str]]:
    """PTX of one kernel family for one virtual architecture, and each name expression's lowered name.

    ``architecture`` is a virtual architecture such as ``"compute_90"``. Raises ``ImportError``
    without cuda-python, ``ValueError`` for an unknown family, ``FileNotFoundError`` when the
    family's source is missing and ``NvrtcCompileError`` when NVRTC refuses the source.

    >>> ptx, lowered = compile_family("softmax", "compute_90")  # doctest: +SKIP
    """
    from cuda.bindings import nvrtc

    names = kernels.expected_kernels(family)
    source = kernels.kernel_source(family).encode()
    program = _check(nvrtc, nvrtc.nvrtcCreateProgram(source, f"{family}.cu".encode(), 0, [], []), family)
    try:
        for name in names:
            _check(nvrtc, nvrtc.nvrtcAddNameExpression(program, name.encode()), family)
        options = [f"--gpu-architecture={architecture}".encode(), *(o.encode() for o in kernels.COMPILE_OPTIONS)]
        _check(nvrtc, nvrtc.nvrtcCompileProgram(program, len(options), options), family, program)
        size = _check(nvrtc, nvrtc.nvrtcGetPTXSize(program), family)
        buffer = b" " * size
        _check(nvrtc, nvrtc.nvrtcGetPTX(program, buffer), family)
        lowered = {
            name: _check(nvrtc, nvrtc.nvrtcGetLoweredName(program, name.encode()), family).decode() for name in names
        }
    finally:
        nvrtc.nvrtcDestroyProgram(program)
    return buffer.decode(errors="replace"), lowered


def check_all(architecture: str) -> dict[str, str]:
    """``{family: "ok" | "error: ..."}`` for every kernel family compiled for ``architecture``.

    Never raises for a family that fails: the reason becomes that family's entry. Without
    cuda-python every family reads the same reason.
    """
    reason = nvrtc_unavailable_reason()
    if reason is not None:
        return dict.fromkeys(kernels.FAMILIES, reason)
    # NVRTC takes seconds per family; compiling them side by side uses the machine's cores.
    workers = max(1, min(len(kernels.FAMILIES), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        statuses = pool.map(lambda family: _status(family, architecture), kernels.FAMILIES)
    return dict(zip(kernels.FAMILIES, statuses))


def _status(family: str, architecture: str) -> str:
    try:
        compile_family(family, architecture)
    except FileNotFoundError as error:
        return f"error: source missing ({error.filename})"
    except ModuleNotFoundError as error:
        return f"error: no launcher module {error.name} lists this family's kernels"
    except Exception as error:  # report NVRTC's refusal (or any loader failure) per family, keep going
        text = str(error).strip()
        return f"error: {text.splitlines()[0] if text else type(error).__name__}"
    return "ok"
