"""The recorder behind ``gradflow.profiler.profile``: frames around ops, host clocks, CUDA events.

``Function.apply``, the engine's backward loop and ``backends.kernels.launch``
each read one module global (``profiler_hook`` / ``launch_hook``) and call in
here only while a profile records; with profiling off that read is the whole
cost. A frame is opened when an op starts and closed when it returns; frames
nest (a backward node runs the ops of its formula), so each op has an
inclusive host time and a self time (minus the ops it ran).

On CUDA, each frame records a CUDA event before and after the op on the
device's current stream; the events are read only when the profile ends,
after a synchronize, so no host clock ever times asynchronous GPU work.
"""

from __future__ import annotations

import threading
import time

from ..tensor import Tensor

KINDS = ("forward", "backward", "range")


class Frame:
    """One op (or user range) while it runs."""

    __slots__ = ("key", "start", "child_host", "device", "start_event", "launches", "timed_children", "depth")

    def __init__(self, key, device, start_event, depth):
        self.key = key
        self.device = device
        self.start_event = start_event
        self.child_host = 0.0
        self.launches = 0
        self.timed_children = []
        self.depth = depth
        self.start = time.perf_counter()  # last, so the frame's own set-up is not charged to the op


class OpRecord:
    """What one (name, kind) accumulated: counts, host times, kernel launches, CUDA event pairs."""

    __slots__ = ("name", "kind", "count", "host_total", "host_self", "launches", "devices", "event_spans", "leaf_ops")

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind
        self.count = 0
        self.host_total = 0.0
        self.host_self = 0.0
        self.launches = 0  # gradflow kernels launched directly inside (exact)
        self.devices: set[str] = set()
        # (start, end, children's spans, is_leaf): resolved to seconds when the profile ends
        self.event_spans: list = []
        self.leaf_ops = 0  # calls on CUDA that ran no nested op and launched no gradflow kernel

    def merge(self, other: OpRecord) -> None:
        self.count += other.count
        self.host_total += other.host_total
        self.host_self += other.host_self
        self.launches += other.launches
        self.devices |= other.devices
        self.event_spans.extend(other.event_spans)
        self.leaf_ops += other.leaf_ops


class Recorder:
    """Receives the hook calls of one profile (the innermost active one) on the thread that opened it."""

    def __init__(self, device_timing: bool):
        self.device_timing = device_timing
        self.thread = threading.get_ident()
        self.stack: list[Frame] = []
        self.records: dict[tuple[str, str], OpRecord] = {}
        self.kernel_launches = 0
        self.top_host = 0.0  # host time inside outermost frames (no double counting of nested ops)
        self.saw_cuda = False
        self._cupy = None
        if device_timing:
            import cupy

            self._cupy = cupy

    # -- hook entry points (called by function.py, tape_replay.py and kernels.py) -------------------
    def enter_op(self, name: str, args: tuple):
        """A forward op starts; returns the frame to pass to ``exit_op`` (None: not recorded)."""
        if threading.get_ident() != self.thread:
            return None
        device = None
        for arg in args:
            if isinstance(arg, Tensor):
                device = arg._device
                break
        return self._push((name, "forward"), device)

    def enter_backward(self, node):
        """A backward node starts (recorded as ``<Op>Backward``)."""
        if threading.get_ident() != self.thread:
            return None
        return self._push((node.name(), "backward"), node.out_device or node.device)

    def enter_range(self, name: str):
        """A user range (``record_function``; optimizers' ``Adam.step``) starts."""
        if threading.get_ident() != self.thread:
            return None
        return self._push((name, "range"), "range")

    def launch(self, family: str, name: str) -> None:
        """A gradflow kernel was launched (counted exactly)."""
        if threading.get_ident() != self.thread:
            return
        self.kernel_launches += 1
        self.saw_cuda = self.saw_cuda or self.device_timing  # a launch outside any CUDA op still needs the sync
        if self.stack:
            self.stack[-1].launches += 1

    def exit_op(self, frame) -> None:
        """The op of ``frame`` returned: charge its time to its record and to its parent."""
        if frame is None:
            return
        end = time.perf_counter()
        stack = self.stack
        # Frames still above this one were left open (a record_function never exited): drop them.
        while stack and stack[-1] is not frame:
            stack.pop()
        if not stack:
            return  # opened before a nested profile took over; nothing of it is ours
        stack.pop()
        elapsed = end - frame.start
        record = self.records.get(frame.key)
        if record is None:
            record = self.records[frame.key] = OpRecord(*frame.key)
        record.count += 1
        record.host_total += elapsed
        record.host_self += elapsed - frame.child_host
        record.launches += frame.launches
        span = None
        device = frame.device
        if frame.start_event is not None:
            end_event = self._event(device)
            span = (frame.start_event, end_event, tuple(frame.timed_children), frame.depth == 0)
            record.event_spans.append(span)
            if device != "range":
                record.devices.add(str(device))
                if not frame.timed_children and not frame.launches:
                    record.leaf_ops += 1
        elif device is not None and device != "range":
            record.devices.add(str(device))
        if stack:
            parent = stack[-1]
            parent.child_host += elapsed
            if span is not None:
                parent.timed_children.append(span)
        else:
            self.top_host += elapsed

    def drop(self, frame) -> None:
        """The op of ``frame`` raised: close its frame (and any its failed children left) unrecorded."""
        if frame is None:
            return
        stack = self.stack
        if frame in stack:  # identity: a frame opened before a nested profile took over is not ours
            while stack.pop() is not frame:
                pass

    # -- internals ------------------------------------------------------------------------------
    def _push(self, key, device) -> Frame:
        start_event = None
        if self.device_timing and device is not None:
            if device == "range":
                start_event = self._event(device)
            elif device.type == "cuda":
                self.saw_cuda = True
                start_event = self._event(device)
        frame = Frame(key, device, start_event, len(self.stack))
        self.stack.append(frame)
        return frame

    def _event(self, device):
        """A CUDA event recorded now on the current stream of ``device`` (ranges: the current device)."""
        cupy = self._cupy
        event = cupy.cuda.Event()
        if device == "range" or device.index == cupy.cuda.runtime.getDevice():
            event.record()
        else:
            with cupy.cuda.Device(device.index):
                event.record()
        return event

    def merge_into(self, outer: Recorder) -> None:
        """Hand what this (nested) profile recorded to the profile around it."""
        for key, record in self.records.items():
            target = outer.records.get(key)
            if target is None:
                outer.records[key] = record
            else:
                target.merge(record)
        outer.kernel_launches += self.kernel_launches
        outer.saw_cuda = outer.saw_cuda or self.saw_cuda
        if outer.stack:
            outer.stack[-1].child_host += self.top_host
        else:
            outer.top_host += self.top_host
