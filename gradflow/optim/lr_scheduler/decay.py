"""Decay schedules with a closed form: StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR.

Each ``get_lr()`` is PyTorch's chainable form (the next rate from the current
one), so sequences equal PyTorch's to the last bit; ``_get_closed_form_lr()``
gives the same schedule as a function of ``last_epoch`` alone.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable

from ...errors import ArgumentValueError
from ..optimizer import Optimizer
from ._base import LRScheduler, group_values


class StepLR(LRScheduler):
    """Multiplies the rate by ``gamma`` every ``step_size`` epochs.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = StepLR(optimizer, step_size=2, gamma=0.1)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates, times ``gamma`` when ``last_epoch`` is a positive multiple of ``step_size``."""
        self._warn_get_lr_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiplies the rate by ``gamma`` at each milestone epoch (a repeated milestone applies gamma twice).

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005]
    """

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates, times ``gamma ** count`` at a milestone."""
        self._warn_get_lr_outside_step()
        if self.last_epoch not in self.milestones:
            return group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore attributes; ``milestones`` becomes a Counter again (a checkpoint may hold it as a plain dict)."""
        super().load_state_dict(state_dict)
        # gradflow.save keeps mappings as dicts; the closed form needs Counter.elements().
        self.milestones = Counter(self.milestones)

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """Scales the rate by ``factor`` until epoch ``total_iters``, then restores it.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = ConstantLR(optimizer, factor=0.5, total_iters=2)  # half rate for epochs 0-1
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.025, 0.025, 0.05, 0.05]
    """

    def __init__(
        self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ArgumentValueError(
                f"Constant multiplicative factor expected to be between 0 and 1, but got {factor}."
            )
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """``factor`` times the rates at epoch 0, divided back out at ``total_iters``, unchanged otherwise."""
        self._warn_get_lr_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return group_values(self.optimizer, "lr")
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
            for base_lr in self.base_lrs
        ]


class LinearLR(LRScheduler):
    """Scales the rate by a factor moving linearly from ``start_factor`` to ``end_factor`` over ``total_iters``.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = LinearLR(optimizer, start_factor=0.25, total_iters=3)  # warm-up over 3 epochs
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.0125, 0.025, 0.0375, 0.05, 0.05]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ArgumentValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or equal to 1, "
                f"but got start_factor={start_factor}."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ArgumentValueError(
                f"Ending multiplicative factor expected to be between 0 and 1, but got {end_factor}."
            )
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates times the ratio of this epoch's factor to the last one's."""
        self._warn_get_lr_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return group_values(self.optimizer, "lr")
        slope = self.end_factor - self.start_factor
        ratio = 1.0 + slope / (self.total_iters * self.start_factor + (self.last_epoch - 1) * slope)
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        # (end - start) * epochs / total, multiplied before dividing, as PyTorch rounds it.
        elapsed = min(self.total_iters, self.last_epoch)
        factor = self.start_factor + (self.end_factor - self.start_factor) * elapsed / self.total_iters
        return [base_lr * factor for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiplies the rate by ``gamma`` every epoch.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = ExponentialLR(optimizer, gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.025, 0.0125, 0.00625]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates times ``gamma``; unchanged on the initial step."""
        self._warn_get_lr_outside_step()
        if self._is_initial:
            return group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decays the rate as ``(1 - epoch / total_iters) ** power`` until ``total_iters``, then holds it (at 0).

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = PolynomialLR(optimizer, total_iters=4, power=1.0)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.0375, 0.025, 0.0125, 0.0, 0.0]
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates times the ratio of this epoch's decay to the last one's."""
        self._warn_get_lr_outside_step()
        if self._is_initial or self.last_epoch > self.total_iters:
            return group_values(self.optimizer, "lr")
        decay = (
            (1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power
        return [group["lr"] * decay for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
            for base_lr in self.base_lrs
        ]
