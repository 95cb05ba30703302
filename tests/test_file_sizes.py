"""No module of gradflow grows past ``LIMIT`` lines: a bigger file is split along a seam.

The team aims at files under ~400 lines, one family per file; this test draws the line a
little above, at 450, so that ordinary edits do not trip it but a file that keeps growing
does. Files that are over the limit today, while someone splits them, are listed in
``ALLOWED_OVER`` with a note; an entry that is no longer needed (the file shrank or went)
fails too, so the list only ever gets shorter.
"""

from __future__ import annotations

import pathlib

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1] / "gradflow"
LIMIT = 450

# path relative to gradflow/ -> why it may be over LIMIT for now. Remove an entry when its
# split lands (the test below then reminds whoever forgets).
ALLOWED_OVER: dict[str, str] = {}


def line_count(path: pathlib.Path) -> int:
    """Lines of a text file as an editor counts them (a last line without a newline counts)."""
    return len(path.read_text(encoding="utf-8").splitlines())


def oversized(package_dir: pathlib.Path, limit: int) -> dict[str, int]:
    """Every ``.py`` file under ``package_dir`` longer than ``limit`` lines, by path relative to it."""
    return {
        path.relative_to(package_dir).as_posix(): count
        for path in sorted(package_dir.rglob("*.py"))
        if (count := line_count(path)) > limit
    }


def test_no_module_is_over_the_limit_unless_allowed():
    over = {name: count for name, count in oversized(PACKAGE_DIR, LIMIT).items() if name not in ALLOWED_OVER}
    assert not over, (
        f"gradflow modules over {LIMIT} lines: "
        + ", ".join(f"{name} ({count})" for name, count in over.items())
        + "; split each along a seam (one family or concern per file, re-exported from the old module "
        "where users import it), see docs/architecture.md"
    )


def test_every_allowed_entry_is_still_needed():
    stale = [
        name for name in ALLOWED_OVER if not (PACKAGE_DIR / name).is_file() or line_count(PACKAGE_DIR / name) <= LIMIT
    ]
    assert not stale, f"remove {stale} from ALLOWED_OVER in tests/test_file_sizes.py: now at most {LIMIT} lines"


def test_oversized_counts_lines_and_finds_nested_files(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "small.py").write_text("x = 1\n" * 450)
    (package / "sub" / "big.py").write_text("x = 1\n" * 450 + "y = 2")  # the last line has no newline
    (package / "notes.txt").write_text("x\n" * 1000)  # not a module
    assert line_count(package / "small.py") == 450
    assert oversized(package, 450) == {"sub/big.py": 451}
    assert oversized(package, 451) == {}
