"""Neural-network building blocks (``gradflow.nn.functional`` for now)."""

from . import functional

__all__ = ["functional"]
