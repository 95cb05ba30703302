"""``gradflow.cuda``: what CUDA this machine offers, in ``torch.cuda``'s shape.

``is_available()`` never raises: it imports CuPy on first use and reports
False with a reason (``unavailable_reason()``) when CuPy is missing, the
driver is missing or no device is present. The probe itself lives below the
devices (``backends/availability.py``), so that ``gradflow.device`` can use it;
this module sits above them and takes device specs (``'cuda:1'``, a Device, an int).
"""

from __future__ import annotations

from .backends.availability import current_device, device_count, is_available, unavailable_reason
from .device import device as to_device
from .errors import DeviceUnavailableError, GraphError

__all__ = [
    "Event",
    "current_device",
    "device_count",
    "is_available",
    "max_memory_allocated",
    "memory_allocated",
    "memory_reserved",
    "reset_peak_memory_stats",
    "synchronize",
    "unavailable_reason",
]


def set_device(device) -> None:
    """Make ``device`` (an index, 'cuda:N' or a Device) the current CUDA device, as ``torch.cuda.set_device``.

    ``device('cuda')`` and ``device='auto'`` then mean this GPU; a distributed script calls
    ``set_device(local_rank)`` so each process on a machine drives its own GPU.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise DeviceUnavailableError(f"cuda.set_device: CUDA is not usable here: {reason}")
    index = _index_of(device)
    if not 0 <= index < device_count():
        raise DeviceUnavailableError(
            f"cuda.set_device: device {index} does not exist: this machine has {device_count()} CUDA device(s)"
        )
    import cupy

    cupy.cuda.runtime.setDevice(index)


def synchronize(device=None) -> None:
    """Wait for all work queued on a CUDA device (no-op without CUDA)."""
    if is_available():
        import cupy

        index = current_device() if device is None else _index_of(device)
        with cupy.cuda.Device(index):
            cupy.cuda.runtime.deviceSynchronize()


def memory_allocated(device=None) -> int:
    """Bytes held by live gradflow/CuPy arrays on a CUDA device."""
    return _memory(device)["allocated_bytes"]


def memory_reserved(device=None) -> int:
    """Bytes CuPy's memory pool holds from the driver on a CUDA device."""
    return _memory(device)["reserved_bytes"]


def _memory(device) -> dict:
    target = to_device("cuda" if device is None else device)
    return target.backend.memory_stats()


def _index_of(device) -> int:
    if isinstance(device, int):
        return device
    return to_device(device).index


class Event:
    """A CUDA event, as ``torch.cuda.Event``: a marker in a stream whose time can be read later.

    Timing GPU work with the host clock measures only how long it took to *queue* the work;
    events are timestamped by the GPU itself when the stream reaches them. Record one before and
    one after the work, synchronise the second, then ``start.elapsed_time(end)`` is in ms.

    The CuPy event is created on the first ``record()``, so an Event can be built (and
    discarded) on a machine without CUDA; recording one there raises ``DeviceUnavailableError``.
    """

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        self.enable_timing = enable_timing
        self.blocking = blocking
        self.interprocess = interprocess
        self._event = None

    def _cupy_event(self):
        if self._event is None:
            reason = unavailable_reason()
            if reason is not None:
                raise DeviceUnavailableError(f"cuda.Event.record: CUDA is not usable here: {reason}")
            import cupy

            self._event = cupy.cuda.Event(
                block=self.blocking, disable_timing=not self.enable_timing, interprocess=self.interprocess
            )
        return self._event

    def record(self, stream=None) -> None:
        """Record the event in ``stream`` (default: the current CuPy stream)."""
        self._cupy_event().record(stream)

    def query(self) -> bool:
        """True when all work before the event has completed (or the event was never recorded)."""
        return True if self._event is None else bool(self._event.done)

    def synchronize(self) -> None:
        """Wait until the work before the event has completed."""
        if self._event is not None:
            self._event.synchronize()

    def elapsed_time(self, end_event: Event) -> float:
        """Milliseconds between this event and ``end_event``; both must be recorded with enable_timing=True."""
        if not (self.enable_timing and end_event.enable_timing):
            raise GraphError(
                "cuda.Event.elapsed_time: both events must be created with enable_timing=True, "
                f"got {self.enable_timing} and {end_event.enable_timing}"
            )
        if self._event is None or end_event._event is None:
            raise GraphError(
                "cuda.Event.elapsed_time: both events must be recorded before reading the time between them; "
                "call record() on each first"
            )
        import cupy

        end_event._event.synchronize()
        return float(cupy.cuda.get_elapsed_time(self._event, end_event._event))

    def __repr__(self) -> str:
        state = "unrecorded" if self._event is None else "recorded"
        return f"<gradflow.cuda.Event {state} enable_timing={self.enable_timing}>"


# Peak tracking: one CuPy memory hook per device, entered on the first reset_peak_memory_stats /
# max_memory_allocated call (a hook costs a Python call per allocation, so none runs before a user asks).
_peak_hooks: dict = {}


def reset_peak_memory_stats(device=None) -> None:
    """Start tracking the peak of ``memory_allocated(device)`` afresh from its current value.

    Tracking begins at the first call of this function or of ``max_memory_allocated`` for the
    device (not at process start, unlike PyTorch's caching allocator), and sees the allocations
    made by the thread that started it.
    """
    hook = _peak_hook(device)
    hook.in_use = hook.peak = memory_allocated(device)


def max_memory_allocated(device=None) -> int:
    """The peak bytes held by live arrays on a CUDA device since tracking started or was last reset."""
    hook = _peak_hook(device)
    return max(hook.peak, memory_allocated(device))


def _peak_hook(device):
    index = current_device() if device is None else _index_of(device)
    hook = _peak_hooks.get(index)
    if hook is None:
        _memory(f"cuda:{index}")  # raises DeviceUnavailableError with the reason when CUDA is not usable
        hook = _peak_hooks[index] = to_device(f"cuda:{index}").backend.peak_memory_hook()
        hook.in_use = hook.peak = memory_allocated(index)
        hook.__enter__()
    return hook
