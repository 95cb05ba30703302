"""Normalisation: batch_norm, layer_norm and group_norm."""

from __future__ import annotations

__all__: list[str] = []
