"""The CUDA backend: arrays are CuPy arrays on one GPU.

Imported only when a CUDA device is used, so CPU-only machines never need
CuPy. Every method runs with this backend's GPU current.
"""

from __future__ import annotations

import numpy as np


class CupyBackend:
    """CuPy arrays on the GPU ``index``; the same primitives as the NumPy backend."""

    name = "cupy"

    def __init__(self, index: int):
        import cupy

        self.xp = cupy
        self.index = index
        self.cuda_device = cupy.cuda.Device(index)
        with self.cuda_device:
            self.generator = cupy.random.RandomState()

    # -- arrays -------------------------------------------------------------
    def asarray(self, obj, dtype=None):
        """``obj`` (array, list, scalar) as a CuPy array on this GPU."""
        with self.cuda_device:
            return self.xp.asarray(obj, dtype=dtype)

    def from_host(self, array: np.ndarray):
        with self.cuda_device:
            return self.xp.asarray(array)

    def to_host(self, array) -> np.ndarray:
        return self.xp.asnumpy(array)

    def context(self):
        """Make this backend's GPU current while new arrays are created."""
        return self.cuda_device

    def synchronize(self) -> None:
        with self.cuda_device:
            self.xp.cuda.runtime.deviceSynchronize()

    def memory_stats(self) -> dict:
        pool = self.xp.get_default_memory_pool()
        with self.cuda_device:
            return {"allocated_bytes": int(pool.used_bytes()), "reserved_bytes": int(pool.total_bytes())}

    @staticmethod
    def add_at(array, index, values) -> None:
        """``array[index] += values`` with repeated indices accumulated (not overwritten)."""
        import cupyx

        cupyx.scatter_add(array, index, values)

    # -- special functions NumPy lacks ------------------------------------------
    @staticmethod
    def erf(array):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(array)

    # -- random numbers -----------------------------------------------------
    def manual_seed(self, seed: int) -> None:
        with self.cuda_device:
            self.generator = self.xp.random.RandomState(seed)

    def rand(self, shape, dtype):
        with self.cuda_device:
            if dtype in (np.float32, np.float64):
                return self.generator.random_sample(shape, dtype=dtype)
            return self.generator.random_sample(shape).astype(dtype)

    def randn(self, shape, dtype):
        with self.cuda_device:
            if dtype in (np.float32, np.float64):
                return self.generator.standard_normal(shape, dtype=dtype)
            return self.generator.standard_normal(shape).astype(dtype)

    def randint(self, low: int, high: int, shape, dtype):
        with self.cuda_device:
            return self.generator.randint(low, high, size=shape).astype(dtype)

    def randperm(self, n: int, dtype):
        with self.cuda_device:
            return self.generator.permutation(n).astype(dtype)
