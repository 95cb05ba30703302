"""``ReduceOp`` and ``Work``: the reduction names and the handle an ``async_op=True`` collective returns."""

from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """How ``all_reduce`` & co. combine the ranks' values (PyTorch's names)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"

    def __repr__(self) -> str:
        return f"ReduceOp.{self.name}"


REDUCE_CODES = {op: code for code, op in enumerate(ReduceOp, start=1)}


class Work:
    """A collective in flight: ``wait()`` blocks until its result is in the tensors (as ``torch.distributed.Work``).

    On the 'nccl' backend ``wait()`` makes the current CUDA stream wait for the collective (the host
    does not block), as in PyTorch; the tensors are then safe to use in later kernels.
    """

    __slots__ = ("_wait", "_test", "_done")

    def __init__(self, wait, test=None):
        self._wait = wait
        self._test = test
        self._done = False

    def wait(self, timeout=None) -> bool:
        """Finish the collective (idempotent); raises DistributedError past the group's timeout."""
        if not self._done:
            self._wait()
            self._done = True
        return True

    def is_completed(self) -> bool:
        """True when ``wait()`` would return without waiting for communication."""
        if self._done:
            return True
        return bool(self._test()) if self._test is not None else False

    def __repr__(self) -> str:
        return f"<gradflow.distributed.Work {'completed' if self._done else 'pending'}>"


def completed_work() -> Work:
    """A handle for a collective that has already finished."""
    work = Work(lambda: None)
    work._done = True
    return work
