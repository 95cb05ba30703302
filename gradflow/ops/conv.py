"""Convolutions: conv1d, conv2d and conv_transpose2d through one im2col/col2im written against xp."""

from __future__ import annotations

__all__: list[str] = []
