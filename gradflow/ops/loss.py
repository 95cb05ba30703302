"""Losses: regression, classification and divergence losses with PyTorch's reductions."""

from __future__ import annotations

__all__: list[str] = []
