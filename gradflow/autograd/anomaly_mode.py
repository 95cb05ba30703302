"""Anomaly detection: remember where each op was recorded and stop at the first NaN/inf gradient.

While it is on, every recorded node keeps the stack of the forward call that
created it, and every backward step checks its gradients: the first one
holding NaN or inf raises an ``AnomalyError`` naming the op and showing that
forward location. Off by default; when off, recording reads one flag and the
backward pass one flag per call.
"""

from __future__ import annotations

import traceback


class _AnomalyState:
    __slots__ = ("enabled", "check_nan")

    def __init__(self):
        self.enabled = False
        self.check_nan = True


_anomaly = _AnomalyState()


def is_anomaly_enabled() -> bool:
    return _anomaly.enabled


def is_anomaly_check_nan_enabled() -> bool:
    return _anomaly.check_nan


class set_detect_anomaly:  # noqa: N801 - PyTorch's name; usable as a call or a context manager
    """Turn anomaly detection on or off: ``set_detect_anomaly(True)``, or ``with set_detect_anomaly(False):``."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self.previous = (_anomaly.enabled, _anomaly.check_nan)
        _anomaly.enabled = bool(mode)
        _anomaly.check_nan = bool(check_nan)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        _anomaly.enabled, _anomaly.check_nan = self.previous


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that turns anomaly detection on inside its block."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        # A stack, so one object entered again inside its own block (or a decorated function calling
        # itself) restores each level's state instead of leaving anomaly mode on for good.
        self.previous = []

    def __enter__(self) -> None:
        self.previous.append((_anomaly.enabled, _anomaly.check_nan))
        _anomaly.enabled = True
        _anomaly.check_nan = self.check_nan

    def __exit__(self, *exc) -> None:
        _anomaly.enabled, _anomaly.check_nan = self.previous.pop()

    def __call__(self, function):
        def wrapped(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return function(*args, **kwargs)

        wrapped.__name__ = getattr(function, "__name__", "wrapped")
        wrapped.__doc__ = getattr(function, "__doc__", None)
        return wrapped


def forward_stack() -> str:
    """The current Python stack without the frames of gradflow's own recording machinery."""
    frames = [frame for frame in traceback.extract_stack()[:-1] if "/gradflow/autograd/" not in frame.filename]
    return "".join(traceback.format_list(frames))


def forward_location(node) -> str:
    """Text telling where ``node`` was recorded (or how to find out)."""
    stack = getattr(node, "forward_stack", None)
    if stack is None:
        return "(no forward trace: the node was recorded before anomaly detection was enabled)"
    return "Traceback of forward call that created the node:\n" + stack
