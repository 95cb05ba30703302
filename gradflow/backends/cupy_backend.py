"""The CUDA backend: arrays are CuPy arrays on one GPU.

Imported only when a CUDA device is used, so CPU-only machines never need
CuPy. Every method runs with this backend's GPU current.
"""

from __future__ import annotations

import numpy as np

# Imported once here, not inside each method (these run on every op of a training step);
# the modules import CuPy only inside their launchers.
from . import optim_xp
from .fused import dropout, elementwise, loss, norm, optim, softmax


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
        self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))

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

    def peak_memory_hook(self):
        """A CuPy memory hook that follows this GPU's allocations (``utils.memory``, ``cuda.max_memory_allocated``)."""
        return peak_memory_hook(self.index)

    def memory_stats(self) -> dict:
        pool = self.xp.get_default_memory_pool()
        with self.cuda_device:
            return {"allocated_bytes": int(pool.used_bytes()), "reserved_bytes": int(pool.total_bytes())}

    @staticmethod
    def add_at(array, index, values) -> None:
        """``array[index] += values`` with repeated indices accumulated (not overwritten)."""
        import cupy

        cupy.add.at(array, index, values)

    # -- special functions NumPy lacks ------------------------------------------
    @staticmethod
    def erf(array):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(array)

    # -- random numbers -----------------------------------------------------
    # CuPy exposes no snapshot of a curand generator's state, so the state is (seed, draws):
    # every draw reseeds the generator from both, which makes get/set_rng_state exact
    # (gradient checkpointing replays dropout masks) at the price of one cheap reseed per draw.
    def manual_seed(self, seed: int) -> None:
        self._seed = int(seed)
        self._draws = 0

    def get_rng_state(self) -> tuple:
        return (self._seed, self._draws)

    def set_rng_state(self, state) -> None:
        self._seed, self._draws = int(state[0]), int(state[1])

    def _next_generator(self):
        self.generator.seed((self._seed * 1_000_003 + self._draws) % (2**63))
        self._draws += 1
        return self.generator

    def rand(self, shape, dtype):
        with self.cuda_device:
            generator = self._next_generator()
            if dtype in (np.float32, np.float64):
                return generator.random_sample(shape, dtype=dtype)
            return generator.random_sample(shape).astype(dtype)

    def randn(self, shape, dtype):
        with self.cuda_device:
            generator = self._next_generator()
            if dtype in (np.float32, np.float64):
                return generator.standard_normal(shape, dtype=dtype)
            return generator.standard_normal(shape).astype(dtype)

    def randint(self, low: int, high: int, shape, dtype):
        with self.cuda_device:
            return self._next_generator().randint(low, high, size=shape).astype(dtype)

    def randperm(self, n: int, dtype):
        with self.cuda_device:
            return self._next_generator().permutation(n).astype(dtype)

    # -- optimizer updates (called by gradflow.optim._functional; contract in optim_numpy.py) ----
    # SGD and Adam/AdamW launch kernels/optim.cu over every tensor of a group at once;
    # RMSprop and Adagrad, which have no kernel, run their xp formulas (optim_xp.py) on CuPy.
    sgd_step = staticmethod(optim.cuda_sgd_step)
    adam_step = staticmethod(optim.cuda_adam_step)

    def rmsprop_step(self, params, grads, square_avgs, grad_avgs, momentum_buffers, **hyperparameters) -> None:
        """RMSprop (centered, momentum, weight decay) over lists of arrays, in place."""
        with self.cuda_device:
            optim_xp.rmsprop_step(self.xp, params, grads, square_avgs, grad_avgs, momentum_buffers, **hyperparameters)

    def adagrad_step(self, params, grads, state_sums, **hyperparameters) -> None:
        """Adagrad (decayed learning rates, weight decay) over lists of arrays, in place."""
        with self.cuda_device:
            optim_xp.adagrad_step(self.xp, params, grads, state_sums, **hyperparameters)

    # -- fused primitives: kernels/*.cu (contracts and docstrings in gradflow/backends/fused/) ----
    activation_forward = staticmethod(elementwise.cuda_activation_forward)
    activation_backward = staticmethod(elementwise.cuda_activation_backward)
    softmax_forward = staticmethod(softmax.cuda_softmax_forward)
    softmax_backward = staticmethod(softmax.cuda_softmax_backward)
    cross_entropy_forward = staticmethod(loss.cuda_cross_entropy_forward)
    cross_entropy_backward = staticmethod(loss.cuda_cross_entropy_backward)
    layer_norm_forward = staticmethod(norm.cuda_layer_norm_forward)
    layer_norm_backward = staticmethod(norm.cuda_layer_norm_backward)

    def dropout_forward(self, x, p):
        """(x * mask / (1 - p), mask) in one pass: Philox keyed by this backend's (seed, draws) state."""
        seed, offset = self._seed, self._draws
        self._draws += 1
        return dropout.cuda_dropout_forward(x, p, seed, offset)


def peak_memory_hook(device_index: int):
    """A CuPy memory hook following the bytes in use on ``device_index`` and their peak (enter it to start)."""
    import cupy

    class PeakHook(cupy.cuda.MemoryHook):
        """CuPy calls these around every pool allocation and release made while the hook is entered.

        The hook sees every GPU's pool: only the measured device's allocations count.
        """

        name = "gradflow_peak_memory"

        def __init__(self):
            self.in_use = 0
            self.peak = 0

        def malloc_postprocess(self, **kwargs):
            if kwargs["device_id"] == device_index:
                self.in_use += kwargs["mem_size"]
                self.peak = max(self.peak, self.in_use)

        def free_postprocess(self, **kwargs):
            if kwargs["device_id"] == device_index:
                self.in_use -= kwargs["mem_size"]

    return PeakHook()
