"""Grad mode: whether ops record themselves on the tape (per thread)."""

from __future__ import annotations

import functools
import threading


class _GradState(threading.local):
    enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    """True when ops record the graph needed for backward."""
    return _state.enabled


class _GradModeContext:
    """Base for no_grad/enable_grad/set_grad_enabled: a context manager and a decorator."""

    mode = True

    def __enter__(self):
        self._previous = _state.enabled
        _state.enabled = self.mode

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            previous = _state.enabled
            _state.enabled = self.mode
            try:
                return function(*args, **kwargs)
            finally:
                _state.enabled = previous

        return wrapper


class no_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Turn off recording inside a ``with`` block or a decorated function."""

    mode = False


class enable_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Turn recording back on inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Set grad mode to ``mode``: takes effect at once, and as a context manager restores it on exit."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous = _state.enabled
        _state.enabled = self.mode

    def __enter__(self):
        pass

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False

    def __call__(self, function):
        # Used as a decorator, the mode applies only while the function runs.
        _state.enabled = self._previous
        return super().__call__(function)
