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
            print(f"CHECK {rank} {name} FAIL {detail}", flush=True)
        except Exception:
            detail = traceback.format_exc().replace("\n", " | ")[-2000:]
            print(f"CHECK {rank} {name} FAIL {detail}", flush=True)
            raise
        else:
            print(f"CHECK {rank} {name} ok", flush=True)
    sys.stdout.flush()
