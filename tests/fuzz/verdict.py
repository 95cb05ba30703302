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

from .case import Arr, Case, Outcome

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


def huge(case: Case) -> bool:
    """Whether any float input holds a value past 1e4 (where overflow and cancellation begin)."""
    return any(
        isinstance(a, Arr) and a.value.dtype.kind == "f" and (np.abs(a.value[np.isfinite(a.value)]) > 1e4).any()
        for a in list(case.args) + list(case.kwargs.values())
    )


def has_pos_inf(case: Case) -> bool:
    return any(
        isinstance(a, Arr) and a.value.dtype.kind == "f" and (a.value == np.inf).any()
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
        named = any(name == s or (s.endswith("*") and name.startswith(s[:-1])) for s in self.specs) or self.specs == (
            "*",
        )
        return named and outcome.kind in self.kinds and (self.when is None or bool(self.when(case, outcome)))


def _detail(*needles):
    return lambda case, outcome: any(n in outcome.detail for n in needles)


DIFFERENCES = {
    "torch-missing-kernel": Rule(
        ("*",), ("accepts",), _detail("not implemented for", "is not implemented", "NotImplementedError")
    ),
    "sign-of-nan": Rule(
        ("sign", "abs", "norm_p1", "norm_pinf", "F.l1_loss"), ("value", "grad"), lambda case, outcome: has_nan(case)
    ),
    "torch-internal-error": Rule(("*",), ("accepts",), _detail("INTERNAL ASSERT FAILED")),
    "no-bfloat16": Rule((), ()),  # nothing to match: the suite never draws bfloat16
    "gelu-inf": Rule(
        ("F.gelu",), ("value",), lambda case, outcome: case.dtype in ("float16", "float32") and has_pos_inf(case)
    ),
    "elu-nan-grad": Rule(("F.elu",), ("grad",), lambda case, outcome: has_nan(case)),
    "conv-transpose-empty-output": Rule(
        ("F.conv_transpose2d", "nn.ConvTranspose2d"), ("accepts",), _detail("Output size is too small")
    ),
    "sdpa-nan": Rule(("F.scaled_dot_product_attention",), ("value", "grad"), lambda case, outcome: has_nan(case)),
}


def known(fix: str, specs, kinds, when=None) -> Rule:
    return Rule(tuple(specs), tuple(kinds), when, f"issue 12: {fix}")


def found(what: str, specs, kinds, when=None) -> Rule:
    return Rule(tuple(specs), tuple(kinds), when, f"issue 12, found by the fuzz suite: {what}")


KNOWN = [
    # Open issue-12 items (delete an entry once its fix is merged).
    known(
        "LayerNorm/GroupNorm/std overflow at |x| >= 1e19 in float32: compute with scaling",
        ["std*", "var*", "nn.LayerNorm", "nn.GroupNorm", "F.layer_norm", "F.group_norm", "norm*"],
        ["value", "grad"],
        lambda case, outcome: nonfinite(case) or huge(case),
    ),
    known(
        "NaN spread beyond the window (adaptive pooling, and the conv family: gradflow's explicit zero padding "
        "times an inf weight gives NaN outside the windows; PyTorch's conv backward spreads a NaN weight further)",
        ["F.conv1d", "F.conv2d", "F.conv_transpose2d", "nn.Conv2d"],
        ["value", "grad"],
        lambda case, outcome: nonfinite(case),
    ),
    # Found by this suite, not on the list: reported to the lead, fix pending.
    found(
        "cross_entropy with inf logits: gradflow's gradient is finite where PyTorch's is NaN (the cross_entropy "
        "stability fix should settle this too)",
        ["F.cross_entropy", "F.nll_loss"],
        ["grad", "value"],
        lambda case, outcome: nonfinite(case),
    ),
    found(
        "norm's gradient at a subnormal input is ~0 (its squared norm underflows); PyTorch's is sign(x)",
        ["norm*"],
        ["grad"],
    ),
    found(
        "softmax/log_softmax with NaN/inf in a slice: PyTorch gives NaN for the whole slice, gradflow 0/-inf for "
        "the other entries (also scaled_dot_product_attention, whose softmax is the backend's: +-inf scores)",
        ["softmax", "log_softmax", "F.scaled_dot_product_attention"],
        ["value", "grad"],
        lambda case, outcome: nonfinite(case),
    ),
    found(
        "d(x ** y)/dy at a negative base is finite (log|x|); PyTorch gives NaN (pow's gradient is being reworked "
        "by the 0^0 fix); d(0 ** x)/dx at x < 0 is NaN where PyTorch gives -inf/inf",
        ["pow", "rpow_scalar", "pow_scalar"],
        ["grad"],
    ),
    found(
        "BatchNorm (training), LayerNorm, GroupNorm in float16: the input gradient loses precision "
        "(PyTorch computes in float32)",
        [
            "nn.BatchNorm1d_train",
            "nn.BatchNorm2d_train",
            "nn.LayerNorm",
            "F.layer_norm",
            "nn.GroupNorm",
            "F.group_norm",
        ],
        ["grad"],
        lambda case, outcome: case.dtype == "float16",
    ),
    found(
        "TransformerEncoderLayer with inf/NaN/huge inputs: NaN placement differs (partly the layer-norm overflow; "
        "a NaN in another token of the same batch gives finite outputs where PyTorch gives NaN: not diagnosed yet)",
        ["nn.TransformerEncoderLayer", "nn.MultiheadAttention"],
        ["value", "grad"],
        lambda case, outcome: nonfinite(case) or huge(case),
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
