"""JSON for checkpoint headers at any nesting depth.

The standard library's ``json`` recurses once per nesting level, so a tree nested a few
hundred levels deep raises ``RecursionError``. ``dumps``/``loads`` here use it (C speed) and
fall back to the loops below, which keep their own stack, when it runs out of recursion.
The fallbacks give the same text and the same objects as ``json`` for everything a
checkpoint header holds (dicts with str keys, lists, str, int, float, bool, None).
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math

from ..errors import ArgumentTypeError, ArgumentValueError

__all__ = ["dumps", "loads"]

_WHITESPACE = json.decoder.WHITESPACE
_NUMBER = json.scanner.NUMBER_RE
_LITERALS = {"true": True, "false": False, "null": None, "NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_scanstring = json.decoder.scanstring


def dumps(obj) -> str:
    """Compact strict JSON (no NaN/inf) of ``obj``, whatever its depth."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":"))
    except RecursionError:
        return _dumps_iterative(obj)


def loads(text: str):
    """Parse JSON ``text`` as ``json.loads`` does, whatever its depth; ValueError if it is not JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        return _loads_iterative(text)


def _dumps_iterative(obj) -> str:
    parts: list[str] = []
    pending = [obj]  # values still to write, and literal text as 1-tuples; the last is next
    while pending:
        item = pending.pop()
        if type(item) is tuple:  # literal text queued by a container
            parts.append(item[0])
        elif isinstance(item, dict):
            queue = [("{",)]
            for position, (key, value) in enumerate(item.items()):
                if not isinstance(key, str):
                    raise ArgumentTypeError(f"keys must be str, not {type(key).__name__}")
                queue += [(("," if position else "") + json.dumps(key) + ":",), value]
            queue.append(("}",))
            pending.extend(reversed(queue))
        elif isinstance(item, list):
            queue = [("[",)]
            for position, value in enumerate(item):
                queue += [(",",), value] if position else [value]
            queue.append(("]",))
            pending.extend(reversed(queue))
        else:
            parts.append(json.dumps(item, allow_nan=False))
    return "".join(parts)


def _skip(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()


def _key(text: str, position: int) -> tuple[str, int]:
    """Read ``"key" :`` at ``position``; returns the key and the position of its value."""
    if text[position : position + 1] != '"':
        raise ArgumentValueError(f"expecting a property name in double quotes at char {position}")
    key, position = _scanstring(text, position + 1, True)
    position = _skip(text, position)
    if text[position : position + 1] != ":":
        raise ArgumentValueError(f"expecting ':' at char {position}")
    return key, _skip(text, position + 1)


def _scalar(text: str, position: int):
    if text[position : position + 1] == '"':
        return _scanstring(text, position + 1, True)
    number = _NUMBER.match(text, position)
    if number is not None and number.end() > position:
        integer, fraction, exponent = number.groups()
        if fraction or exponent:
            return float(integer + (fraction or "") + (exponent or "")), number.end()
        return int(integer), number.end()
    for word, value in _LITERALS.items():
        if text.startswith(word, position):
            return value, position + len(word)
    raise ArgumentValueError(f"expecting a value at char {position}")


def _loads_iterative(text: str):
    open_containers: list[list] = []  # [container, key of the value being read (dicts only)]
    position = _skip(text, 0)
    while True:
        opener = text[position : position + 1]
        if opener in ("{", "["):
            position = _skip(text, position + 1)
            closer = "}" if opener == "{" else "]"
            if text[position : position + 1] == closer:
                value, position = ({} if opener == "{" else []), position + 1
            else:
                frame = [{} if opener == "{" else [], None]
                if opener == "{":
                    frame[1], position = _key(text, position)
                open_containers.append(frame)
                continue
        else:
            value, position = _scalar(text, position)
        # Put the value into its container; close every container that ends here.
        while True:
            if not open_containers:
                if _skip(text, position) != len(text):
                    raise ArgumentValueError(f"extra data at char {position}")
                return value
            container, key = open_containers[-1]
            if isinstance(container, list):
                container.append(value)
            else:
                container[key] = value
            position = _skip(text, position)
            mark = text[position : position + 1]
            if mark == ",":
                position = _skip(text, position + 1)
                if isinstance(container, dict):
                    open_containers[-1][1], position = _key(text, position)
                break
            if mark != ("]" if isinstance(container, list) else "}"):
                raise ArgumentValueError(f"expecting ',' or a closing bracket at char {position}")
            open_containers.pop()
            value, position = container, position + 1
