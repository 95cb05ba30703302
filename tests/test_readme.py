"""The README's Python examples run as written and print what a reader expects.

Each block runs in a fresh temporary folder (files it writes land there, never in the
system temp folder or the checkout) with its output captured; one test per block checks
the printed text and the values a reader is promised.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import gradflow as gf

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)

# A line that names each block; every block needs one (and a test below).
MARKERS = {
    "taste": "gf.autograd.functional.hessian",
    "accumulation": "micro_inputs, micro_targets",
    "bench": "gf.bench.compare(",
}


def block(name: str) -> str:
    found = [text for text in BLOCKS if MARKERS[name] in text]
    assert len(found) == 1, f"README.md: expected one python block containing {MARKERS[name]!r}, found {len(found)}"
    return found[0]


def run(name: str, folder: Path, monkeypatch, capsys) -> tuple[dict, str]:
    """Run the block as a reader would paste it, in ``folder``; its globals and what it printed."""
    monkeypatch.chdir(folder)
    capsys.readouterr()
    namespace: dict = {"__name__": "__main__"}
    exec(compile(block(name), f"README.md ({name})", "exec"), namespace)
    return namespace, capsys.readouterr().out


def test_every_python_block_has_a_test():
    assert BLOCKS, "README.md has no python example"
    unclaimed = [text.splitlines()[0:3] for text in BLOCKS if not any(m in text for m in MARKERS.values())]
    assert not unclaimed, f"README python blocks without a test in tests/test_readme.py: {unclaimed}"


def test_a_taste_fits_saves_in_the_current_folder_and_differentiates_twice(tmp_path, monkeypatch, capsys):
    namespace, out = run("taste", tmp_path, monkeypatch, capsys)
    printed = re.fullmatch(r"loss (\d+\.\d{4})\n", out)
    assert printed, f"expected one line 'loss 0.xxxx', got {out!r}"
    assert float(printed.group(1)) < 0.1  # y = x.sum(): the MLP fits it
    comment = re.search(r"# loss (\d\.\d{4}) on the CPU", block("taste"))
    if gf.get_default_device().type == "cpu":
        assert comment and printed.group(1) == comment.group(1), "the README's comment shows another loss"
    checkpoint = gf.load(tmp_path / "ckpt.safetensors")
    assert set(checkpoint) == {"model", "optimizer"}
    w = namespace["w"].detach().cpu().numpy()
    np.testing.assert_allclose(namespace["g"].detach().cpu().numpy(), 3 * w**2, rtol=1e-6)
    np.testing.assert_allclose(namespace["hessian"].cpu().numpy(), np.diag(6 * w), rtol=1e-6)


def test_gradient_accumulation_prints_nothing_and_steps(tmp_path, monkeypatch, capsys):
    namespace, out = run("accumulation", tmp_path, monkeypatch, capsys)
    assert out == ""
    assert namespace["model"].weight.grad is not None and list(tmp_path.iterdir()) == []


def test_bench_snippet_prints_the_table_and_the_profile(tmp_path, monkeypatch, capsys):
    _, out = run("bench", tmp_path, monkeypatch, capsys)
    assert "rich.table.Table object" not in out
    lines = out.splitlines()
    assert lines[0].strip() == "gradflow bench: float32, 3 timed steps after 1 warm-up, times in ms: median [IQR]"
    for batch in (8, 32):
        assert any(re.match(rf"│ gradflow +│ cpu +│ +{batch} │ \d", line) for line in lines), out
    if not gf.cuda.is_available():  # the missing GPU is one row that says why, brackets and all
        assert re.search(rf"│ unavailable: .*{re.escape(gf.cuda.unavailable_reason())} │\n", out), out
    profile = out[out.index("gradflow profiler: top ops") :]
    assert "Linear" in profile and "LinearBackward" in profile and "wall time" in profile
    assert list(tmp_path.iterdir()) == []
