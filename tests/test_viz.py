"""gradflow.viz: the DOT text is checked structurally (parsed node and edge lines), render for real where
Graphviz is installed, and the missing-dependency errors by hiding the package or the program."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

import gradflow as gf
from gradflow import errors, viz

_NODE = re.compile(r'^\s+(\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
_EDGE = re.compile(r"^\s+(\w+) -> (\w+)(?: \[(.*)\])?;$")


def _parse(dot: str):
    """``(nodes, edges)``: nodes as ``{id: (label lines, attributes)}`` in text order, edges as tuples."""
    assert dot.startswith("digraph gradflow {\n") and dot.endswith("}\n")
    nodes, edges = {}, []
    for line in dot.splitlines():
        node = _NODE.match(line)
        if node:
            assert node.group(1) not in nodes, f"node {node.group(1)} emitted twice"
            nodes[node.group(1)] = (node.group(2).split("\\n"), node.group(3))
            continue
        edge = _EDGE.match(line)
        if edge:
            edges.append((edge.group(1), edge.group(2), edge.group(3) or ""))
    return nodes, edges


def _ops(nodes):
    return [(key, lines) for key, (lines, _) in nodes.items() if key.startswith("op")]


def _leaves(nodes):
    return [(key, lines, attrs) for key, (lines, attrs) in nodes.items() if key.startswith("leaf")]


def test_simple_graph_has_one_box_per_op_and_an_ellipse_per_leaf(device):
    x = gf.randn(2, 3, device=device, requires_grad=True)
    w = gf.randn(3, device=device, requires_grad=True)
    nodes, edges = _parse(viz.to_dot((x * w).sum()))
    assert [lines for _, lines in _ops(nodes)] == [
        ["MulBackward", "[2, 3] float32", str(device)],
        ["SumBackward", "[] float32", str(device)],
    ]
    leaves = _leaves(nodes)
    assert [lines for _, lines, _ in leaves] == [
        ["leaf", "[2, 3] float32", str(device)],
        ["leaf", "[3] float32", str(device)],
    ]
    assert all("shape=ellipse" in attrs and "lightblue" in attrs for _, _, attrs in leaves)
    assert all("shape=box" in nodes[key][1] for key, _ in _ops(nodes))
    assert nodes["out"][0] == ["output", "[] float32", str(device)] and "darkolivegreen1" in nodes["out"][1]
    assert sorted(edges) == [("leaf0", "op0", ""), ("leaf1", "op0", ""), ("op0", "op1", ""), ("op1", "out", "")]


def test_ops_are_listed_in_tape_order():
    x = gf.randn(3, dtype=gf.float64, requires_grad=True)
    exp, sin, tanh = x.exp(), x.sin(), x.tanh()  # recorded in this order
    y = (tanh + exp) * sin
    nodes, edges = _parse(viz.to_dot(y))
    assert [lines[0] for _, lines in _ops(nodes)] == [
        "ExpBackward",
        "SinBackward",
        "TanhBackward",
        "AddBackward",
        "MulBackward",
    ]
    assert [key for key, _ in _ops(nodes)] == [f"op{i}" for i in range(5)]
    assert _ops(nodes)[0][1][1] == "[3] float64"
    assert ("op2", "op3", "") in edges and ("op0", "op3", "") in edges and ("op1", "op4", "") in edges
    assert sum(1 for source, _, _ in edges if source == "leaf0") == 3


def test_shared_subexpression_appears_once_with_an_edge_per_use():
    x = gf.randn(4, requires_grad=True)
    h = x.exp()
    nodes, edges = _parse(viz.to_dot(h * h + h))
    names = [lines[0] for _, lines in _ops(nodes)]
    assert names == ["ExpBackward", "MulBackward", "AddBackward"]
    assert len(_leaves(nodes)) == 1
    assert edges.count(("op0", "op1", "")) == 2 and ("op0", "op2", "") in edges


def test_split_outputs_are_told_apart_on_the_edges():
    x = gf.randn(4, 3, requires_grad=True)
    first, second = x.split(2)
    nodes, edges = _parse(viz.to_dot(first * 2 + second))
    split_id, split_lines = _ops(nodes)[0]
    assert split_lines == ["SplitBackward", "0: [2, 3] float32", "1: [2, 3] float32", "cpu"]
    assert (split_id, "op1", 'label="0"') in edges and (split_id, "op2", 'label="1"') in edges
    assert len(_ops(nodes)) == 3  # split, mul, add: the split node is drawn once


def test_unbind_and_max_with_dim_edges_name_their_outputs():
    x = gf.randn(3, 4, requires_grad=True)
    rows = x.unbind(0)
    nodes, edges = _parse(viz.to_dot(rows[2] * rows[0]))
    assert {attrs for source, _, attrs in edges if source == "op0"} == {'label="2"', 'label="0"'}

    values, indices = x.max(dim=1)
    nodes, edges = _parse(viz.to_dot(values.sum()))
    max_lines = _ops(nodes)[0][1]
    assert max_lines == ["MaxDimBackward", "0: [3] float32", "1: [3] int64", "cpu"]
    assert ("op0", "op1", 'label="0"') in edges


def test_root_from_a_multi_output_op_is_marked_with_its_output_number():
    x = gf.randn(4, requires_grad=True)
    _, second = x.split(2)
    nodes, edges = _parse(viz.to_dot(second))
    assert edges == [("leaf0", "op0", ""), ("op0", "out", 'label="1"')]
    assert nodes["out"][0][:2] == ["output", "[2] float32"]


def test_tensor_without_a_graph_is_a_single_node():
    nodes, edges = _parse(viz.to_dot(gf.ones(2, 2)))
    assert list(nodes) == ["out"] and edges == []
    assert nodes["out"][0] == ["output (no grad)", "[2, 2] float32", "cpu"]
    nodes, edges = _parse(viz.to_dot(gf.ones(3, requires_grad=True)))
    assert list(nodes) == ["out"] and edges == [] and "lightblue" in nodes["out"][1]


def test_ids_are_stable_across_identical_graphs():
    def build():
        x = gf.ones(2, requires_grad=True)
        return ((x * 3).exp() + x).mean()

    first, second = viz.to_dot(build()), viz.to_dot(build())
    assert first == second  # the engine's global sequence numbers differ; the text does not


def test_a_5000_op_chain_needs_no_recursion():
    x = gf.ones(2, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    nodes, edges = _parse(viz.to_dot(y))
    assert len(_ops(nodes)) == 5000 and len(_leaves(nodes)) == 1
    assert len(edges) == 5001 and edges[-1] == ("op4999", "out", "")


def test_show_saved_draws_saved_arrays_until_backward_frees_them():
    x = gf.randn(2, 3, requires_grad=True)
    w = gf.randn(3, requires_grad=True)
    y = (x * w).sum()
    nodes, edges = _parse(viz.to_dot(y, show_saved=True))
    saved = {key: lines for key, (lines, _) in nodes.items() if key.startswith("saved")}
    assert saved == {"saved0_0": ["saved 0", "[2, 3] float32"], "saved0_1": ["saved 1", "[3] float32"]}
    assert ("saved0_0", "op0", "style=dashed") in edges and ("saved0_1", "op0", "style=dashed") in edges
    assert not any(key.startswith("saved") for key in _parse(viz.to_dot(y))[0])
    y.backward()
    nodes, _ = _parse(viz.to_dot(y, show_saved=True))
    assert not any(key.startswith("saved") for key in nodes)
    assert nodes["op0"][0][-1] == "(saved values freed)"


def test_to_dot_rejects_non_tensors():
    with pytest.raises(TypeError, match="to_dot: expected a gradflow Tensor, got list"):
        viz.to_dot([1.0])


# -- render ------------------------------------------------------------------------
def _graph():
    x = gf.randn(2, requires_grad=True)
    return (x.exp() * x).sum()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_render_writes_svg_and_png(tmp_path):
    pytest.importorskip("graphviz")
    svg = viz.render(_graph(), tmp_path / "graph.svg")
    text = svg.read_text()
    assert svg == tmp_path / "graph.svg" and "<svg" in text and "MulBackward" in text and "ExpBackward" in text
    png = viz.render(_graph(), tmp_path / "graph.PNG")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    forced = viz.render(_graph(), tmp_path / "picture", format="svg")
    assert "<svg" in forced.read_text()


def test_render_needs_a_known_format(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        viz.render(_graph(), tmp_path / "graph.gif")
    with pytest.raises(ValueError, match="format='svg'"):
        viz.render(_graph(), tmp_path / "graph")
    assert list(tmp_path.iterdir()) == []


def test_render_without_the_graphviz_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` raise ImportError
    with pytest.raises(errors.MissingDependencyError, match="graphviz Python package is not installed") as caught:
        viz.render(_graph(), tmp_path / "graph.svg")
    message = str(caught.value)
    assert "pip install graphviz" in message and "apt-get install graphviz" in message
    assert isinstance(caught.value, ImportError)


def test_render_without_dot_says_what_to_install(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with pytest.raises(errors.MissingDependencyError, match=r"`dot` program is not on PATH.*apt-get install graphviz"):
        viz.render(_graph(), tmp_path / "graph.png")
    assert not (tmp_path / "graph.png").exists()


def test_render_when_dot_cannot_run_says_what_to_install(tmp_path, monkeypatch):
    graphviz = pytest.importorskip("graphviz")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: "/usr/bin/dot")

    def broken_pipe(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz, "pipe", broken_pipe)
    with pytest.raises(errors.MissingDependencyError, match=r"could not be run.*pip install graphviz"):
        viz.render(_graph(), tmp_path / "graph.svg")
