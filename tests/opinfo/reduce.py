"""Op table entries for the reduce family (see tests/opinfo/__init__.py)."""

OPS = []
