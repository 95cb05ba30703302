"""Peak memory of a block of code on a device: ``with peak_memory(device) as usage: ...; usage.peak_bytes``.

On the CPU it uses ``tracemalloc``, which sees NumPy's buffers; on CUDA a CuPy
memory hook that follows every allocation and release of the pool while the
block runs. Either way the figure is the peak of memory allocated *inside* the
block, above what was in use when it started.
"""

from __future__ import annotations

import tracemalloc

from ..device import device as as_device

__all__ = ["peak_memory", "PeakMemory"]

# The CPU blocks now running, outermost first (nested blocks share tracemalloc's single peak).
_open_cpu_blocks: list = []


class PeakMemory:
    """The result of a ``peak_memory`` block: ``peak_bytes`` once the block has ended."""

    def __init__(self, device):
        self.device = device
        self.peak_bytes = 0


class peak_memory:  # noqa: N801 - used like a function, as PyTorch's context managers are
    """Measure the peak memory allocated on ``device`` (default: the CPU) while the block runs."""

    def __init__(self, device="cpu"):
        self.usage = PeakMemory(as_device(device))
        self._hook = None
        self._started_tracing = False

    def __enter__(self) -> PeakMemory:
        if self.usage.device.type == "cpu":
            self._started_tracing = not tracemalloc.is_tracing()
            if self._started_tracing:
                tracemalloc.start()
            # tracemalloc has one peak for the whole process: before resetting it for this block, fold
            # the peak so far into every enclosing block, or a nested block would erase their peaks.
            peak_so_far = tracemalloc.get_traced_memory()[1]
            for enclosing in _open_cpu_blocks:
                enclosing._peak_before_reset = max(enclosing._peak_before_reset, peak_so_far)
            tracemalloc.reset_peak()
            self._baseline = tracemalloc.get_traced_memory()[0]
            self._peak_before_reset = 0
            _open_cpu_blocks.append(self)
        else:
            self._hook = self.usage.device.backend.peak_memory_hook()
            self._hook.__enter__()
        return self.usage

    def __exit__(self, *exc) -> None:
        if self._hook is None:
            peak = max(tracemalloc.get_traced_memory()[1], self._peak_before_reset)
            _open_cpu_blocks.remove(self)
            if self._started_tracing:
                tracemalloc.stop()
            self.usage.peak_bytes = max(peak - self._baseline, 0)
            return
        self.usage.device.backend.synchronize()
        self._hook.__exit__(*exc)
        self.usage.peak_bytes = self._hook.peak
