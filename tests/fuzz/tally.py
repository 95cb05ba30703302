"""The suite's running counts: cases tried by verdict, per spec, and which KNOWN entries were hit."""

from __future__ import annotations

from collections import Counter

TOTAL: Counter = Counter()  # verdict -> cases
PER_SPEC: dict[str, Counter] = {}
KNOWN_HITS: Counter = Counter()  # index into verdict.KNOWN -> cases
SPEC_COUNT = 0  # set by test_fuzz.py: how many specs the registry holds
