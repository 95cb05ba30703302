"""Device values, their resolution, and the visible CPU fallback.

``gradflow.device('cpu' | 'cuda' | 'cuda:N' | 'auto')`` returns a canonical
``Device`` (one object per device, so ops compare devices by identity).
``'auto'`` picks CUDA when it works and otherwise the CPU, and says once, in
one line on stderr, which it chose and why. Nothing here imports CuPy unless
a CUDA device is asked for.
"""

from __future__ import annotations

import os
import sys

from .backends import availability, backend_for
from .errors import ArgumentTypeError, ArgumentValueError, DeviceUnavailableError

_CANONICAL: dict[tuple[str, int | None], Device] = {}
_fallback_notice_shown = False


class Device:
    """Where a tensor lives: ``Device('cpu')`` or ``Device('cuda', 0)``."""

    __slots__ = ("type", "index", "_backend")

    def __init__(self, type: str, index: int | None = None):  # noqa: A002 - PyTorch's name
        self.type = type
        self.index = index
        self._backend = None

    @property
    def backend(self):
        """The backend (NumPy or CuPy) that stores this device's arrays."""
        if self._backend is None:
            self._backend = backend_for(self)
        return self._backend

    def __repr__(self) -> str:
        return (
            f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"
        )

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, DeviceUnavailableError):
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (str(self),))


def _parse(spec: str) -> tuple[str, int | None]:
    text = spec.strip().lower()
    kind, _, index_text = text.partition(":")
    if kind not in ("cpu", "cuda", "auto") or (index_text and (kind != "cuda" or not index_text.isdigit())):
        raise ArgumentValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return kind, int(index_text) if index_text else None


def device(spec, index: int | None = None) -> Device:
    """Return the canonical Device for ``spec`` ('cpu', 'cuda', 'cuda:N', 'auto' or a Device).

    Asking for CUDA on a machine that cannot run it raises
    ``DeviceUnavailableError`` saying why and what to install.
    """
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, int):
        spec, index = "cuda", spec
    if not isinstance(spec, str):
        raise ArgumentTypeError(f"device: expected a string like 'cpu' or 'cuda:0' or a gradflow.Device, got {spec!r}")
    kind, parsed_index = _parse(spec)
    index = parsed_index if index is None else index
    if kind == "auto":
        return _resolve_auto()
    if kind == "cpu":
        return _canonical("cpu", None)
    reason = availability.unavailable_reason()
    if reason is not None:
        raise DeviceUnavailableError(f"device '{spec}' is not usable here: {reason}")
    index = availability.current_device() if index is None else index
    count = availability.device_count()
    if index >= count:
        raise DeviceUnavailableError(
            f"device 'cuda:{index}' does not exist: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
        )
    return _canonical("cuda", index)


def _canonical(kind: str, index: int | None) -> Device:
    key = (kind, index)
    found = _CANONICAL.get(key)
    if found is None:
        found = _CANONICAL[key] = Device(kind, index)
    return found


def _resolve_auto() -> Device:
    global _fallback_notice_shown
    reason = availability.unavailable_reason()
    if reason is None:
        return _canonical("cuda", availability.current_device())
    if not _fallback_notice_shown:
        _fallback_notice_shown = True
        print(f"gradflow: device 'auto' -> cpu ({reason})", file=sys.stderr)
    return _canonical("cpu", None)


CPU = _canonical("cpu", None)
_default_device: Device | None = None


def get_default_device() -> Device:
    """The device new tensors go to (``GRADFLOW_DEVICE`` or 'cpu' until set)."""
    global _default_device
    if _default_device is None:
        _default_device = device(os.environ.get("GRADFLOW_DEVICE", "cpu"))
    return _default_device


def set_default_device(spec) -> None:
    """Make ``spec`` the device of tensors created without ``device=``; None resets it."""
    global _default_device
    _default_device = None if spec is None else device(spec)


def resolve(spec) -> Device:
    """``spec`` as a Device, or the default device when it is None."""
    if spec is None:
        return _default_device if _default_device is not None else get_default_device()
    if spec.__class__ is Device:
        return spec
    return device(spec)
