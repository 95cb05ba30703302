"""One backend per device kind: NumPy for the CPU, CuPy for CUDA devices.

A backend is the small interface ops and tensors use: ``xp`` (the array
module), array creation, transfer to and from the host, the random number
generator, ``synchronize`` and memory statistics. Backends never import
Tensor.
"""

from __future__ import annotations

import numpy

from .cupy_backend import CupyBackend  # CuPy itself is imported when a CupyBackend is made
from .numpy_backend import NumpyBackend

_backends: dict = {}


def backend_for(device):
    """The backend that stores arrays of ``device`` (created once per device)."""
    found = _backends.get(device)
    if found is None:
        found = NumpyBackend() if device.type == "cpu" else CupyBackend(device.index)
        if _seed is not None:
            found.manual_seed(_seed)
        _backends[device] = found
    return found


_seed: int | None = None


def manual_seed_all(seed: int) -> None:
    """Seed the generator of every backend, present and future."""
    global _seed
    _seed = int(seed)
    for backend in _backends.values():
        backend.manual_seed(_seed)


def array_module(array):
    """numpy or cupy, whichever owns ``array``."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return numpy
