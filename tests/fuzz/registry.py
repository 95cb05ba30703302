"""Every fuzz spec, gathered from the family modules (one line per family)."""

from __future__ import annotations

from . import elementwise, layers, linalg, nn, reduce, shape

FAMILIES = (elementwise, reduce, shape, linalg, nn, layers)

SPECS = [spec for family in FAMILIES for spec in family.SPECS]
