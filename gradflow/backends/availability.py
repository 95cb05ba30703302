"""Whether CUDA works on this machine, asked of CuPy lazily and remembered.

``is_available()`` never raises: it imports CuPy on first use and reports False with a reason
(``unavailable_reason()``) when CuPy is missing, the driver is missing or no device is present.
The device layer reads these facts to resolve 'cuda' and 'auto'; ``gradflow.cuda`` re-exports them.
"""

from __future__ import annotations

_INSTALL_HINT = "install the CUDA extra matching your driver: pip install 'gradflow[cuda12]' or 'gradflow[cuda13]'"
_probe_result: tuple[str | None, int] | None = None


def _probe() -> tuple[str | None, int]:
    """Return (reason CUDA is unusable or None, device count)."""
    try:
        import cupy
    except ImportError:
        return f"CuPy is not installed; {_INSTALL_HINT}", 0
    except Exception as exc:  # a broken CuPy install raises all sorts of errors on import
        return f"CuPy failed to import ({type(exc).__name__}: {exc}); reinstall it: {_INSTALL_HINT}", 0
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError when there is no driver
        return (
            f"no usable NVIDIA driver ({type(exc).__name__}: {exc}); install the NVIDIA driver or use device='cpu'",
            0,
        )
    if count == 0:
        return "the NVIDIA driver sees no CUDA device; use device='cpu'", 0
    return None, count


def _state() -> tuple[str | None, int]:
    global _probe_result
    if _probe_result is None:
        _probe_result = _probe()
    return _probe_result


def is_available() -> bool:
    """True when CuPy imports, a driver answers and at least one GPU is present."""
    return _state()[0] is None


def unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    return _state()[0]


def device_count() -> int:
    """The number of CUDA devices (0 without a usable GPU)."""
    return _state()[1]


def current_device() -> int:
    """The index of the current CUDA device."""
    if not is_available():
        return 0
    import cupy

    return cupy.cuda.runtime.getDevice()
