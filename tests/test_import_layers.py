"""gradflow's modules import each other without cycles, and at module top.

The graph is read from the source with ``ast`` (nothing is imported), so it sees every
import statement: at module level, inside functions and classes, under ``if``/``try``;
relative and absolute; ``import a.b`` and ``from . import z``. An edge goes to the module
an import names: ``from ..ops import creation`` and ``from ..ops.creation import tensor``
point at ``gradflow.ops.creation``; ``from .. import errors`` at ``gradflow.errors``;
``from ..ops import bind`` (a name, not a module) at ``gradflow.ops`` itself. The parent
packages Python runs first are not edges: a package's ``__init__`` is a module like the
others, with the edges its own imports give it.

Imports under ``if TYPE_CHECKING:`` are edges too: a type checker follows them, and the
layering is about what a reader must know, not only what runs.

Function-level imports are refused except for optional or heavy third-party packages,
imported where they are used so that ``import gradflow`` stays fast and works on a machine
without a GPU (see ``LAZY_THIRD_PARTY``).
"""

from __future__ import annotations

import ast
import pathlib
from dataclasses import dataclass

import pytest

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1] / "gradflow"

# Third-party packages that may be imported inside a function, and why. Anything else
# (gradflow's own modules, the standard library, NumPy) is imported at module top.
LAZY_THIRD_PARTY = {
    "cupy": "optional (GPU only); importing it initialises CUDA",
    "cupyx": "optional (GPU only), part of CuPy",
    "cuda": "cuda.bindings (cuda-python): optional, NVRTC compile checks only",
    "torch": "optional; the benchmarks' reference twin",
    "graphviz": "optional; viz.render only",
    "matplotlib": "heavy (~150 ms); plots of `gradflow bench` and the demo only",
    "sklearn": "heavy; the digits data set of the demo only",
    "rich": "console tables of the CLI only",
    "tqdm": "progress bars of the CLI only",
    "threadpoolctl": "`gradflow info`'s BLAS report only",
    "mpi4py": "optional (distributed extra); importing it runs MPI_Init: init_process_group and the launcher only",
}


@dataclass(frozen=True)
class Import:
    """One imported module: where the statement is, and whether it is inside a def or class."""

    source: str
    target: str
    line: int
    nested: bool


def module_files(package_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    modules = {}
    root = package_dir.parent
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _statements(tree: ast.Module):
    """Every import statement with whether it sits inside a function or class body."""
    stack = [(node, False) for node in tree.body]
    while stack:
        node, nested = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, nested
            continue
        inner = nested or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def imports_of(name: str, path: pathlib.Path, modules: dict[str, pathlib.Path]) -> list[Import]:
    """The imports of one module; targets outside the package keep their full dotted name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node, nested in sorted(_statements(tree), key=lambda pair: pair[0].lineno):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            # `from pkg import sub` imports the module pkg.sub when there is one, else a name of pkg.
            targets = [
                f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix for alias in node.names
            ]
        for target in dict.fromkeys(targets):
            found.append(Import(name, target, node.lineno, nested))
    return found


def import_graph(package_dir: pathlib.Path) -> tuple[dict[str, set[str]], list[Import]]:
    """Module -> the package modules it imports, and the list of every import."""
    modules = module_files(package_dir)
    graph = {name: set() for name in modules}
    every = []
    for name, path in modules.items():
        for imported in imports_of(name, path, modules):
            every.append(imported)
            if imported.target in modules and imported.target != name:
                graph[name].add(imported.target)
    return graph, every


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component that has one.

    Tarjan's algorithm, iterative so a deep graph cannot hit the recursion limit.
    """
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(set(component))
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first search back to it)."""
    start = min(component)
    previous = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def _describe(cycle: list[str], every: list[Import]) -> str:
    lines = []
    for source, target in zip(cycle, cycle[1:]):
        where = [i for i in every if i.source == source and i.target == target]
        detail = ", ".join(f"line {i.line}{' (in a function)' if i.nested else ''}" for i in where)
        lines.append(f"  {source} -> {target}  [{detail}]")
    return "\n".join(lines)


# -- the checks on gradflow ---------------------------------------------------------------


def test_gradflow_has_no_import_cycle():
    graph, every = import_graph(PACKAGE_DIR)
    found = cycles(graph)
    message = "\n\n".join(" -> ".join(cycle) + "\n" + _describe(cycle, every) for cycle in found)
    assert not found, (
        f"{len(found)} import cycle(s) among gradflow's modules; arrows point down only (docs/architecture.md): "
        f"move the code to the layer it belongs to instead of hiding the import in a function\n\n{message}"
    )


def test_imports_sit_at_module_top():
    _, every = import_graph(PACKAGE_DIR)
    nested = [i for i in every if i.nested and i.target.partition(".")[0] not in LAZY_THIRD_PARTY]
    listing = "\n".join(f"  {i.source} line {i.line}: {i.target}" for i in nested)
    assert not nested, (
        f"{len(nested)} import(s) inside functions; import at module top (arrows point down), or, for an optional "
        f"or heavy third-party package, add it to LAZY_THIRD_PARTY with the reason\n{listing}"
    )


def test_the_lazy_packages_stay_unimported():
    """``import gradflow`` loads none of the packages it imports lazily (fresh interpreter)."""
    import subprocess
    import sys

    probe = "import sys, gradflow; print(' '.join(sorted(set(m.partition('.')[0] for m in sys.modules))))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=PACKAGE_DIR.parent
    ).stdout.split()
    assert not set(loaded) & set(LAZY_THIRD_PARTY), sorted(set(loaded) & set(LAZY_THIRD_PARTY))


# -- the checker itself, on small packages written for it ------------------------------------


def _write_package(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    package = tmp_path / "pkg"
    for relative, text in files.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "tensor.py": "def backward():\n    from .autograd.engine import run\n",
            "autograd/__init__.py": "",
            "autograd/engine.py": "from ..ops import creation\n",
            "ops/__init__.py": "",
            "ops/creation.py": "import pkg.tensor\n",
            "device.py": "",
        },
    )
    graph, every = import_graph(package)
    assert graph["pkg.tensor"] == {"pkg.autograd.engine"}
    assert graph["pkg.autograd.engine"] == {"pkg.ops.creation"}
    assert cycles(graph) == [["pkg.autograd.engine", "pkg.ops.creation", "pkg.tensor", "pkg.autograd.engine"]]
    assert [(i.source, i.nested) for i in every if i.target == "pkg.autograd.engine"] == [("pkg.tensor", True)]


def test_relative_and_absolute_forms_resolve_to_modules(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "from . import a\nfrom .sub import helper\n",
            "a.py": "from .sub import b as _b\nimport pkg.sub.b\nfrom pkg import errors\n",
            "errors.py": "",
            "sub/__init__.py": "from .. import errors\nhelper = 1\n",
            "sub/b.py": "from ..errors import *\nfrom . import helper\nimport numpy\n",
        },
    )
    graph, every = import_graph(package)
    assert graph == {
        "pkg": {"pkg.a", "pkg.sub"},
        "pkg.a": {"pkg.sub.b", "pkg.errors"},
        "pkg.errors": set(),
        "pkg.sub": {"pkg.errors"},
        "pkg.sub.b": {"pkg.errors", "pkg.sub"},
    }
    assert cycles(graph) == []
    assert "numpy" in {i.target for i in every}


def test_a_self_contained_pair_and_a_longer_loop_are_both_reported(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "cuda.py": "from .device import device\n",
            "device.py": "from .utils import memory\n",
            "utils/__init__.py": "",
            "utils/memory.py": "class C:\n    def f(self):\n        from .. import cuda\n",
            "x.py": "from . import y\n",
            "y.py": "if True:\n    from . import x\n",
        },
    )
    graph, _ = import_graph(package)
    found = sorted(cycles(graph))
    assert found == [
        ["pkg.cuda", "pkg.device", "pkg.utils.memory", "pkg.cuda"],
        ["pkg.x", "pkg.y", "pkg.x"],
    ]


@pytest.mark.parametrize("statement", ["import cupy", "from .. import cuda", "import math"])
def test_nested_imports_are_told_apart_from_module_level_ones(tmp_path, statement):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "cuda.py": "",
            "sub/__init__.py": "",
            "sub/m.py": f"try:\n    {statement}\nexcept ImportError:\n    pass\n\ndef f():\n    {statement}\n",
        },
    )
    _, every = import_graph(package)
    mine = [i for i in every if i.source == "pkg.sub.m"]
    assert [i.nested for i in mine] == [False, True]
    assert len({i.target for i in mine}) == 1
