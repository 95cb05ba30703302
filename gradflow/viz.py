"""Pictures of the recorded graph: Graphviz DOT text, and SVG/PNG files drawn from it.

``to_dot(y)`` walks ``y.grad_fn`` and its edges and returns DOT text: one box per
recorded op (its backward name, output shapes, dtypes and device), a light blue
ellipse per leaf that requires grad, a green box for ``y`` itself, and an edge
from every input to the op that consumed it, labelled with the output number
when the producer has several outputs. Ops are listed in tape order and named
``op0, op1, ...`` by their rank on the tape, so the same code draws the same
text every time. ``render(y, "graph.svg")`` turns that text into a file with the
``graphviz`` package and Graphviz's ``dot`` program.

>>> import gradflow as gf
>>> x = gf.ones(2, requires_grad=True)
>>> print(gf.viz.to_dot((x * 2).sum()))  # doctest: +ELLIPSIS
digraph gradflow {
...
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from .autograd.function import _RELEASED, _SAVED_SCALAR
from .errors import ArgumentTypeError, ArgumentValueError, MissingDependencyError, shape_str
from .tensor import Tensor

_FORMATS = ("svg", "png")
_OP_STYLE = "shape=box style=filled fillcolor=white"
_LEAF_STYLE = "shape=ellipse style=filled fillcolor=lightblue"
_OUTPUT_STYLE = 'shape=box style="filled,bold" fillcolor=darkolivegreen1'
_SAVED_STYLE = "shape=box style=filled fillcolor=orange"
_PLAIN_STYLE = "shape=box style=filled fillcolor=lightgray"


def to_dot(tensor: Tensor, *, show_saved: bool = False) -> str:
    """Graphviz DOT text of the graph recorded behind ``tensor``.

    Nodes: ``op<i>`` (one per recorded op, ``i`` its rank on the tape), ``leaf<j>`` (leaves
    that require grad, numbered by first use) and ``out`` (``tensor`` itself). With
    ``show_saved=True`` every array an op saved for backward is drawn too, as an orange
    ``saved<i>_<k>`` box with a dashed edge into its op. A tensor with no recorded graph
    gives a graph with the single node ``out``.
    """
    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"to_dot: expected a gradflow Tensor, got {type(tensor).__name__}")
    lines = [
        "digraph gradflow {",
        '  graph [rankdir=TB fontname="Helvetica"];',
        '  node [fontname="Helvetica" fontsize=10];',
        '  edge [fontname="Helvetica" fontsize=9];',
    ]
    root = tensor._node
    if root is None:
        style = _LEAF_STYLE if tensor._requires_grad else _PLAIN_STYLE
        kind = "output (leaf)" if tensor._requires_grad else "output (no grad)"
        lines.append(f"  out [label={_label(kind, _describe(tensor), str(tensor._device))} {style}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    nodes = _nodes_in_tape_order(root)
    op_ids = {id(node): f"op{rank}" for rank, node in enumerate(nodes)}
    leaf_ids: dict = {}
    leaves = []
    edges = []
    for node in nodes:
        for edge in node.next_edges:
            if edge is None:
                continue
            producer, output_nr = edge
            if isinstance(producer, Tensor):
                if id(producer) not in leaf_ids:
                    leaf_ids[id(producer)] = f"leaf{len(leaves)}"
                    leaves.append(producer)
                source = leaf_ids[id(producer)]
            else:
                source = op_ids[id(producer)]
            edges.append(_edge(source, op_ids[id(node)], producer, output_nr))

    for leaf in leaves:
        lines.append(
            f"  {leaf_ids[id(leaf)]} [label={_label('leaf', _describe(leaf), str(leaf._device))} {_LEAF_STYLE}];"
        )
    for node in nodes:
        lines.append(f"  {op_ids[id(node)]} [label={_label(*_op_lines(node))} {_OP_STYLE}];")
    lines.append(f"  out [label={_label('output', _describe(tensor), str(tensor._device))} {_OUTPUT_STYLE}];")
    if show_saved:
        for node in nodes:
            lines.extend(_saved_lines(node, op_ids[id(node)]))
    lines.extend(edges)
    lines.append(_edge(op_ids[id(root)], "out", root, tensor._output_nr))
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensor: Tensor, path, format: str | None = None, *, show_saved: bool = False) -> Path:  # noqa: A002
    """Draw the graph behind ``tensor`` into ``path`` as SVG or PNG; returns the path written.

    ``format`` ('svg' or 'png') defaults to the suffix of ``path``. Needs the ``graphviz``
    Python package and Graphviz's ``dot`` program; without them a MissingDependencyError
    says what to install (``to_dot`` needs neither).
    """
    path = Path(path)
    chosen = (format or path.suffix.lstrip(".")).lower()
    if chosen not in _FORMATS:
        raise ArgumentValueError(
            f"render: can't tell which image format to write for {str(path)!r} (format={format!r}); "
            "pass a path ending in .svg or .png, or format='svg' / format='png'"
        )
    graphviz = _require_graphviz()
    text = to_dot(tensor, show_saved=show_saved)
    try:
        image = graphviz.pipe("dot", chosen, text.encode())
    except graphviz.ExecutableNotFound as error:
        raise MissingDependencyError(_missing("Graphviz's `dot` program could not be run")) from error
    path.write_bytes(image)
    return path


def _require_graphviz():
    """The graphviz module, once both it and the `dot` program are known to be installed."""
    try:
        graphviz = importlib.import_module("graphviz")
    except ImportError as error:
        raise MissingDependencyError(_missing("the graphviz Python package is not installed")) from error
    if shutil.which("dot") is None:
        raise MissingDependencyError(_missing("Graphviz's `dot` program is not on PATH"))
    return graphviz


def _missing(what: str) -> str:
    return (
        f"render: {what}. Drawing a graph needs both the Python package (`pip install graphviz`) and the "
        "Graphviz system package that provides `dot` (e.g. `apt-get install graphviz`, `brew install graphviz` "
        "or `conda install graphviz`); gradflow.viz.to_dot(tensor) gives the DOT text without either"
    )


def _nodes_in_tape_order(root) -> list:
    """Every op node reachable from ``root``, each once, sorted by sequence number (no recursion)."""
    seen = {id(root): root}
    stack = [root]
    while stack:
        node = stack.pop()
        for edge in node.next_edges:
            if edge is None or isinstance(edge[0], Tensor):
                continue
            producer = edge[0]
            if id(producer) not in seen:
                seen[id(producer)] = producer
                stack.append(producer)
    return sorted(seen.values(), key=lambda node: node.seq)


def _edge(source: str, target: str, producer, output_nr: int) -> str:
    # Only a producer with several outputs needs its output number spelled out.
    many = not isinstance(producer, Tensor) and producer.num_outputs > 1
    return f'  {source} -> {target} [label="{output_nr}"];' if many else f"  {source} -> {target};"


def _op_lines(node) -> list:
    lines = [node.name()]
    metas = node.output_meta
    if len(metas) == 1:
        lines.append(_meta(*metas[0]))
    else:
        lines.extend(f"{output_nr}: {_meta(*meta)}" for output_nr, meta in enumerate(metas))
    out_device = node.out_device or node.device
    lines.append(str(node.device) if out_device is node.device else f"{node.device} -> {out_device}")
    if node._saved is _RELEASED:
        lines.append("(saved values freed)")
    return lines


def _saved_lines(node, op_id: str) -> list:
    """Orange boxes for what ``node`` saved for backward; scalars and released values are skipped."""
    saved = node._saved
    if saved is None or saved is _RELEASED:
        return []
    lines = []
    for position, entry in enumerate(saved):
        if entry[0] == _SAVED_SCALAR:
            continue
        value = entry[1]
        meta = _describe(value) if isinstance(value, Tensor) else _meta(value.shape, value.dtype)
        saved_id = f"saved{op_id[2:]}_{position}"
        lines.append(f"  {saved_id} [label={_label(f'saved {position}', meta)} {_SAVED_STYLE}];")
        lines.append(f"  {saved_id} -> {op_id} [style=dashed];")
    return lines


def _describe(tensor: Tensor) -> str:
    return _meta(tensor._data.shape, tensor._dtype)


def _meta(shape, dtype) -> str:
    # gradflow dtypes print as gradflow.float32; NumPy dtypes (saved arrays) as float32.
    return f"{shape_str(shape)} {getattr(dtype, 'name', dtype)}"


def _label(*lines: str) -> str:
    """A quoted DOT label, one line per argument."""
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


__all__ = ["render", "to_dot"]
