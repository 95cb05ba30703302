"""LRScheduler: the base every learning-rate schedule shares, with PyTorch's semantics.

A scheduler owns an optimizer's ``param_groups[i]['lr']``. Construction records
each group's starting rate as ``'initial_lr'`` (kept as it is when a group
already has one, so several schedulers on one optimizer agree on it), copies
those into ``base_lrs`` and takes the first step, which sets the rate for
epoch 0. Each later ``step()`` advances ``last_epoch`` by one and writes the
rates ``get_lr()`` computes.

Most schedules are *chainable*: ``get_lr()`` derives the next rate from the
rate currently in the group, so two schedulers on one optimizer compose
(``ChainedScheduler``). Where a schedule also has a closed form in the epoch,
it is offered as ``_get_closed_form_lr()`` and used when ``step(epoch)`` jumps
to an epoch (PyTorch's deprecated form, which warns).
"""

from __future__ import annotations

import abc
import functools
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from ...errors import ArgumentKeyError, ArgumentTypeError, ArgumentValueError
from ..optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available."
)


def check_optimizer(optimizer: Any) -> None:
    """Raise PyTorch's TypeError when ``optimizer`` is not a gradflow Optimizer."""
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(
            f"{type(optimizer).__name__} is not an Optimizer; pass a gradflow.optim optimizer "
            "(e.g. gradflow.optim.SGD(model.parameters(), lr=0.1))"
        )


def per_group(name: str, optimizer: Optimizer, value: Any) -> list:
    """One value per param group: a list/tuple is checked for length, a scalar is repeated."""
    groups = optimizer.param_groups
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ArgumentValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(value)} values, param_groups has {len(groups)}."
            )
        return list(value)
    return [value] * len(groups)


def group_values(optimizer: Optimizer, key: str) -> list:
    """``[group[key] for group in optimizer.param_groups]`` as a fresh list."""
    return [group[key] for group in optimizer.param_groups]


def set_group_lrs(optimizer: Optimizer, lrs: list) -> None:
    """Write one rate per group; a length mismatch means a group was added after construction."""
    groups = optimizer.param_groups
    if len(lrs) != len(groups):
        raise ArgumentValueError(
            f"the scheduler computed {len(lrs)} learning rates but the optimizer has {len(groups)} "
            "param groups; create the scheduler after adding every param group"
        )
    for group, lr in zip(groups, lrs):
        group["lr"] = lr


def set_group_momenta(optimizer: Optimizer, momenta: list, use_beta1: bool) -> None:
    """Write a cycled momentum into each group: ``betas[0]`` for Adam-like optimizers, else ``momentum``."""
    for group, momentum in zip(optimizer.param_groups, momenta):
        if use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum


def _track_optimizer_steps(optimizer: Optimizer) -> None:
    """Wrap ``optimizer.step`` once so the first ``scheduler.step()`` can tell whether it ran.

    The wrapper holds the optimizer weakly: the optimizer owns the wrapper, and
    a strong reference back would keep both alive in a cycle.
    """
    step = optimizer.step
    method = getattr(step, "__func__", None)
    if getattr(step, "_wrapped_by_lr_sched", False) or method is None:
        # Already wrapped, or replaced by a plain function: the first step() then says it cannot tell.
        return
    optimizer_ref = weakref.ref(optimizer)

    @functools.wraps(method)
    def step_and_mark(*args, **kwargs):
        owner = optimizer_ref()
        owner._opt_called = True
        return method(owner, *args, **kwargs)

    step_and_mark._wrapped_by_lr_sched = True
    optimizer.step = step_and_mark


class _Flag:
    """Set a boolean attribute of a scheduler for the duration of a ``with`` block."""

    def __init__(self, scheduler: LRScheduler, name: str) -> None:
        self.scheduler, self.name = scheduler, name

    def __enter__(self) -> None:
        setattr(self.scheduler, self.name, True)

    def __exit__(self, *exc) -> None:
        setattr(self.scheduler, self.name, False)


class LRScheduler(abc.ABC):
    """Base class of learning-rate schedulers: subclasses define ``get_lr()``.

    Args:
        optimizer: the wrapped optimizer.
        last_epoch: the index of the last epoch when resuming; -1 starts afresh.
            Resuming requires ``'initial_lr'`` in every param group (it comes
            back with the optimizer's state dict).
    """

    # Class defaults; the step machinery sets them on the instance around get_lr().
    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ArgumentKeyError(
                        f"param 'initial_lr' is not specified in param_groups[{index}] when resuming "
                        f"scheduler with last_epoch >= 0 (got last_epoch={last_epoch}); load the "
                        "optimizer's state dict first, or pass last_epoch=-1 for a fresh run"
                    )
        self.base_lrs: list = group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        _track_optimizer_steps(optimizer)
        self._initial_step()

    def _initial_step(self) -> None:
        """Take the step that sets epoch 0's rates (``get_lr`` sees ``_is_initial``)."""
        self._step_count = 0
        with _Flag(self, "_is_initial"):
            self.step()

    @abc.abstractmethod
    def get_lr(self) -> list:
        """The rates for ``last_epoch``, from the chainable form; call ``get_last_lr()`` to read them."""

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per param group."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """Every attribute of the scheduler except the optimizer."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by ``state_dict()``."""
        self.__dict__.update(state_dict)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set the new rates.

        ``epoch`` (deprecated, as in PyTorch) jumps to that epoch instead and
        uses the closed form where the schedule has one.
        """
        if self._step_count == 1:
            self._warn_if_optimizer_did_not_step()
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _warn_if_optimizer_did_not_step(self) -> None:
        if not getattr(self.optimizer.step, "_wrapped_by_lr_sched", False):
            warnings.warn(
                "Seems like `optimizer.step()` has been overridden after learning rate scheduler "
                "initialization. Please, make sure to call `optimizer.step()` before `lr_scheduler.step()`.",
                UserWarning,
                stacklevel=3,
            )
        elif not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`. You should call them "
                "in the opposite order: `optimizer.step()` before `lr_scheduler.step()`. Failure to do this "
                "will result in skipping the first value of the learning rate schedule.",
                UserWarning,
                stacklevel=3,
            )

    def _update_lr(self, epoch: int | None = None) -> None:
        with _Flag(self, "_get_lr_called_within_step"):
            if epoch is None:
                self.last_epoch += 1
                lrs = self.get_lr()
            else:
                self.last_epoch = epoch
                closed_form: Callable[[], list] | None = getattr(self, "_get_closed_form_lr", None)
                lrs = closed_form() if closed_form is not None else self.get_lr()
        set_group_lrs(self.optimizer, lrs)
        self._last_lr = group_values(self.optimizer, "lr")

    def _warn_get_lr_outside_step(self) -> None:
        """PyTorch's hint for users who call ``get_lr()`` to read the rate."""
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                UserWarning,
                stacklevel=3,
            )


# PyTorch kept the pre-1.x private name importable; so do we.
_LRScheduler = LRScheduler
