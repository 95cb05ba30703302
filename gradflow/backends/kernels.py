"""Loads, caches and launches the hand-written CUDA kernels of ``kernels/*.cu``.

One source file per family (``elementwise``, ``softmax``, ``loss``, ``norm``,
``optim``, ``dropout``). Kernels are templates named ``gf_<family>_<op>`` and
instantiated by name (``"gf_softmax_forward<float>"``): each family module in
``gradflow/backends/fused/`` lists the instantiations it launches in
``KERNELS``, the loader compiles exactly those, and
``tests/test_kernels_compile.py`` compiles the same source with NVRTC on every
machine (no GPU needed) and checks that each one is in the PTX.

The sources ship inside the package (``gradflow/kernels`` links to the
repository's ``kernels/``). ``kernels/common.cuh`` is pasted in place of its
``#include`` so the source text CuPy caches by is the whole program.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

import numpy as np

from ..errors import ArgumentValueError, DtypeError, ShapeError, shape_str

FAMILIES = ("elementwise", "softmax", "loss", "norm", "optim", "dropout")

# Options shared by CuPy's compile and the NVRTC compile test.
COMPILE_OPTIONS = ("-std=c++17",)

_INCLUDE = '#include "common.cuh"'

# Called as launch_hook(family, name) on every launch while gradflow.profiler records; None otherwise.
launch_hook = None


def kernel_dir() -> Path:
    """The folder holding the ``.cu`` sources (inside the installed package)."""
    return Path(__file__).resolve().parent.parent / "kernels"


def expected_kernels(family: str) -> tuple[str, ...]:
    """The name expressions (``"gf_softmax_forward<float>"``) the family's launcher uses."""
    if family not in FAMILIES:
        raise ArgumentValueError(f"unknown kernel family {family!r}; the families are {', '.join(FAMILIES)}")
    return tuple(importlib.import_module(f"gradflow.backends.fused.{family}").KERNELS)


@functools.cache
def kernel_source(family: str) -> str:
    """The full source of ``kernels/<family>.cu`` with ``common.cuh`` pasted in."""
    folder = kernel_dir()
    source = (folder / f"{family}.cu").read_text()
    if _INCLUDE in source:
        source = source.replace(_INCLUDE, (folder / "common.cuh").read_text(), 1)
    return source


@functools.cache
def _module(family: str, device_index: int):
    import cupy

    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(
            code=kernel_source(family), options=COMPILE_OPTIONS, name_expressions=expected_kernels(family)
        )
        module.compile()
    return module


@functools.cache
def get_kernel(family: str, name: str, device_index: int):
    """The compiled kernel ``name`` (a name expression listed in the family's KERNELS) on one GPU."""
    return _module(family, device_index).get_function(name)


@functools.cache
def multiprocessor_count(device_index: int) -> int:
    import cupy

    return int(cupy.cuda.Device(device_index).attributes["MultiProcessorCount"])


def grid_size(n: int, block: int, device_index: int, blocks_per_sm: int = 8) -> int:
    """Blocks for a grid-stride loop over ``n`` items: enough to fill the GPU, never more than needed."""
    wanted = (max(int(n), 1) + block - 1) // block
    return max(1, min(wanted, multiprocessor_count(device_index) * blocks_per_sm))


def launch(family: str, name: str, array, grid: int, block: int, args: tuple, shared_mem: int = 0) -> None:
    """Launch kernel ``name`` of ``family`` on the GPU (and current stream) that holds ``array``.

    Scalars in ``args`` must be NumPy scalars of the kernel's parameter types
    (``np.int64`` for ``long long``, ``np.float32`` for ``float``): CuPy passes
    a Python float as a double.
    """
    if launch_hook is not None:
        launch_hook(family, name)
    device_index = array.data.device_id
    kernel = get_kernel(family, name, device_index)
    import cupy

    # Every launcher runs inside ``with x.device``: switch GPUs only when that is not the current one
    # (a Device context costs two runtime calls and an object per launch).
    if cupy.cuda.runtime.getDevice() == device_index:
        kernel((int(grid),), (int(block),), args, shared_mem=int(shared_mem))
        return
    with cupy.cuda.Device(device_index):
        kernel((int(grid),), (int(block),), args, shared_mem=int(shared_mem))


# Built once: dtype_suffix runs on every launch.
_SUFFIXES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.float16): "gf_half"}


def dtype_suffix(dtype) -> str:
    """The template argument for a NumPy dtype: float, double or gf_half (DtypeError for any other)."""
    suffix = _SUFFIXES.get(np.dtype(dtype))
    if suffix is None:
        raise DtypeError(
            f"no CUDA kernel for dtype {np.dtype(dtype)}; the kernels take float16, float32 and float64: "
            "cast the input to one of them"
        )
    return suffix


def pack_width(dtype, row_length: int | None, *arrays) -> int:
    """Elements per 16-byte load for ``dtype``, or 1 where a launcher must use scalar access.

    16-byte packs need every array's data pointer 16-byte aligned (``None`` entries are
    skipped) and, when the kernel works row by row, ``row_length`` a whole number of packs so
    that every row starts aligned and no pack straddles two rows. ``row_length=None``: flat
    elementwise work, no row constraint.
    """
    width = 16 // np.dtype(dtype).itemsize
    if row_length is not None and row_length % width:
        return 1
    if any(array.data.ptr % 16 for array in arrays if array is not None):
        return 1
    return width


def output_buffer(xp, given, shape, dtype, op: str, name: str):
    """``given`` once it can take a C-contiguous ``dtype`` result of ``shape``, or a new ``xp.empty`` one.

    The launchers accept caller-owned output buffers (the cuda tests poison them first);
    a buffer of the wrong shape, dtype or layout would be written wrongly, so it is refused.
    """
    if given is None:
        return xp.empty(shape, dtype=dtype)
    contiguous = given.flags.c_contiguous
    if tuple(given.shape) == tuple(shape) and given.dtype == dtype and contiguous:
        return given
    error = DtypeError if given.dtype != dtype else ShapeError
    raise error(
        f"{op}: {name} must be a C-contiguous {np.dtype(dtype)} array of shape {shape_str(shape)}, "
        f"got {given.dtype} {shape_str(given.shape)}{'' if contiguous else ' (not C-contiguous)'}; "
        "pass None to allocate it"
    )
