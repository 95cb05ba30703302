"""The checkpoint's object tree: encoding it to JSON-ready nodes on save, checking and rebuilding it on load.

Both walks keep their own stack (no recursion), so any nesting depth up to ``MAX_DEPTH``
saves and loads; the path of a node (``obj['a'][0]``) is built only for an error message.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import math
import numbers
import re

import numpy as np

from .. import dtypes
from ..errors import ArgumentTypeError, ArgumentValueError, CheckpointFormatError, DtypeError
from ..tensor import Tensor

FORMAT_VERSION = 1
METADATA_KEY = "gradflow"
# Deeper trees are refused on save and on load: a bound on the work a hostile header can ask for
# (PyTorch's pickle stops near 500 levels).
MAX_DEPTH = 100_000
DEVICE_PATTERN = re.compile(r"cpu|cuda:\d{1,6}")
DTYPES_BY_NAME = {d.name: d for d in dtypes.ALL_DTYPES if d.np is not None}
_SPECIAL_FLOATS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_CONTAINER_TAGS = ("dict", "odict", "list", "tuple")
_CLOSE = object()  # stack marker: the container below is done


def where(path) -> str:
    """``obj[...]`` text of a path kept as nested ``(parent, key)`` pairs; very deep ones are shortened."""
    parts = []
    while path is not None:
        path, key = path
        parts.append(f"[{key!r}]")
    parts.reverse()
    if len(parts) > 40:
        parts = parts[:20] + [f"...({len(parts) - 40} more)..."] + parts[-20:]
    return "obj" + "".join(parts)


def _too_deep(path) -> str:
    return f"{where(path)} is nested more than {MAX_DEPTH} containers deep (the checkpoint limit)"


class Encoder:
    """Turns the object tree into JSON-ready nodes and collects the tensors' host arrays."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.infos: dict[str, dict] = {}
        self._names: dict[int, str] = {}  # id(Tensor) -> entry name, so one object is stored once
        self._keep_alive: list = []  # ids stay unique only while their objects live

    def encode(self, root):
        """The JSON-ready node of ``root``; tensors are numbered in pre-order, left to right."""
        holder = [None]
        stack = [(root, holder, 0, None, 0)]  # (value, parent node list, slot, path, depth)
        open_ids: set[int] = set()  # containers on the current path, to catch reference cycles
        while stack:
            value, parent, slot, path, depth = stack.pop()
            if value is _CLOSE:
                open_ids.discard(parent)
                continue
            if not isinstance(value, (collections.abc.Mapping, list, tuple)):
                parent[slot] = self._leaf(value, path)
                continue
            if id(value) in open_ids:
                raise ArgumentValueError(
                    f"save: {where(path)} contains itself (a reference cycle); checkpoints must be trees"
                )
            if depth >= MAX_DEPTH:
                raise ArgumentValueError(f"save: {_too_deep(path)}; flatten it")
            open_ids.add(id(value))
            stack.append((_CLOSE, id(value), 0, None, 0))
            children = []
            if isinstance(value, collections.abc.Mapping):
                body = []
                for key, item in value.items():
                    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, numbers.Integral)):
                        raise ArgumentTypeError(
                            f"save: {where(path)} has a key {key!r} of type {type(key).__name__}; dict keys must be "
                            "str or int"
                        )
                    key = key if isinstance(key, str) else int(key)
                    pair = [key, None]
                    body.append(pair)
                    children.append((item, pair, 1, (path, key), depth + 1))
                tag = "odict" if isinstance(value, collections.OrderedDict) else "dict"
            else:
                body = [None] * len(value)
                children = [(item, body, i, (path, i), depth + 1) for i, item in enumerate(value)]
                tag = "tuple" if isinstance(value, tuple) else "list"
            parent[slot] = {tag: body}
            stack.extend(reversed(children))
        return holder[0]

    def _leaf(self, value, path):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            number = float(value)
            if math.isfinite(number):
                return number
            # JSON has no inf/nan; keep the file strict JSON.
            return {"float": "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")}
        if isinstance(value, Tensor):
            return {"tensor": self._tensor(value, path)}
        raise ArgumentTypeError(
            f"save: {where(path)} is a {type(value).__module__}.{type(value).__qualname__}, which gradflow "
            "checkpoints cannot hold; use Tensors, numbers, strings, None, and dicts/lists/tuples of those "
            "(convert arrays with gradflow.tensor(...))"
        )

    def _tensor(self, tensor: Tensor, path) -> str:
        name = self._names.get(id(tensor))
        if name is not None:
            return name
        if tensor._dtype.np is None:
            raise DtypeError(f"save: {where(path)} has dtype {tensor._dtype.name}, which has no array type to store")
        host = tensor._device.backend.to_host(tensor._data)
        # safetensors reads raw memory: views with strides or offsets must be made contiguous first.
        if not host.flags.c_contiguous or not host.dtype.isnative:
            host = np.ascontiguousarray(host, dtype=host.dtype.newbyteorder("="))
        name = f"t{len(self.arrays)}"
        self.arrays[name] = host
        self.infos[name] = {
            "dtype": tensor._dtype.name,
            "shape": list(host.shape),
            "device": str(tensor._device),
            "requires_grad": bool(tensor._requires_grad),
        }
        self._names[id(tensor)] = name
        self._keep_alive.append(tensor)
        return name


def format_error(path: str, what: str) -> CheckpointFormatError:
    """The error for a damaged or foreign checkpoint at ``path``."""
    return CheckpointFormatError(
        f"load: {path!r} is not a valid gradflow checkpoint: {what}; it may be damaged or written by another "
        "program (re-create it with gradflow.save)"
    )


def check_header(path: str, header) -> dict:
    """``header`` (the parsed metadata JSON) if it has the fields this version reads, else CheckpointFormatError."""
    if not isinstance(header, dict) or not {"format_version", "tree", "tensors"} <= header.keys():
        raise format_error(path, "the metadata lacks 'format_version', 'tree' or 'tensors'")
    version = header["format_version"]
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise CheckpointFormatError(
            f"load: {path!r} has checkpoint format version {_short(version)}, but this gradflow reads version "
            f"{FORMAT_VERSION}; load it with the gradflow version that wrote it"
        )
    if not isinstance(header["tensors"], dict):
        raise format_error(path, "'tensors' is not an object")
    return header


def check_tensor_info(path: str, name: str, info):
    """The gradflow dtype a tensor description names, after checking every field of it."""
    if not isinstance(info, dict) or not {"dtype", "shape", "device", "requires_grad"} <= info.keys():
        raise format_error(path, f"the description of tensor {name!r} lacks dtype, shape, device or requires_grad")
    dtype_name, device_name = info["dtype"], info["device"]
    # A lookup in gradflow's own names, never a parse: NumPy would evaluate strings such as "i4,(".
    dtype = DTYPES_BY_NAME.get(dtype_name) if isinstance(dtype_name, str) else None
    if dtype is None:
        raise format_error(path, f"tensor {name!r} has unknown dtype {_short(dtype_name)}")
    if not isinstance(device_name, str) or not DEVICE_PATTERN.fullmatch(device_name):
        raise format_error(path, f"tensor {name!r} has unknown device {_short(device_name)}")
    shape = info["shape"]
    if not isinstance(shape, list) or not all(type(size) is int and size >= 0 for size in shape):
        raise format_error(path, f"tensor {name!r} has an invalid shape {_short(shape)}")
    if not isinstance(info["requires_grad"], bool) or (info["requires_grad"] and not dtype.is_floating_point):
        raise format_error(
            path, f"tensor {name!r} has requires_grad={_short(info['requires_grad'])} with dtype {dtype_name}"
        )
    return dtype


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def decode(path: str, root, tensors: dict):
    """Rebuild the object tree from its JSON node ``root``; ``tensors`` maps entry names to loaded Tensors."""
    holder = [None]
    stack = [(root, holder, 0, None, 0)]  # (node, parent (list or dict), slot or key, path, depth)
    tuples = []  # (tuple's items as a list, parent, slot): made tuples once filled, deepest first
    while stack:
        node, parent, slot, node_path, depth = stack.pop()
        if node is None or isinstance(node, (bool, int, float, str)):
            parent[slot] = node
            continue
        if not (isinstance(node, dict) and len(node) == 1):
            raise format_error(path, f"{where(node_path)} is a malformed entry {_snippet(node)}")
        ((tag, body),) = node.items()
        if tag == "tensor" and isinstance(body, str):
            if body not in tensors:
                raise format_error(
                    path, f"{where(node_path)} refers to tensor {body!r}, which the file does not describe"
                )
            parent[slot] = tensors[body]
        elif tag == "float" and isinstance(body, str) and body in _SPECIAL_FLOATS:
            parent[slot] = _SPECIAL_FLOATS[body]
        elif tag in _CONTAINER_TAGS and isinstance(body, list):
            if depth >= MAX_DEPTH:
                raise format_error(path, _too_deep(node_path))
            stack.extend(reversed(_children(path, tag, body, parent, slot, node_path, depth, tuples)))
        else:
            raise format_error(path, f"{where(node_path)} is a malformed entry {_snippet(node)}")
    for items, parent, slot in reversed(tuples):  # inner tuples first: their parents hold the lists until then
        parent[slot] = tuple(items)
    return holder[0]


def _children(path: str, tag: str, body: list, parent, slot, node_path, depth: int, tuples: list) -> list:
    """Create the container of one node in its parent's slot; the stack entries of its children."""
    if tag in ("list", "tuple"):
        items = [None] * len(body)
        parent[slot] = items
        if tag == "tuple":
            tuples.append((items, parent, slot))
        return [(item, items, i, (node_path, i), depth + 1) for i, item in enumerate(body)]
    result = collections.OrderedDict() if tag == "odict" else {}
    parent[slot] = result
    children = []
    for pair in body:
        if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) in (str, int)):
            raise format_error(path, f"{where(node_path)} has a malformed key/value pair {_snippet(pair)}")
        result[pair[0]] = None  # keeps the saved key order
        children.append((pair[1], result, pair[0], (node_path, pair[0]), depth + 1))
    return children


def _snippet(node) -> str:
    try:
        return json.dumps(node)[:80]
    except (RecursionError, ValueError, TypeError):
        return f"({type(node).__name__})"
