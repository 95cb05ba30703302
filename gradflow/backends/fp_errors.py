"""Silence NumPy's floating-point warnings while gradflow's ops compute, as PyTorch is silent.

PyTorch computes ``inf * 0``, ``x / 0`` and ``log(0)`` without a word; NumPy warns
(``RuntimeWarning: invalid value encountered in multiply``); CuPy never does. Every op's
forward on the CPU and every backward pass run between ``enter()`` and ``leave(token)``.

``np.errstate`` does the same but builds its error-state object on every entry: about 1.3 us
per op on the 2-core development machine, against 2.3 us for a whole no-grad op. NumPy 2 keeps
that state in a context variable, so this module builds the "ignore all" state once and only
sets and resets the variable (about 0.1 us). With a NumPy that lacks those internals it falls
back to ``np.errstate`` (same behaviour, slower); ``FAST`` says which path is in use.
"""

from __future__ import annotations

import numpy as np

try:  # NumPy >= 2.0: numpy._core._ufunc_config holds the error state in a ContextVar.
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE_ALL = _make_extobj(all="ignore")
    FAST = True
except (ImportError, AttributeError, TypeError):  # private API gone or changed: the public, slower way
    FAST = False


def _errstate_enter():
    state = np.errstate(all="ignore")
    state.__enter__()
    return state


def _errstate_leave(token) -> None:
    token.__exit__(None, None, None)


def _contextvar_enter():
    return _extobj_contextvar.set(_IGNORE_ALL)


def _contextvar_leave(token) -> None:
    _extobj_contextvar.reset(token)


#: Start ignoring NumPy's floating-point errors; returns the token for ``leave``.
enter = _contextvar_enter if FAST else _errstate_enter
#: Restore the error state that ``enter`` replaced.
leave = _contextvar_leave if FAST else _errstate_leave
