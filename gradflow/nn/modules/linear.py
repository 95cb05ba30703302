"""Linear layers and shape-only modules: Identity, Linear, Flatten, Unflatten."""

from __future__ import annotations

import math

from ...errors import ArgumentTypeError
from ...ops.creation import empty
from ...ops.linalg import linear
from .. import init
from ..module import Module
from ..parameter import Parameter

__all__ = ["Identity", "Linear", "Flatten", "Unflatten"]


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features).

    Initialised as in PyTorch: W ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5)),
    b ~ U(-1/sqrt(in), 1/sqrt(in)).

    Example:
        >>> import gradflow as gf
        >>> layer = gf.nn.Linear(3, 2)
        >>> layer
        Linear(in_features=3, out_features=2, bias=True)
        >>> layer.weight.shape, layer.bias.shape
        ((2, 3), (2,))
        >>> with gf.no_grad():
        ...     _ = layer.weight.fill_(0.5), layer.bias.fill_(1.0)
        >>> layer(gf.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])).tolist()
        [[4.0, 4.0], [1.0, 1.0]]
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flattens dimensions ``start_dim`` to ``end_dim`` into one (batch dimension kept by default)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dimension ``dim`` into ``unflattened_size``."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(size, int) and not isinstance(size, bool) for size in unflattened_size
        ):
            raise ArgumentTypeError(
                f"Unflatten: unflattened_size must be a tuple or list of ints, got {unflattened_size!r}; "
                "pass e.g. (2, 3) or (2, -1)"
            )
        self.dim = dim
        self.unflattened_size = unflattened_size  # kept as given (list or tuple): repr shows it as PyTorch does

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
