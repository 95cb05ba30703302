"""Cosine schedules: CosineAnnealingLR and CosineAnnealingWarmRestarts (SGDR)."""

from __future__ import annotations

import math

from ...errors import ArgumentValueError
from ..optimizer import Optimizer
from ._base import LRScheduler, _Flag, group_values, set_group_lrs


class CosineAnnealingLR(LRScheduler):
    """Anneals the rate along a cosine from the initial rate down to ``eta_min`` over ``T_max`` epochs.

    ``get_lr()`` is PyTorch's recursive form, so the rate follows whatever the
    group holds (other schedulers or manual changes compose with it) and past
    ``T_max`` it climbs back up, a cosine of period ``2 * T_max``. Without
    outside changes it equals the closed form
    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``,
    which ``_get_closed_form_lr()`` returns.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = CosineAnnealingLR(optimizer, T_max=4, eta_min=0.01)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.044142, 0.03, 0.015858, 0.01]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:  # noqa: N803
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The next rate of the recursive cosine form."""
        self._warn_get_lr_outside_step()
        groups = self.optimizer.param_groups
        if self._is_initial:
            return group_values(self.optimizer, "lr")
        if self._step_count == 1 and self.last_epoch > 0:
            # First step of a resumed scheduler: there is no previous rate to follow, use the closed form.
            return [
                self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                for base_lr in self.base_lrs
            ]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            # Leaving the trough at eta_min: the ratio below would be 0/0, add the increment instead.
            return [
                group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                for base_lr, group in zip(self.base_lrs, groups)
            ]
        return [
            (1 + math.cos(math.pi * self.last_epoch / self.T_max))
            / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
            * (group["lr"] - self.eta_min)
            + self.eta_min
            for group in groups
        ]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing restarted every cycle, the i-th cycle ``T_0 * T_mult**i`` epochs long.

    ``step()`` advances one epoch; ``step(epoch)`` jumps to ``epoch``, which
    may be fractional (call it with ``epoch + i / iters_per_epoch`` inside an
    epoch to anneal per batch). ``T_cur`` is the position within the cycle,
    ``T_i`` the current cycle's length.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=2)  # cycles of 2, 4, 8, ... epochs
        >>> lrs = []
        >>> for epoch in range(7):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.025, 0.05, 0.042678, 0.025, 0.007322, 0.05]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,  # noqa: N803
        T_mult: int = 1,  # noqa: N803
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ArgumentValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ArgumentValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ArgumentValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` for each group."""
        self._warn_get_lr_outside_step()
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
            for base_lr in self.base_lrs
        ]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or jump to ``epoch`` (fractional allowed, no deprecation warning)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ArgumentValueError(f"Expected non-negative epoch, but got {epoch}")
            self._seek(epoch)
        self.last_epoch = math.floor(epoch)
        with _Flag(self, "_get_lr_called_within_step"):
            lrs = self.get_lr()
        set_group_lrs(self.optimizer, lrs)
        self._last_lr = group_values(self.optimizer, "lr")

    def _seek(self, epoch: float) -> None:
        """Set ``T_cur`` and ``T_i`` for an absolute epoch."""
        if epoch < self.T_0:
            self.T_i = self.T_0
            self.T_cur = epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:
            # Cycles 0..n-1 span T_0 * (T_mult**n - 1) / (T_mult - 1) epochs; n is the cycle holding `epoch`.
            n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult ** (n)
