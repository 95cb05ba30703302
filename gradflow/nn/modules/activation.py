"""Activation modules: thin Module wrappers over the functional activations."""

from __future__ import annotations

from ...ops import activation as act
from ...ops.elementwise import tanh
from ...ops.inplace import apply_inplace
from ...ops.softmax import log_softmax, softmax
from ..module import Module

__all__ = ["ReLU", "LeakyReLU", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid", "Softplus", "ELU", "Softmax", "LogSoftmax"]


class _InplaceOption(Module):
    """Activations that PyTorch lets run in place (``inplace=True`` overwrites the input)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def _run(self, input, function):
        if not self.inplace:
            return function(input)
        return apply_inplace(input, f"{type(self).__name__.lower()}_", function)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceOption):
    """max(x, 0)."""

    def forward(self, input):
        return self._run(input, act.relu)


class LeakyReLU(_InplaceOption):
    """x for x >= 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, input):
        return self._run(input, lambda x: act.leaky_relu(x, self.negative_slope))

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class SiLU(_InplaceOption):
    """x * sigmoid(x)."""

    def forward(self, input):
        return self._run(input, act.silu)


class Mish(_InplaceOption):
    """x * tanh(softplus(x))."""

    def forward(self, input):
        return self._run(input, act.mish)


class ELU(_InplaceOption):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, input):
        return self._run(input, lambda x: act.elu(x, self.alpha))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x * Phi(x); ``approximate='tanh'`` uses the tanh formula."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return act.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate='{self.approximate}'"


class Tanh(Module):
    def forward(self, input):
        return tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return act.sigmoid(input)


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above ``threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return act.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """Softmax over ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) over ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
