"""Schedules given by user functions of the epoch: LambdaLR and MultiplicativeLR."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from ...errors import ArgumentTypeError, ArgumentValueError
from ..optimizer import Optimizer
from ._base import LRScheduler, group_values


def _lambdas_per_group(optimizer: Optimizer, lr_lambda: Any) -> list[Callable[[int], float]]:
    """One function per param group: a single function is shared, a list must match the groups."""
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != len(optimizer.param_groups):
            raise ArgumentValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}")
        lambdas = list(lr_lambda)
    else:
        lambdas = [lr_lambda] * len(optimizer.param_groups)
    for fn in lambdas:
        if not callable(fn):
            raise ArgumentTypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
    return lambdas


class _LambdaState(LRScheduler):
    """Takes ``lr_lambda`` (one function, or one per param group), and saves and restores it as PyTorch does.

    Plain functions and lambdas are code, not state: they are saved as None and
    the restoring scheduler keeps its own. Callable objects are saved as a copy
    of their ``__dict__`` and restored into the restoring scheduler's objects.
    """

    lr_lambdas: list[Callable[[int], float]]

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas_per_group(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer; ``lr_lambdas`` as None or a callable object's ``__dict__``."""
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else fn.__dict__.copy() for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes; saved callable-object state goes into this scheduler's own lambdas."""
        saved_lambdas = state_dict["lr_lambdas"]
        self.__dict__.update({key: value for key, value in state_dict.items() if key != "lr_lambdas"})
        for fn, saved in zip(self.lr_lambdas, saved_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_LambdaState):
    """Sets each group's rate to its initial rate times ``lr_lambda(epoch)``.

    Args:
        lr_lambda: a function of the epoch, or one per param group.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = LambdaLR(optimizer, lr_lambda=lambda epoch: 1 / (epoch + 1))
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.025, 0.016667, 0.0125]
    """

    def get_lr(self) -> list[float]:
        """``base_lr * lr_lambda(last_epoch)`` for each group."""
        self._warn_get_lr_outside_step()
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaState):
    """Multiplies each group's rate by ``lr_lambda(epoch)`` at every step after the first.

    Example:
        >>> import gradflow as gf
        >>> optimizer = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=0.05)
        >>> scheduler = MultiplicativeLR(optimizer, lr_lambda=lambda epoch: 0.5)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))  # the rate this epoch trains with
        ...     optimizer.step()
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.025, 0.0125, 0.00625]
    """

    def get_lr(self) -> list[float]:
        """The current rates times ``lr_lambda(last_epoch)``; unchanged on the initial step."""
        self._warn_get_lr_outside_step()
        if self._is_initial:
            return group_values(self.optimizer, "lr")
        return [group["lr"] * fn(self.last_epoch) for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]
