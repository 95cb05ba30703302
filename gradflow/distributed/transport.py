"""MPI underneath every process group: the ranks, the host-side collectives, arrivals and timeouts.

Both backends keep one ``MpiTransport``: the 'mpi' backend runs its collectives on it, the 'nccl'
backend uses it to share NCCL's unique id, for barriers, for Python objects and for CPU tensors.

Every collective first *announces* itself: a small int64 signature (which op, dtype, shape,
root, reduce op, sequence number) sent to every peer, with receives posted for theirs. That costs
two tiny point-to-point messages per peer and buys two things MPI itself cannot give:

- ranks that pass different shapes or dtypes, or call different collectives, get a typed
  error naming the first disagreement, instead of MPI's undefined behaviour (hang, truncation);
- a collective that waits past the timeout names the ranks whose signature never came: the
  ranks that did not arrive.

Waiting is a polling loop over non-blocking requests (``Test``), so a deadline can be kept;
MPI's own blocking calls cannot time out.
"""

from __future__ import annotations

import time
import zlib

import numpy as np

from ..errors import DistributedError

# Signature fields (int64): op code, dtype code, reduce-op code, root, ndim, numel, then the shape
# (the last slot holds a checksum of the shape when it has more dims than fit).
_SHAPE_SLOTS = 8
SIGNATURE_LENGTH = 6 + _SHAPE_SLOTS
_ANY_ROOT = -1

# How long the wait loop spins before it starts sleeping between polls: short waits (a bucket of
# gradients) keep their latency; long ones (a peer still computing) stop burning a core.
_SPIN_SECONDS = 0.001
_MAX_SLEEP_SECONDS = 0.0005


def load_mpi():
    """mpi4py's MPI module (MPI_Init happens at this import), or a DistributedError saying how to install it."""
    try:
        from mpi4py import MPI  # optional third-party import: the 'distributed' extra brings it
    except ImportError as error:
        raise DistributedError(
            "gradflow.distributed needs mpi4py and an MPI library, which are not installed "
            f"({error}); install them with: pip install 'gradflow[distributed]'"
        ) from None
    return MPI


class Arrival:
    """One collective's announcement: this rank's signature and the pending ones of its peers."""

    __slots__ = ("op", "seq", "signature", "received", "sends", "receives", "peers")

    def __init__(self, op, seq, signature, received, sends, receives, peers):
        self.op = op
        self.seq = seq
        self.signature = signature
        self.received = received
        self.sends = sends
        self.receives = receives
        self.peers = peers

    def missing(self) -> list[int]:
        """The peers whose signature has not come (they have not reached this collective)."""
        return [peer for peer, request in zip(self.peers, self.receives) if not request.Test()]


class MpiTransport:
    """MPI_COMM_WORLD's ranks, with announced, deadline-bounded collectives."""

    def __init__(self, mpi, timeout_seconds: float):
        self.MPI = mpi
        self.timeout = float(timeout_seconds)
        # Private duplicates: user code on COMM_WORLD can never match our messages by accident.
        self.comm = mpi.COMM_WORLD.Dup()
        self.control = mpi.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        local = self.comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = local.Get_rank()
        self.local_size = local.Get_size()
        local.Free()
        self.peers = [peer for peer in range(self.size) if peer != self.rank]
        self.seq = 0
        self.broken: str | None = None
        self._unfinished_sends: list = []

    # -- announcing ----------------------------------------------------------------------------
    def announce(self, op: str, op_code: int, dtype_code: int, shape: tuple, root: int = _ANY_ROOT, reduce_code=0):
        """Send this rank's signature for the next collective to every peer; post receives for theirs."""
        if self.broken is not None:
            raise DistributedError(
                f"{op}: the process group is unusable after an earlier failure ({self.broken}); "
                "call destroy_process_group() and init_process_group() again, or restart the job"
            )
        self.seq += 1
        signature = np.zeros(SIGNATURE_LENGTH, dtype=np.int64)
        signature[:6] = (op_code, dtype_code, reduce_code, root, len(shape), int(np.prod(shape, dtype=np.int64)))
        if len(shape) <= _SHAPE_SLOTS:
            signature[6 : 6 + len(shape)] = shape
        else:
            signature[6 + _SHAPE_SLOTS - 1] = zlib.crc32(repr(tuple(shape)).encode())
        received = np.zeros((self.size, SIGNATURE_LENGTH), dtype=np.int64)
        received[self.rank] = signature
        # MPI keeps messages between two ranks on one communicator in order, so the i-th receive
        # posted for a peer matches its i-th announcement: no tags needed.
        receives = [self.control.Irecv(received[peer], source=peer) for peer in self.peers]
        sends = [self.control.Isend(signature, dest=peer) for peer in self.peers]
        self._reap_sends()
        return Arrival(op, self.seq, signature, received, sends, receives, self.peers)

    def _reap_sends(self) -> None:
        # Tiny sends complete almost at once; keep the unfinished ones (and their buffers) alive.
        if self._unfinished_sends:
            self._unfinished_sends = [request for request in self._unfinished_sends if not request.Test()]

    def check_agreement(self, arrival: Arrival, describe) -> None:
        """Wait for every peer's signature and raise a DistributedError naming the first disagreement.

        ``describe(signature)`` renders a signature for the message ("shape [3, 4], float32").
        """
        self.wait(arrival.receives, arrival)
        mine = arrival.signature
        for peer in range(self.size):
            theirs = arrival.received[peer]
            if peer == self.rank or np.array_equal(theirs, mine):
                continue
            low, high = min(peer, self.rank), max(peer, self.rank)
            raise DistributedError(
                f"{arrival.op}: the ranks disagree on collective #{arrival.seq}: rank {low} called "
                f"{describe(arrival.received[low])} but rank {high} called {describe(arrival.received[high])}; "
                "every rank must call the same collectives in the same order with tensors of the same shape and dtype"
            )

    # -- waiting --------------------------------------------------------------------------------
    def wait(self, requests: list, arrival: Arrival | None) -> None:
        """Poll ``requests`` (and the arrival's messages) until all complete, or raise past the timeout."""
        requests = list(requests)
        if arrival is not None:
            requests += arrival.receives
        test_all = self.MPI.Request.Testall
        if test_all(requests):
            self._finish(arrival)
            return
        start = time.monotonic()
        deadline = start + self.timeout
        pause = 0.0
        while not test_all(requests):
            now = time.monotonic()
            if now > deadline:
                raise self._timed_out(arrival)
            if now - start > _SPIN_SECONDS:
                pause = min(_MAX_SLEEP_SECONDS, pause + 0.0001)
                time.sleep(pause)
        self._finish(arrival)

    def _finish(self, arrival: Arrival | None) -> None:
        if arrival is not None and arrival.sends:
            self._unfinished_sends.extend(request for request in arrival.sends if not request.Test())
            arrival.sends = []

    def _timed_out(self, arrival: Arrival | None) -> DistributedError:
        op = arrival.op if arrival is not None else "collective"
        missing = arrival.missing() if arrival is not None else []
        if missing:
            what = f"rank(s) {missing} did not arrive (they never called collective #{arrival.seq})"
        else:
            what = "every rank arrived but the transfer did not finish"
        self.broken = f"{op} timed out"
        return DistributedError(
            f"{op}: timed out after {self.timeout:g} s on rank {self.rank}: {what}; check that every rank calls "
            "the same collectives in the same order (a rank that skipped one, crashed or is stuck), or pass a "
            "longer timeout= to init_process_group"
        )

    def progress(self, requests: list) -> bool:
        """Let MPI move pending non-blocking work along (it only progresses inside MPI calls)."""
        return bool(self.MPI.Request.Testall(requests)) if requests else True

    def free(self) -> None:
        """Release the private communicators."""
        for comm in (self.comm, self.control):
            if comm != self.MPI.COMM_NULL:
                comm.Free()
