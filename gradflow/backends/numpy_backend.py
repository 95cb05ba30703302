"""The CPU backend: arrays are NumPy arrays."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import scipy.special

from . import optim_numpy
from .fused import dropout, elementwise, loss, norm, softmax


class NumpyBackend:
    """NumPy arrays on the host; the readable reference for every primitive."""

    name = "numpy"
    xp = np

    def __init__(self):
        self.generator = np.random.default_rng()

    # -- arrays -------------------------------------------------------------
    def asarray(self, obj, dtype=None):
        """``obj`` (array, list, scalar) as an array of this backend."""
        if type(obj).__module__.startswith("cupy"):
            obj = obj.get()
        return np.asarray(obj, dtype=dtype)

    def from_host(self, array: np.ndarray) -> np.ndarray:
        return array

    def to_host(self, array) -> np.ndarray:
        return array

    def context(self):
        """A context in which new arrays land on this device (nothing to do on the CPU)."""
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        """Nothing to wait for on the CPU."""

    def memory_stats(self) -> dict:
        """The CPU backend keeps no pool; report zeros so callers need no branch."""
        return {"allocated_bytes": 0, "reserved_bytes": 0}

    @staticmethod
    def add_at(array, index, values) -> None:
        """``array[index] += values`` with repeated indices accumulated (not overwritten)."""
        np.add.at(array, index, values)

    # -- special functions NumPy lacks ------------------------------------------
    @staticmethod
    def erf(array):
        return scipy.special.erf(array)

    # -- random numbers -----------------------------------------------------
    def manual_seed(self, seed: int) -> None:
        self.generator = np.random.default_rng(seed)

    def get_rng_state(self) -> dict:
        """A snapshot of the generator (restored by ``set_rng_state``)."""
        return copy.deepcopy(self.generator.bit_generator.state)

    def set_rng_state(self, state) -> None:
        self.generator.bit_generator.state = copy.deepcopy(state)

    def rand(self, shape, dtype):
        """Uniform samples in [0, 1)."""
        if dtype in (np.float32, np.float64):
            return self.generator.random(shape, dtype=dtype)
        return self.generator.random(shape).astype(dtype)

    def randn(self, shape, dtype):
        """Standard normal samples."""
        if dtype in (np.float32, np.float64):
            return self.generator.standard_normal(shape, dtype=dtype)
        return self.generator.standard_normal(shape).astype(dtype)

    def randint(self, low: int, high: int, shape, dtype):
        """Integers drawn uniformly from [low, high)."""
        return self.generator.integers(low, high, size=shape, dtype=dtype)

    def randperm(self, n: int, dtype):
        return self.generator.permutation(n).astype(dtype)

    # -- optimizer updates (called by gradflow.optim._functional) ------------------------
    # Lists of arrays updated in place, one call per parameter group; the formulas,
    # the chunking and the argument contract are documented in optim_numpy.py.
    sgd_step = staticmethod(optim_numpy.sgd_step)
    adam_step = staticmethod(optim_numpy.adam_step)
    rmsprop_step = staticmethod(optim_numpy.rmsprop_step)
    adagrad_step = staticmethod(optim_numpy.adagrad_step)

    # -- fused primitives (references; the CuPy backend launches kernels/*.cu) ----
    # The functions themselves, so each contract and docstring lives once, in
    # gradflow/backends/fused/<family>.py, and a call costs no wrapper.
    activation_forward = staticmethod(elementwise.numpy_activation_forward)
    activation_backward = staticmethod(elementwise.numpy_activation_backward)
    softmax_forward = staticmethod(softmax.numpy_softmax_forward)
    softmax_backward = staticmethod(softmax.numpy_softmax_backward)
    cross_entropy_forward = staticmethod(loss.numpy_cross_entropy_forward)
    cross_entropy_backward = staticmethod(loss.numpy_cross_entropy_backward)
    layer_norm_forward = staticmethod(norm.numpy_layer_norm_forward)
    layer_norm_backward = staticmethod(norm.numpy_layer_norm_backward)
    # A plain function attribute: called on the backend, it receives it first (its generator draws the mask).
    dropout_forward = dropout.numpy_dropout_forward
