"""Phase timers for one training step: the host clock on the CPU, CUDA events on a GPU.

A step is timed as a sequence of marks: ``start()``, then ``mark()`` after each phase
(forward, backward, optimizer step), then ``phases()`` returns the seconds each phase took.
On a GPU the work is asynchronous, so a host clock around it would time only the queueing:
the event timer records a CUDA event at each mark, synchronises once on the last event of
the step, and reads the GPU's own timestamps.
"""

from __future__ import annotations

import time

from .. import cuda


class HostTimer:
    """``time.perf_counter`` marks: right for synchronous work (NumPy, torch on the CPU)."""

    def __init__(self, phases: int):
        self._marks = [0.0] * (phases + 1)
        self._count = 0

    def start(self) -> None:
        self._marks[0] = time.perf_counter()
        self._count = 1

    def mark(self) -> None:
        self._marks[self._count] = time.perf_counter()
        self._count += 1

    def phases(self) -> list[float]:
        """Seconds of each phase of the step just timed."""
        marks = self._marks[: self._count]
        return [later - earlier for earlier, later in zip(marks, marks[1:])]


class EventTimer:
    """CUDA events recorded between phases; one synchronisation per step, on the last event.

    ``event_factory`` makes a timing event (``gradflow.cuda.Event`` or ``torch.cuda.Event``,
    both with ``record``, ``synchronize`` and ``elapsed_time`` in ms). The events are made once
    and reused, so timing allocates nothing per step.
    """

    def __init__(self, phases: int, event_factory):
        self._events = [event_factory() for _ in range(phases + 1)]
        self._count = 0

    def start(self) -> None:
        self._events[0].record()
        self._count = 1

    def mark(self) -> None:
        self._events[self._count].record()
        self._count += 1

    def phases(self) -> list[float]:
        """Seconds of each phase of the step just timed (waits for the GPU to reach the last mark)."""
        events = self._events[: self._count]
        events[-1].synchronize()
        return [earlier.elapsed_time(later) / 1e3 for earlier, later in zip(events, events[1:])]


def gradflow_timer(device, phases: int = 3):
    """The timer for gradflow work on ``device``: CUDA events on a GPU, the host clock on the CPU."""
    if device.type == "cuda":
        return EventTimer(phases, lambda: cuda.Event(enable_timing=True))
    return HostTimer(phases)


def torch_timer(torch_device, phases: int = 3):
    """The timer for torch work on ``torch_device``: ``torch.cuda.Event`` on a GPU, the host clock on the CPU."""
    if torch_device.type == "cuda":
        import torch

        return EventTimer(phases, lambda: torch.cuda.Event(enable_timing=True))
    return HostTimer(phases)
