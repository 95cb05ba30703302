"""Prints the fuzz suite's counts after a run (and writes them as JSON to $GRADFLOW_FUZZ_REPORT)."""

from __future__ import annotations

import json
import os

from . import tally
from .verdict import KNOWN


def pytest_terminal_summary(terminalreporter):
    if not tally.TOTAL:
        return
    total = sum(tally.TOTAL.values())
    counts = ", ".join(f"{name} {count}" for name, count in sorted(tally.TOTAL.items()))
    terminalreporter.write_sep("-", f"differential fuzz vs PyTorch: {total} cases: {counts}")
    if len(tally.PER_SPEC) == tally.SPEC_COUNT:  # the whole suite ran: KNOWN entries no case hit are stale
        stale = [f"KNOWN[{i}] {rule.reason}" for i, rule in enumerate(KNOWN) if not tally.KNOWN_HITS[i]]
        for line in stale:
            terminalreporter.write_line(f"  not hit (delete once its fix is merged, or draw more examples): {line}")
    path = os.environ.get("GRADFLOW_FUZZ_REPORT")
    if path:
        report = {
            "total": dict(tally.TOTAL),
            "per_spec": {name: dict(c) for name, c in sorted(tally.PER_SPEC.items())},
            "known_hits": {str(k): v for k, v in sorted(tally.KNOWN_HITS.items())},
        }
        with open(path, "w") as handle:
            json.dump(report, handle, indent=1)
