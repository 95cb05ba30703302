"""Dropout layer: zeroes elements with probability ``p`` in training mode, the identity in eval mode."""

from __future__ import annotations

from ...ops.dropout import _check_probability, dropout
from ..module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """During training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The mask is drawn from the input's device generator (``gradflow.manual_seed``
    makes it reproducible). In eval mode the input is returned unchanged.

    >>> import gradflow as gf
    >>> layer = gf.nn.Dropout(0.25)
    >>> layer.eval()(gf.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        _check_probability(p)
        self.p = p  # kept as given, so repr reads like PyTorch's (Dropout(p=0, ...))
        self.inplace = inplace

    def forward(self, input):
        return dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
