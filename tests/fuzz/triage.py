"""Triage helper: ``python -m tests.fuzz.triage [examples] [name-substring]`` prints each spec's
verdicts and the first unexplained mismatch per (kind, dtype), to sort new findings quickly."""

from __future__ import annotations

import sys
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .engine import run_case
from .registry import SPECS
from .verdict import judge, table_rows


def triage(examples: int, pattern: str) -> None:
    rows = table_rows()
    for spec in SPECS:
        if pattern not in spec.name:
            continue
        counts, first = Counter(), {}
        run = _runner(spec, examples, rows, counts, first)
        run()
        print(spec.name, dict(counts))
        for key, (detail, case) in first.items():
            print("   ", key, detail[:300], "|", case[:300])


def _runner(spec, examples, rows, counts, first):

    @settings(
        max_examples=examples, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.data())
    def run(data):
        dtype = data.draw(st.sampled_from(spec.dtypes))
        case = spec.sample(data.draw, dtype)
        outcome = run_case(spec, case)
        verdict, reason = judge(spec.name, case, outcome, rows)
        counts[verdict] += 1
        if verdict == "fail" or (verdict == "difference" and len(sys.argv) > 3):
            first.setdefault((outcome.kind, dtype), (outcome.detail, case.describe()))

    return run


if __name__ == "__main__":
    triage(int(sys.argv[1]) if len(sys.argv) > 1 else 20, sys.argv[2] if len(sys.argv) > 2 else "")
