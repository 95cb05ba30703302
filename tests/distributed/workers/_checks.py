"""What every worker uses: run named checks on every rank and print one CHECK line per check and rank."""

from __future__ import annotations

import sys
import traceback


def run_checks(checks: dict, rank: int) -> None:
    """Run each check; report ok or the failure. A check must run the same collectives on every rank."""
    for name, check in checks.items():
        try:
            check()
        except AssertionError as error:
            detail = str(error).replace("\n", " | ")[:2000]
            _report(f"CHECK {rank} {name} FAIL {detail}")
        except Exception:
            detail = traceback.format_exc().replace("\n", " | ")[-2000:]
            _report(f"CHECK {rank} {name} FAIL {detail}")
            raise
        else:
            _report(f"CHECK {rank} {name} ok")


def _report(line: str) -> None:
    # One write per line (print writes the newline separately): the ranks share one stdout.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
