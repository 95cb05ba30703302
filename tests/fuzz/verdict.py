"""What a mismatch means: a deliberate difference (docs/differences.md), a known bug, or a failure.

``DIFFERENCES`` holds one rule per row of the table in ``docs/differences.md`` (keyed by the row's
id; the reason shown is the table's). ``KNOWN`` is the one central list of mismatches that a fix
on another branch of issue 12 removes, or that the fuzz suite found and reported: each entry
xfails (never strictly) the cases it matches. After merging a fix, delete its entries: the
suite's summary lists entries that matched no case ("stale") so they are easy to find.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine import Arr, Case, Outcome

TABLE = Path(__file__).resolve().parents[2] / "docs" / "differences.md"


def table_rows() -> dict[str, str]:
    """The ids and reasons of docs/differences.md's table."""
    rows = {}
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and re.fullmatch(r"[a-z][a-z0-9-]*", cells[0]) and cells[0] != "id":
            rows[cells[0]] = f"{cells[2]} ({cells[3]})"
    return rows


def nonfinite(case: Case) -> bool:
    """Whether any float input holds an inf or NaN."""
    return any(
        isinstance(a, Arr) and a.value.dtype.kind == "f" and not np.isfinite(a.value).all()
        for a in list(case.args) + list(case.kwargs.values())
    )


def has_nan(case: Case) -> bool:
    return any(
        isinstance(a, Arr) and a.value.dtype.kind == "f" and np.isnan(a.value).any()
        for a in list(case.args) + list(case.kwargs.values())
    )


def arg_dtypes(case: Case) -> set:
    return {a.value.dtype.name for a in list(case.args) + list(case.kwargs.values()) if isinstance(a, Arr)}


def empty(case: Case) -> bool:
    return any(isinstance(a, Arr) and a.value.size == 0 for a in list(case.args) + list(case.kwargs.values()))


@dataclass
class Rule:
    """Matches a mismatch: spec names (exact, or prefix ending in '*'), kinds, and a predicate."""

    specs: tuple
    kinds: tuple
    when: Callable | None = None  # when(case, outcome) -> bool
    reason: str = ""

    def matches(self, name: str, case: Case, outcome: Outcome) -> bool:
        named = any(name == s or (s.endswith("*") and name.startswith(s[:-1])) for s in self.specs) or self.specs == ("*",)
        return named and outcome.kind in self.kinds and (self.when is None or bool(self.when(case, outcome)))


def _detail(*needles):
    return lambda case, outcome: any(n in outcome.detail for n in needles)


DIFFERENCES = {
    "torch-missing-kernel": Rule(
        ("*",), ("accepts",), _detail("not implemented for", "is not implemented", "NotImplementedError")
    ),
    "sign-of-nan": Rule(("sign", "abs"), ("value", "grad"), lambda case, outcome: has_nan(case)),
    "no-bfloat16": Rule((), ()),  # nothing to match: the suite never draws bfloat16
}


def known(fix: str, specs, kinds, when=None) -> Rule:
    return Rule(tuple(specs), tuple(kinds), when, f"issue 12: {fix}")


def found(what: str, specs, kinds, when=None) -> Rule:
    return Rule(tuple(specs), tuple(kinds), when, f"issue 12, found by the fuzz suite: {what}")


KNOWN = [
    known("raw NumPy errors (sign(bool), -bool, bool - bool, int ** negative int)", ["sign"], ["untyped"]),
    known("raw NumPy errors (sign(bool), -bool, bool - bool, int ** negative int)", ["neg", "sub"], ["untyped"]),
    known(
        "raw NumPy errors (sign(bool), -bool, bool - bool, int ** negative int)",
        ["pow", "pow_scalar", "rpow_scalar"],
        ["untyped"],
        _detail("negative integer powers"),
    ),
]


def judge(name: str, case: Case, outcome: Outcome, rows: dict[str, str]) -> tuple[str, str]:
    """("match" | "typed" | "difference" | "known" | "fail", reason) for one outcome."""
    if outcome.ok:
        return outcome.kind, ""
    for row, rule in DIFFERENCES.items():
        if rule.matches(name, case, outcome):
            return "difference", f"{row}: {rows.get(row, '(row missing from docs/differences.md)')}"
    for index, rule in enumerate(KNOWN):
        if rule.matches(name, case, outcome):
            return "known", f"KNOWN[{index}] {rule.reason}"
    return "fail", f"{outcome.kind}: {outcome.detail}"
