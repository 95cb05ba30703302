"""The data of one fuzz case and its outcome (no PyTorch needed: the verdicts and the summary use them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Arr:
    """An array that becomes a tensor on both sides; ``grad`` marks an input whose gradient is compared."""

    value: np.ndarray
    grad: bool = False


@dataclass
class Case:
    args: tuple
    kwargs: dict = field(default_factory=dict)
    dtype: str = "float64"
    module: Callable | None = None  # module(nn_namespace) -> layer; called with the args

    def describe(self) -> str:
        def show(value):
            if isinstance(value, Arr):
                flat = value.value.reshape(-1)[:6].tolist()
                more = "..." if value.value.size > 6 else ""
                return f"array{list(value.value.shape)}:{value.value.dtype}{flat}{more}"
            return repr(value)

        parts = [show(a) for a in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()]
        return f"({', '.join(parts)}) dtype={self.dtype}"


@dataclass
class Outcome:
    kind: str  # "match", "typed", or a mismatch kind
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind in ("match", "typed")
