"""Where the time goes: per-op counts, host time and (on CUDA) device time of a block of code.

>>> import gradflow as gf
>>> model = gf.nn.Linear(3, 2)
>>> opt = gf.optim.SGD(model.parameters(), lr=0.1)
>>> batches = [(gf.randn(4, 3), gf.tensor([0, 1, 1, 0])) for _ in range(2)]
>>> with gf.profiler.profile() as prof:
...     for inputs, targets in batches:
...         loss = gf.nn.functional.cross_entropy(model(inputs), targets)
...         opt.zero_grad(); loss.backward(); opt.step()
...         prof.step()  # marks one training step
>>> sorted((row.name, row.kind, row.count) for row in prof.key_averages() if row.name.startswith(("Linear", "SGD")))
[('Linear', 'forward', 2), ('LinearBackward', 'backward', 2), ('SGD.step', 'range', 2)]
>>> print(prof.report())  # a table of host (and device) times per op, then totals  # doctest: +ELLIPSIS
gradflow profiler: top ops...

Recorded: every op's forward (``Function.apply``, named after the op's class:
``Linear``, ``Relu``, ``SoftmaxCrossEntropy``), every backward node the engine
runs (``LinearBackward``), and user ranges (``record_function("name")``;
optimizers' ``Adam.step``). Per name: calls, inclusive and self host time
(self = minus the ops it ran), and on CUDA device time from a pair of CUDA
events recorded on the op's stream, read after a synchronize when the
profile ends.

Kernel launches: kernels gradflow launches itself (``backends/kernels.py``
``launch()``) are counted exactly. CuPy offers no launch counter for its own
kernels (``cupyx.profiler`` has ``benchmark``, ``time_range`` and
``profile``, none of which counts launches; counting needs CUPTI through the
separate cupti-python package), so those are ESTIMATED as one per innermost
CUDA op that launched no gradflow kernel: views launch none and some ops
launch several, so treat it as an order of magnitude. Reports label it.

Host overhead: the share of the profile's wall time in which no innermost op
kept the device busy (``1 - device busy / wall``). An event pair spans the op
on the stream, which includes the device waiting for the host inside that op,
so the busy time is over-, and the overhead share under-estimated: it is a
lower bound. Recording costs a few microseconds per op (more on CUDA, for the
events), which is charged to the host times.

Only the thread that enters the profile is recorded. A profile entered inside
another records on its own and hands its figures to the outer one when it ends.
"""

from __future__ import annotations

import time

from .. import cuda
from ..autograd import function as _function
from ..backends import kernels as _kernels
from ..errors import ArgumentValueError, UsageError
from .recorder import Recorder
from .report import OpStats, Summary, build_rows, build_summary, render_report, render_table

__all__ = ["OpStats", "Summary", "profile", "record_function"]

_active: list[Recorder] = []


def _install(recorder: Recorder | None) -> None:
    _function.profiler_hook = recorder
    _kernels.launch_hook = None if recorder is None else recorder.launch


class profile:  # noqa: N801 - PyTorch's name (torch.profiler.profile)
    """Context manager that records the ops run inside it (see the module docstring).

    Args:
        enabled: False records nothing (the block runs as without a profile).
        steps: how many training steps the block ran, for the per-step figures; by default the
            number of ``prof.step()`` calls (and, with none, the figures are for the whole block).
        device_timing: record CUDA events around CUDA ops; default: when CUDA is usable here.
    """

    def __init__(self, enabled: bool = True, steps: int | None = None, device_timing: bool | None = None):
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            raise ArgumentValueError(f"profiler.profile: steps must be a positive int or None, got {steps!r}")
        self.enabled = bool(enabled)
        self._steps_arg = steps
        self._device_timing_arg = device_timing
        self._step_marks = 0
        self._recorder: Recorder | None = None
        self._rows: list[OpStats] = []
        self._summary: Summary | None = None
        self._start = self._wall = 0.0

    def __enter__(self) -> profile:
        if not self.enabled:
            return self
        device_timing = self._device_timing_arg
        if device_timing is None:
            device_timing = cuda.is_available()
        self._recorder = Recorder(bool(device_timing))
        _active.append(self._recorder)
        _install(self._recorder)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        # Remove this recorder (normally the innermost) and give the hooks back to the one around it.
        if recorder in _active:
            _active.remove(recorder)
        _install(_active[-1] if _active else None)
        if recorder.saw_cuda:  # the events are read after all queued work is done, never earlier
            import cupy

            cupy.cuda.runtime.deviceSynchronize()
        self._wall = time.perf_counter() - self._start
        self._rows = build_rows(recorder)
        self._summary = build_summary(recorder, self._rows, self._wall, self.steps)
        if _active:
            recorder.merge_into(_active[-1])

    def step(self) -> None:
        """Mark the end of one training step (per-step figures divide by the number of marks)."""
        self._step_marks += 1

    @property
    def steps(self) -> int | None:
        """The number of steps the per-step figures divide by (None: no steps were marked)."""
        if self._steps_arg is not None:
            return self._steps_arg
        return self._step_marks or None

    def key_averages(self, sort_by: str = "host_total") -> list[OpStats]:
        """One row per op name and kind, sorted by ``sort_by`` (an OpStats field, largest first)."""
        self._check_finished("key_averages")
        if sort_by not in OpStats.SORT_KEYS:
            raise ArgumentValueError(
                f"profiler.key_averages: sort_by={sort_by!r} is not one of {', '.join(OpStats.SORT_KEYS)}"
            )
        return sorted(self._rows, key=lambda row: (getattr(row, sort_by) or 0.0, row.name), reverse=True)

    def summary(self) -> Summary:
        """Totals: wall time, host time in ops, device busy time, host overhead share, launches per step."""
        self._check_finished("summary")
        return self._summary

    def table(self, top: int = 15, sort_by: str = "host_total"):
        """A rich Table of the ``top`` ops by ``sort_by``."""
        return render_table(self.key_averages(sort_by)[:top], self.summary())

    def report(self, top: int = 15, sort_by: str = "host_total", width: int = 120) -> str:
        """The table of the top ops and the summary lines, as text."""
        if not self.enabled:
            return "gradflow profiler: profiling was disabled (enabled=False); nothing was recorded"
        return render_report(self.table(top, sort_by), self.summary(), width)

    def to_dict(self) -> dict:
        """Every figure as plain JSON-ready values: ``{"summary": {...}, "ops": [{...}, ...]}``."""
        self._check_finished("to_dict")
        return {"summary": self._summary.to_dict(), "ops": [row.to_dict() for row in self.key_averages()]}

    def _check_finished(self, caller: str) -> None:
        if self._summary is None:
            state = "was disabled (enabled=False)" if not self.enabled else "has not finished"
            raise UsageError(
                f"profiler.{caller}: the profile {state}; read results after the `with profile() as prof:` block "
                "of an enabled profile"
            )


class record_function:  # noqa: N801 - PyTorch's name (torch.profiler.record_function)
    """Label a block of code in the active profile (e.g. ``"Adam.step"``); costs one check without one."""

    __slots__ = ("name", "_frame", "_recorder")

    def __init__(self, name: str):
        self.name = str(name)
        self._frame = None

    def __enter__(self) -> record_function:
        recorder = _function.profiler_hook
        self._recorder = recorder
        if recorder is not None:
            self._frame = recorder.enter_range(self.name)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._recorder is not None:
            self._recorder.exit_op(self._frame)
            self._frame = self._recorder = None
