"""Gradient buckets for DistributedDataParallel: averaged over the ranks while backward still runs.

Parameters go into buckets in reverse registration order (the order backward usually produces
their gradients), one dtype and device per bucket; the first bucket is small (1 MiB) so the
first reduction starts early, the others hold up to ``bucket_cap_mb``. A post-accumulate-grad
hook on each parameter copies its gradient into its bucket's flat buffer; when a bucket is
full it starts an all-reduce (AVG) at once, so communication overlaps the rest of backward.
Buckets are launched strictly in order, so every rank starts the same collectives in the same
order even if its gradients arrive in another. The hook that completes the last bucket waits
for all of them and writes the averages back into ``.grad``, so ``backward()`` returns with
the gradients already synchronised.
"""

from __future__ import annotations

import numpy as np

from ... import distributed as dist
from ...device import CPU
from ...errors import DistributedError
from ...tensor import Tensor

FIRST_BUCKET_BYTES = 1024 * 1024


class Bucket:
    """Some parameters' gradients side by side in one flat buffer."""

    __slots__ = ("indices", "views", "buffer", "tensor", "pending", "work")

    def __init__(self, indices: list, params: list):
        self.indices = indices
        total = sum(params[index].numel() for index in indices)
        first = params[indices[0]]
        xp = first.device.backend.xp
        with first.device.backend.context():
            self.buffer = xp.zeros(total, dtype=first._data.dtype)
        self.tensor = Tensor._wrap(self.buffer, first.device)
        # One view per parameter, made once: a .grad that *is* its view needs no copy (gradient_as_bucket_view).
        self.views = []
        offset = 0
        for index in indices:
            shape = params[index].shape
            size = int(np.prod(shape, dtype=np.int64))
            self.views.append(self.buffer[offset : offset + size].reshape(shape))
            offset += size
        self.pending = len(indices)
        self.work = None


def assign_buckets(params: list, cap_bytes: int) -> list[list[int]]:
    """Parameter indices grouped into buckets: reverse order, one (device, dtype) each, capped in bytes."""
    buckets: list[list[int]] = []
    open_buckets: dict = {}
    filled: dict = {}
    for index in reversed(range(len(params))):
        param = params[index]
        key = (param.device, param.dtype)
        size = param.numel() * param.element_size()
        current = open_buckets.get(key)
        limit = min(FIRST_BUCKET_BYTES, cap_bytes) if current is not None and current is buckets[0] else cap_bytes
        if current is not None and filled[key] + size > limit:
            current = None
        if current is None:
            current = open_buckets[key] = []
            filled[key] = 0
            buckets.append(current)
        current.append(index)
        filled[key] += size
    return buckets


class Reducer:
    """Owns the buckets and the per-iteration state of the gradient reduction."""

    def __init__(self, params: list, names: list, cap_bytes: int, gradient_as_bucket_view: bool, find_unused: bool):
        self.params = params
        self.names = names
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.find_unused = find_unused
        self.buckets = [Bucket(indices, params) for indices in assign_buckets(params, cap_bytes)]
        self.location = {}
        for bucket_index, bucket in enumerate(self.buckets):
            for position, index in enumerate(bucket.indices):
                self.location[index] = (bucket_index, position)
        self.expecting = False  # a forward under sync prepared a reduction that backward must finish
        self.ready = [False] * len(params)
        self.next_launch = 0
        self.unused: list[int] = []
        self.unused_this_iteration: list[int] = []
        self.handles = [
            param.register_post_accumulate_grad_hook(self._hook_for(index)) for index, param in enumerate(params)
        ]

    def _hook_for(self, index: int):
        def hook(param):
            self.mark_ready(index)

        return hook

    # -- one iteration ---------------------------------------------------------------------------
    def prepare(self, unused: list[int]) -> None:
        """Called by DDP's forward when gradients must be synchronised in the coming backward."""
        if self.expecting:
            missing = [self.names[index] for index, ready in enumerate(self.ready) if not ready]
            self.expecting = False
            raise DistributedError(
                "DistributedDataParallel: expected to have finished reducing the gradients of the previous "
                "iteration before starting a new one: these parameters received no gradient in its backward: "
                f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. Make every parameter take part "
                "in computing the loss, or wrap the model with find_unused_parameters=True; also make sure "
                "the forward's outputs reach the loss and backward() runs after every forward"
            )
        self.expecting = True
        self.ready = [False] * len(self.params)
        self.next_launch = 0
        self.unused = list(unused)
        self.unused_this_iteration = []
        for bucket in self.buckets:
            bucket.pending = len(bucket.indices)
            bucket.work = None

    def mark_ready(self, index: int) -> None:
        """A parameter's gradient is complete: put it in its bucket; launch the buckets that are full."""
        if not self.expecting:
            return
        if self.unused:  # the parameters this rank does not use count as ready with a zero gradient
            unused, self.unused = self.unused, []
            self.unused_this_iteration = unused
            for other in unused:
                self._store(other, zero=True)
        if self.ready[index]:
            raise DistributedError(
                f"DistributedDataParallel: parameter {self.names[index]} received a gradient twice in one backward "
                "(used in two forwards, or in a reentrant checkpoint); call backward once per DDP forward, or "
                "use no_sync() for all but the last"
            )
        self._store(index, zero=False)
        self._launch_ready_buckets()
        for bucket in self.buckets[: self.next_launch]:
            bucket.work.is_completed()  # MPI only moves data inside MPI calls: let the transfers progress
        if self.next_launch == len(self.buckets):
            self._finish()

    def _store(self, index: int, zero: bool) -> None:
        self.ready[index] = True
        bucket_index, position = self.location[index]
        bucket = self.buckets[bucket_index]
        param = self.params[index]
        view = bucket.views[position]
        grad = param._grad
        if grad is None:
            view[...] = 0
        elif grad._data is not view:
            view[...] = grad._data
            if self.gradient_as_bucket_view and not zero:
                param._grad = Tensor._wrap(view, param.device)
        bucket.pending -= 1

    def _launch_ready_buckets(self) -> None:
        while self.next_launch < len(self.buckets) and self.buckets[self.next_launch].pending == 0:
            bucket = self.buckets[self.next_launch]
            bucket.work = dist.all_reduce_unchecked(bucket.tensor, dist.ReduceOp.AVG)
            self.next_launch += 1

    def _finish(self) -> None:
        """Wait for every bucket and write the averaged gradients back (before backward returns)."""
        self.expecting = False
        for bucket in self.buckets:
            bucket.work.wait()
        used = self._globally_used() if self.find_unused else None
        for bucket in self.buckets:
            for position, index in enumerate(bucket.indices):
                param = self.params[index]
                view = bucket.views[position]
                grad = param._grad
                if used is not None and not used[index]:
                    continue  # no rank used it: its .grad stays as it was (None), as in PyTorch
                if grad is not None and grad._data is view:
                    grad._bump_version()
                elif grad is None:
                    param._grad = Tensor._wrap(view.copy(), param.device)
                else:
                    grad._data[...] = view
                    grad._bump_version()

    def _globally_used(self) -> np.ndarray:
        """Which parameters some rank used in this iteration (one small all-reduce of a bitmap)."""
        used = np.ones(len(self.params), dtype=np.int32)
        used[self.unused_this_iteration] = 0
        flags = Tensor._wrap(used, CPU)
        dist.all_reduce(flags, dist.ReduceOp.MAX)
        return flags._data

    def remove(self) -> None:
        """Take the hooks off the parameters."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
