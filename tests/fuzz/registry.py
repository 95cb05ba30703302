"""Every fuzz spec, gathered from the family modules (one line per family)."""

from __future__ import annotations

from . import elementwise

FAMILIES = (elementwise,)

SPECS = [spec for family in FAMILIES for spec in family.SPECS]
