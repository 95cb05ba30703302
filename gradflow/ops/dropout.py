"""Dropout: a mask drawn from the device's generator, scaled by 1/(1-p)."""

from __future__ import annotations

__all__: list[str] = []
