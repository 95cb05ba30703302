"""Placeholder until the layer lands."""

__all__: list[str] = []
