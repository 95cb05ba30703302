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
from gradflow import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    blocks, language, lines = [], None, []
    for line in text.splitlines():
        if language is None and line.startswith("```"):
            language, lines = line[3:].strip(), []
        elif language is not None and line.startswith("```"):
            blocks.append((language, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


BLOCKS = [body for language, body in fenced_blocks(README.read_text()) if language == "python"]

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
        assert comment, "the README shows the loss a reader should see in a comment"
        # seeded, but another CPU's BLAS may round differently: the comment must be right to its last digit or so
        assert abs(float(printed.group(1)) - float(comment.group(1))) <= 2e-3, "the README's comment shows another loss"
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


def test_the_demo_output_shown_in_the_readme_is_what_the_demo_prints(tmp_path, monkeypatch, capsys):
    """Each stdout line of the README's `gradflow demo` transcript, numbers aside, is a line the demo prints."""
    blocks = fenced_blocks(README.read_text())
    transcript = next(body for language, body in blocks if language == "" and "MLP: test accuracy" in body)
    shown = [line for line in transcript.splitlines() if not line.startswith("gradflow: device 'auto'")]  # stderr
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--device", "cpu", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(shown), printed
    for readme_line, line in zip(shown, printed):
        parts = re.split(r"\d[\d,.]*", readme_line.replace(" on cpu", " on DEVICE"))  # numbers may differ
        pattern = r"\d[\d,.]*".join(re.escape(part) for part in parts).replace("DEVICE", r"(cpu|cuda:\d+)")
        assert re.fullmatch(pattern, line), f"README shows {readme_line!r}, the demo prints {line!r}"
    assert (tmp_path / "gradflow-digits.png").exists()
