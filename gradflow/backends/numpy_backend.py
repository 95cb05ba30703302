"""The CPU backend: arrays are NumPy arrays."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import scipy.special


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

    # -- fused optimizer updates ----------------------------------------------
    # Lists of arrays updated in place, one call per parameter group; the formulas,
    # the chunking and the argument contract are documented in optim_numpy.py.
    @staticmethod
    def sgd_step(params, grads, momentum_buffers, **hyperparameters) -> None:
        """SGD (momentum, dampening, Nesterov, weight decay) over lists of arrays, in place."""
        from .optim_numpy import sgd_step

        sgd_step(params, grads, momentum_buffers, **hyperparameters)

    @staticmethod
    def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, **hyperparameters) -> None:
        """Adam / AdamW (AMSGrad, weight decay) over lists of arrays, in place."""
        from .optim_numpy import adam_step

        adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, **hyperparameters)

    @staticmethod
    def rmsprop_step(params, grads, square_avgs, grad_avgs, momentum_buffers, steps, **hyperparameters) -> None:
        """RMSprop (centered, momentum, weight decay) over lists of arrays, in place."""
        from .optim_numpy import rmsprop_step

        rmsprop_step(params, grads, square_avgs, grad_avgs, momentum_buffers, steps, **hyperparameters)

    @staticmethod
    def adagrad_step(params, grads, state_sums, steps, **hyperparameters) -> None:
        """Adagrad (lr decay, weight decay) over lists of arrays, in place."""
        from .optim_numpy import adagrad_step

        adagrad_step(params, grads, state_sums, steps, **hyperparameters)

    # -- fused primitives (references; the CuPy backend launches kernels/*.cu) ----
    # Contracts and formulas live in gradflow/backends/fused/<family>.py.
    def bias_act_forward(self, x, bias, activation):
        """activation(x + bias) with bias over the last axis (bias may be None)."""
        from .fused import elementwise

        return elementwise.numpy_bias_act_forward(x, bias, activation)

    def bias_act_backward(self, grad, x, bias, activation, need_bias_grad):
        """(input gradient, bias gradient or None) of bias_act_forward."""
        from .fused import elementwise

        return elementwise.numpy_bias_act_backward(grad, x, bias, activation, need_bias_grad)

    def softmax_forward(self, x, log):
        """softmax (or log_softmax when ``log``) over the last axis."""
        from .fused import softmax

        return softmax.numpy_softmax_forward(x, log)

    def softmax_backward(self, grad, out, log):
        """Input gradient of softmax_forward from its output."""
        from .fused import softmax

        return softmax.numpy_softmax_backward(grad, out, log)

    def cross_entropy_forward(self, logits, target, weight, ignore_index, label_smoothing):
        """Per-row cross-entropy of (N, C) logits against class indices, and each row's logsumexp."""
        from .fused import loss

        return loss.numpy_cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing)

    def cross_entropy_backward(self, grad, logits, target, weight, lse, ignore_index, label_smoothing):
        """Gradient of the per-row losses with respect to the logits."""
        from .fused import loss

        return loss.numpy_cross_entropy_backward(grad, logits, target, weight, lse, ignore_index, label_smoothing)

    def layer_norm_forward(self, x, weight, bias, eps):
        """Layer norm over the last axis: (output, mean, 1/std) per row."""
        from .fused import norm

        return norm.numpy_layer_norm_forward(x, weight, bias, eps)

    def layer_norm_backward(self, grad, x, mean, rstd, weight, need_weight_grad, need_bias_grad):
        """(input, weight, bias) gradients of layer_norm_forward (None where not needed)."""
        from .fused import norm

        return norm.numpy_layer_norm_backward(grad, x, mean, rstd, weight, need_weight_grad, need_bias_grad)

    def dropout_forward(self, x, p):
        """(x * mask / (1 - p), mask) with mask drawn from this backend's generator."""
        from .fused import dropout

        return dropout.numpy_dropout_forward(self, x, p)
