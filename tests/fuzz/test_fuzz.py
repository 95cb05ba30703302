"""Differential fuzzing against PyTorch 2.13: every spec in tests/fuzz/registry.py, forward and gradient.

Each case matches PyTorch (values within the dtype's tolerance, dtypes, shapes, NaN/inf places, the
gradients too) or raises a typed gradflow error where PyTorch raises. A mismatch listed in
docs/differences.md counts as a deliberate difference; one in ``verdict.KNOWN`` xfails the spec
(not strictly); any other fails it, naming the case. Hypothesis runs derandomized;
``GRADFLOW_FUZZ_EXAMPLES`` (default 12) sets the examples per spec for deep runs.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from . import tally  # noqa: E402 - after the skip: the specs import torch
from .engine import run_case  # noqa: E402
from .registry import SPECS  # noqa: E402
from .verdict import DIFFERENCES, judge, table_rows  # noqa: E402

EXAMPLES = int(os.environ.get("GRADFLOW_FUZZ_EXAMPLES", "12"))
tally.SPEC_COUNT = len(SPECS)


def test_differences_table_and_rules_agree():
    rows = table_rows()
    assert rows, "docs/differences.md has no table rows"
    assert set(rows) == set(DIFFERENCES), "each row of docs/differences.md needs a rule in verdict.py, and back"


def test_spec_names_are_unique():
    names = [spec.name for spec in SPECS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_matches_torch(spec):
    rows = table_rows()
    failures, known = [], {}
    counts = tally.PER_SPEC.setdefault(spec.name, tally.Counter())

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data):
        dtype = data.draw(st.sampled_from(spec.dtypes), label="dtype")
        case = spec.sample(data.draw, dtype)
        outcome = run_case(spec, case, seed=len(failures) + sum(counts.values()))
        verdict, reason = judge(spec.name, case, outcome, rows)
        counts[verdict] += 1
        tally.TOTAL[verdict] += 1
        if verdict == "known":
            index = int(reason.split("]")[0].removeprefix("KNOWN["))
            tally.KNOWN_HITS[index] += 1
            known.setdefault(reason, f"{outcome.detail} on {case.describe()}")
        elif verdict == "fail":
            failures.append(f"{reason}\n    case: {case.describe()}")

    run()
    if failures:
        pytest.fail(f"{len(failures)} case(s) differ from PyTorch:\n  " + "\n  ".join(failures[:5]), pytrace=False)
    if known:
        pytest.xfail("; ".join(f"{reason} (e.g. {example[:200]})" for reason, example in known.items()))
    assert sum(counts.values()) >= 1
