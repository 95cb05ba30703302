"""Containers: Sequential (a chain), ModuleList and ModuleDict (registered collections)."""

from __future__ import annotations

import operator
from collections import OrderedDict

from ..errors import ArgumentTypeError, ArgumentValueError, IndexOutOfRangeError
from .module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


def _index(caller: str, index, length: int) -> int:
    index = operator.index(index)
    if not -length <= index < length:
        raise IndexOutOfRangeError(f"{caller}: index {index} is out of range for {length} modules")
    return index % length


def _check_module(caller: str, module) -> None:
    if module is not None and not isinstance(module, Module):
        raise ArgumentTypeError(f"{caller}: {type(module).__name__} is not a Module subclass")


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.

    Also accepts one OrderedDict of named modules.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for position, module in enumerate(args):
                self.add_module(str(position), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[_index("Sequential", index, len(self))]

    def __setitem__(self, index, module: Module) -> None:
        key = list(self._modules)[_index("Sequential", index, len(self))]
        self.add_module(key, module)

    def __delitem__(self, index) -> None:
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_index("Sequential", index, len(self))]]
        for key in doomed:
            del self._modules[key]
        # Renumber so positions stay 0..n-1, as PyTorch does.
        self.__dict__["_modules"] = OrderedDict((str(i), m) for i, m in enumerate(self._modules.values()))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> Sequential:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Put ``module`` at position ``index`` (-len to len, as PyTorch; outside that is an IndexError)."""
        _check_module("Sequential.insert", module)  # before the rebuild, so a bad module leaves self intact
        length = len(self)
        if not -length <= operator.index(index) <= length:
            raise IndexOutOfRangeError(
                f"Sequential.insert: index {index} is out of range for {length} modules (valid: -{length} to {length})"
            )
        modules = list(self._modules.values())
        modules.insert(index, module)
        self.__dict__["_modules"] = OrderedDict()
        for position, item in enumerate(modules):
            self.add_module(str(position), item)
        return self

    def pop(self, index):
        """Remove and return the module (or a Sequential, for a slice) at ``index``; the rest are renumbered."""
        module = self[index]
        del self[index]
        return module


class ModuleList(Module):
    """A list of modules whose parameters the parent module sees."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(_index("ModuleList", index, len(self)))]

    def __setitem__(self, index, module: Module) -> None:
        self.add_module(str(_index("ModuleList", index, len(self))), module)

    def __delitem__(self, index) -> None:
        modules = list(self._modules.values())
        del modules[index if isinstance(index, slice) else _index("ModuleList", index, len(self))]
        self.__dict__["_modules"] = OrderedDict((str(i), m) for i, m in enumerate(modules))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules) -> ModuleList:
        return self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> ModuleList:
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise ArgumentTypeError(
                f"ModuleList.extend should be called with an iterable, but got {type(modules).__name__}"
            )
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index`` (list semantics)."""
        _check_module("ModuleList.insert", module)  # before the rebuild, so a bad module leaves self intact
        modules = list(self._modules.values())
        modules.insert(index, module)
        self.__dict__["_modules"] = OrderedDict()
        for position, item in enumerate(modules):
            self.add_module(str(position), item)

    def pop(self, index):
        """Remove and return the module (or a ModuleList, for a slice) at ``index``; the rest are renumbered."""
        module = self[index]
        del self[index]
        return module

    def __repr__(self) -> str:
        """PyTorch's compact form: a run of equal consecutive entries prints once, as ``(2-4): 3 x Linear(...)``."""
        reprs = [repr(module) for module in self]
        if not reprs:
            return f"{self._get_name()}()"
        runs = []  # [first index, last index, repr]
        for position, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = position
            else:
                runs.append([position, position, text])
        lines = []
        for first, last, text in runs:
            label = f"({first}): {text}" if first == last else f"({first}-{last}): {last - first + 1} x {text}"
            lines.append(label.replace("\n", "\n  "))
        return f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered dict of modules whose parameters the parent module sees."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key: str) -> Module:
        module = self._modules[key]
        del self._modules[key]
        return module

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        pairs = modules.items() if hasattr(modules, "items") else modules
        for entry in pairs:
            if len(entry) != 2:
                raise ArgumentValueError(
                    f"ModuleDict.update: expected (name, module) pairs, got an entry of length {len(entry)}"
                )
            self[entry[0]] = entry[1]
