"""Write ``gradflow/tensor.pyi``: the Tensor that ``import gradflow`` builds, declared in one place.

``gradflow/tensor.py`` defines Tensor's storage, metadata and autograd fields; the layers above
it bind the methods whose code they hold (``gradflow/autograd/tensor_methods.py``: backward,
retain_grad; ``gradflow/ops/methods.py``: ``Tensor(data)``, size, the op methods and operators).
This script reads the finished class and writes its stub, grouped by the module each method
comes from, so a reader and a type checker see every method with its signature.

Run ``python -m tools.tensor_stub`` after adding, removing or renaming a Tensor method or changing
a signature; ``tests/test_tensor_stub.py`` fails until the stub matches what is bound.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import pathlib
import sys
import types

import gradflow

# `gradflow.tensor` the attribute is the function gf.tensor; the module is in sys.modules.
tensor_module = sys.modules["gradflow.tensor"]

STUB_PATH = pathlib.Path(tensor_module.__file__).with_suffix(".pyi")
LINE_LENGTH = 120
# Class attributes that are not part of the API a stub declares (__slotnames__ is copyreg's cache,
# set on the class by the first pickle or copy of a tensor).
SKIPPED = {"__module__", "__doc__", "__slots__", "__weakref__", "__dict__", "__slotnames__"}
_LITERALS = (type(None), bool, int, float, str)


def _default(value) -> str:
    """A default as source text: literals as written, anything else as ``...`` (valid in a stub)."""
    if isinstance(value, _LITERALS) or (isinstance(value, tuple) and all(isinstance(v, _LITERALS) for v in value)):
        text = repr(value)
        if not isinstance(value, float) or ast.literal_eval(text) == value:
            return text
    return "..."


def _annotation(value) -> str | None:
    if value is inspect.Parameter.empty:
        return None
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _parameters(function, first: str | None) -> tuple[list[str], str | None]:
    """The parameters as source text (the first one renamed ``first``) and the return annotation."""
    signature = inspect.signature(function)
    texts, seen_keyword_marker = [], False
    for position, parameter in enumerate(signature.parameters.values()):
        name = first if position == 0 and first is not None else parameter.name
        kind = parameter.kind
        if kind is parameter.KEYWORD_ONLY and not seen_keyword_marker:
            texts.append("*")
            seen_keyword_marker = True
        if kind is parameter.VAR_POSITIONAL:
            seen_keyword_marker = True
            name = "*" + name
        elif kind is parameter.VAR_KEYWORD:
            name = "**" + name
        # The first parameter of a method is the instance: its annotation (if any) goes with its old name.
        annotation = None if position == 0 and first is not None else _annotation(parameter.annotation)
        text = f"{name}: {annotation}" if annotation else name
        if parameter.default is not parameter.empty:
            text += f" = {_default(parameter.default)}" if annotation else f"={_default(parameter.default)}"
        texts.append(text)
        if kind is parameter.POSITIONAL_ONLY and (
            position + 1 == len(signature.parameters)
            or list(signature.parameters.values())[position + 1].kind is not parameter.POSITIONAL_ONLY
        ):
            texts.append("/")
    return texts, _annotation(signature.return_annotation)


def _def(name: str, function, first: str | None, indent: str = "    ") -> list[str]:
    parameters, returns = _parameters(function, first)
    tail = f" -> {returns}: ..." if returns else ": ..."
    line = f"{indent}def {name}({', '.join(parameters)}){tail}"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"{indent}def {name}(", *(f"{indent}    {p}," for p in parameters), f"{indent}){tail}"]


def _origin(value) -> str:
    """The module whose source holds a class attribute's code."""
    function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
    return getattr(function, "__module__", None) or tensor_module.__name__


def _members(cls) -> dict[str, list[tuple[str, object]]]:
    """The class's API members grouped by the module that defines them (the class's own module first)."""
    groups: dict[str, list[tuple[str, object]]] = {}
    for name, value in sorted(vars(cls).items()):
        if name in SKIPPED or isinstance(value, types.MemberDescriptorType):
            continue
        origin = _origin(value) if callable(value) or isinstance(value, property) else cls.__module__
        groups.setdefault(origin, []).append((name, value))
    return dict(sorted(groups.items(), key=lambda item: (item[0] != cls.__module__, item[0])))


def _member_lines(name: str, value) -> list[str]:
    if isinstance(value, property):
        lines = ["    @property", *_def(name, value.fget, "self")]
        if value.fset is not None:
            lines += [f"    @{name}.setter", *_def(name, value.fset, "self")]
        return lines
    if isinstance(value, staticmethod):
        if name == "__new__":  # implicitly static; its first argument is the class
            return _def(name, value.__func__, "cls")
        return ["    @staticmethod", *_def(name, value.__func__, None)]
    if callable(value):
        return _def(name, value, "self")
    return [f"    {name}: {type(value).__name__}"]


def _class_lines(cls) -> list[str]:
    lines = [f"class {cls.__name__}:"]
    if cls.__doc__:
        lines.append(f'    """{inspect.cleandoc(cls.__doc__).splitlines()[0]}"""')
    slots = [slot for slot in getattr(cls, "__slots__", ()) if slot != "__weakref__"]
    if slots:
        lines += ["", "    # storage (__slots__)", *(f"    {slot}: Any" for slot in slots)]
    for module, members in _members(cls).items():
        lines += ["", f"    # from {module.replace('.', '/')}.py"]
        for name, value in members:
            lines += _member_lines(name, value)
    return lines


def _imports(text: str, classes) -> list[str]:
    """``import`` lines for every name the stub's annotations use that it does not define itself."""
    defined = {cls.__name__ for cls in classes} | set(dir(builtins))
    used = {node.id for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Name)}
    namespaces = [vars(tensor_module)]
    for cls in classes:
        for value in vars(cls).values():
            function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if isinstance(function, types.FunctionType):
                namespaces.append(function.__globals__)
    lines = set()
    for name in sorted(used - defined - {"self", "cls", "Any"}):
        found = next((space[name] for space in namespaces if name in space), None)
        if isinstance(found, types.ModuleType):
            lines.add(f"import {found.__name__}" if found.__name__ == name else f"import {found.__name__} as {name}")
        elif found is not None and getattr(found, "__module__", None):
            lines.add(f"from {found.__module__} import {name}")
    return ["from typing import Any", "", *sorted(lines)]


def render() -> str:
    """The text of ``gradflow/tensor.pyi`` for the Tensor bound by ``import gradflow``."""
    assert gradflow.Tensor is tensor_module.Tensor
    classes = [tensor_module.VersionCounter, tensor_module.Tensor]
    body = []
    for cls in classes:
        body += ["", "", *_class_lines(cls)]
    header = [
        '"""gradflow.tensor as `import gradflow` leaves it: Tensor with every bound method.',
        "",
        "Generated by tools/tensor_stub.py (`python -m tools.tensor_stub`); tests/test_tensor_stub.py",
        "checks that it equals what is bound. Do not edit by hand.",
        '"""',
        "",
    ]
    code = "\n".join(body)
    return "\n".join(header + _imports(code, classes)) + "\n" + code + "\n"


def main(argv: list[str] | None = None) -> int:
    text = render()
    STUB_PATH.write_text(text)
    print(f"wrote {STUB_PATH} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
