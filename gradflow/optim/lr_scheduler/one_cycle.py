"""OneCycleLR: the 1cycle policy (Smith & Topin, 2018), stepped after every batch."""

from __future__ import annotations

import math
from typing import Literal

from ...errors import ArgumentValueError
from ..optimizer import Optimizer
from ._base import LRScheduler, check_optimizer, per_group, set_group_momenta
from .cyclic import _momentum_key, _start_momentum_cycle


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or value <= 0:
        raise ArgumentValueError(f"Expected positive integer {name}, but got {value}")
    return value


class OneCycleLR(LRScheduler):
    """Warms the rate up from ``max_lr / div_factor`` to ``max_lr``, then anneals it far below the start.

    The warm-up takes ``pct_start`` of ``total_steps`` (or ``epochs *
    steps_per_epoch``); the anneal ends at ``initial_lr / final_div_factor``.
    ``three_phase=True`` comes back down to the initial rate symmetrically
    before the final anneal. ``anneal_strategy`` is 'cos' or 'linear'. With
    ``cycle_momentum`` the momentum (or ``betas[0]``) moves opposite to the rate
    between ``base_momentum`` and ``max_momentum``. Stepping past
    ``total_steps`` raises ValueError.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = OneCycleLR(optimizer, max_lr=0.1, total_steps=6)  # stepped per batch
        >>> lrs = []
        >>> for batch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this batch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.004, 0.099442, 0.081175, 0.046264, 0.013348, 0.0]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ArgumentValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = _positive_int("epochs", epochs) * _positive_int("steps_per_epoch", steps_per_epoch)
        else:
            raise ArgumentValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ArgumentValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ArgumentValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._anneal_func_type = anneal_strategy
        self._schedule_phases = self._phases(pct_start, three_phase)

        max_lrs = per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer)
            max_momenta = per_group("max_momentum", optimizer, max_momentum)
            base_momenta = per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                _start_momentum_cycle(optimizer, self.use_beta1, base_momenta, max_momenta)
        super().__init__(optimizer, last_epoch)

    def _phases(self, pct_start: float, three_phase: bool) -> list[dict]:
        """Each phase ends at ``end_step`` and anneals between two group keys (rate and momentum)."""
        warm_end = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        warm_up = {
            "end_step": warm_end,
            "start_lr": "initial_lr",
            "end_lr": "max_lr",
            "start_momentum": "max_momentum",
            "end_momentum": "base_momentum",
        }
        if not three_phase:
            anneal = {
                "end_step": last,
                "start_lr": "max_lr",
                "end_lr": "min_lr",
                "start_momentum": "base_momentum",
                "end_momentum": "max_momentum",
            }
            return [warm_up, anneal]
        come_down = {
            "end_step": float(2 * pct_start * self.total_steps) - 2,
            "start_lr": "max_lr",
            "end_lr": "initial_lr",
            "start_momentum": "base_momentum",
            "end_momentum": "max_momentum",
        }
        anneal = {
            "end_step": last,
            "start_lr": "initial_lr",
            "end_lr": "min_lr",
            "start_momentum": "max_momentum",
            "end_momentum": "max_momentum",
        }
        return [warm_up, come_down, anneal]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        """Move from ``start`` (pct 0) to ``end`` (pct 1) along a half cosine or a line."""
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        """The rates for step ``last_epoch``; with ``cycle_momentum`` it also writes the groups' momenta."""
        self._warn_get_lr_outside_step()
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ArgumentValueError(
                f"Tried to step {step_num} times. The specified number of total steps is {self.total_steps}; "
                "create the scheduler with a larger total_steps (or epochs * steps_per_epoch)"
            )
        lrs, momenta = [], []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for index, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or index == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        momenta.append(self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct))
                    break
                start_step = phase["end_step"]
        if self.cycle_momentum:
            set_group_momenta(self.optimizer, momenta, self.use_beta1)
        return lrs
