"""Op table entries for the index family (see tests/opinfo/__init__.py)."""

OPS = []
