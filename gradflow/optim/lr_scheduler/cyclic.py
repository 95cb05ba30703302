"""Cyclical schedules: CyclicLR (triangular waves) and OneCycleLR (the 1cycle policy).

Both can cycle the momentum opposite to the rate (``cycle_momentum``): the
``momentum`` of SGD-like optimizers or ``betas[0]`` of Adam-like ones, chosen
by which of the two the optimizer's ``defaults`` holds.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any, Literal

from ...errors import ArgumentValueError
from ..optimizer import Optimizer
from ._base import LRScheduler, check_optimizer, per_group, set_group_momenta


def _momentum_key(optimizer: Optimizer) -> bool:
    """Whether to cycle ``betas[0]`` (True) or ``momentum`` (False); raise when the optimizer has neither."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ArgumentValueError(
            "optimizer must support momentum or beta1 with `cycle_momentum` option enabled; "
            f"{type(optimizer).__name__} has neither, pass cycle_momentum=False"
        )
    return "betas" in optimizer.defaults


def _start_momentum_cycle(optimizer: Optimizer, use_beta1: bool, base_momentums: list, max_momentums: list) -> None:
    """Record each group's momentum bounds and start it at the maximum, as a fresh cycle does."""
    set_group_momenta(optimizer, max_momentums, use_beta1)
    for group, low, high in zip(optimizer.param_groups, base_momentums, max_momentums):
        group["max_momentum"] = high
        group["base_momentum"] = low


class CyclicLR(LRScheduler):
    """Cycles the rate between ``base_lr`` and ``max_lr`` (Smith, 2017); step it after every batch.

    A cycle rises for ``step_size_up`` steps and falls for ``step_size_down``
    (default: the same). The wave's amplitude is scaled per cycle
    (``scale_mode='cycle'``) or per step (``'iterations'``) by ``mode``:
    'triangular' (constant), 'triangular2' (halved each cycle), 'exp_range'
    (``gamma ** step``), or by a custom ``scale_fn`` with its ``scale_mode``.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = CyclicLR(optimizer, base_lr=0.01, max_lr=0.05, step_size_up=2)  # stepped per batch
        >>> lrs = []
        >>> for batch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this batch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.01, 0.03, 0.05, 0.03, 0.01, 0.03]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: Literal["cycle", "iterations"] = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        base_lrs = per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = per_group("max_lr", optimizer, max_lr)
        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ArgumentValueError(
                f"mode is invalid and scale_fn is None: got mode={mode!r}; use 'triangular', "
                "'triangular2' or 'exp_range', or pass scale_fn"
            )
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        # A built-in mode fixes what it scales by; a custom scale_fn uses the scale_mode given.
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer)
            self.base_momentums = per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                _start_momentum_cycle(optimizer, self.use_beta1, self.base_momentums, self.max_momentums)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        """The amplitude scale at cycle (or step) ``x``: the custom ``scale_fn`` or the mode's."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``; with ``cycle_momentum`` it also writes the groups' momenta."""
        self._warn_get_lr_outside_step()
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle  # position within the cycle, in [0, 1)
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [
            base_lr + (max_lr - base_lr) * scale_factor * scale for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)
        ]
        if self.cycle_momentum:
            momenta = [
                high - (high - low) * scale_factor * scale for low, high in zip(self.base_momentums, self.max_momentums)
            ]
            set_group_momenta(self.optimizer, momenta, self.use_beta1)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer; a custom ``scale_fn`` as None or a callable object's ``__dict__``."""
        state = super().state_dict()
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = None if fn is None or isinstance(fn, types.FunctionType) else fn.__dict__.copy()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes; a saved callable object's state goes into this scheduler's own ``scale_fn``."""
        saved_fn = state_dict["_scale_fn_custom"]
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "_scale_fn_custom"})
        if saved_fn is not None:
            self._scale_fn_custom.__dict__.update(saved_fn)
