"""Op table entries for the shape family (see tests/opinfo/__init__.py)."""

OPS = []
