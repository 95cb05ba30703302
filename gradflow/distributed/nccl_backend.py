"""The collectives on NCCL (through CuPy's ``cupy.cuda.nccl``): in place on the GPU, no host round trip.

One NCCL communicator per process, on the process's current GPU (``gf.cuda.set_device(local_rank)``
first), built from a unique id that rank 0 makes and MPI broadcasts. Collectives run on a
dedicated communication stream: it first waits for the work already queued on the current
stream (the producer of the tensor), and ``Work.wait()`` makes the current stream wait for the
collective. So gradients can be reduced while backward keeps computing, and nothing blocks the
host. The arrays stay referenced by their ``Work`` until it is waited on.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys

import numpy as np

from ..errors import DistributedError
from .transport import Arrival, MpiTransport
from .work import ReduceOp, Work

# NCCL's enums (nccl.h; CuPy exposes the same values as NCCL_* constants).
_NCCL_TYPES = {
    np.dtype(np.int8): 0,
    np.dtype(np.uint8): 1,
    np.dtype(np.bool_): 1,
    np.dtype(np.int32): 2,
    np.dtype(np.uint32): 3,
    np.dtype(np.int64): 4,
    np.dtype(np.uint64): 5,
    np.dtype(np.float16): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.float64): 8,
}
_NCCL_OPS = {ReduceOp.SUM: 0, ReduceOp.PRODUCT: 1, ReduceOp.MAX: 2, ReduceOp.MIN: 3, ReduceOp.AVG: 4}


def preload_nccl_wheel() -> None:
    """Load libnccl from the nvidia-nccl wheel (the CUDA extras) if one is installed, before CuPy looks for it.

    CuPy's NCCL bindings open ``libnccl.so.2`` by name; a wheel's copy lies inside site-packages,
    off the loader's path. Loading it first (globally) lets CuPy's bindings resolve to it.
    """
    if "cupy.cuda.nccl" in sys.modules:
        return
    spec = importlib.util.find_spec("nvidia.nccl")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        library = os.path.join(folder, "lib", "libnccl.so.2")
        if os.path.exists(library):
            ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
            return


class NcclCommunicator:
    """This process's NCCL communicator, its GPU and its communication stream."""

    def __init__(self, transport: MpiTransport):
        preload_nccl_wheel()
        try:
            import cupy  # optional third-party import: the CUDA extras bring CuPy and NCCL
            from cupy.cuda import nccl
        except ImportError as error:
            raise DistributedError(
                f"init_process_group(backend='nccl'): CuPy's NCCL bindings are not importable ({error}); "
                "install the CUDA extra (pip install 'gradflow[cuda12]' or 'gradflow[cuda13]'), "
                "or use backend='mpi'"
            ) from None
        self.cupy = cupy
        self.nccl = nccl
        self.transport = transport
        self.device_index = cupy.cuda.runtime.getDevice()
        unique_id = nccl.get_unique_id() if transport.rank == 0 else None
        unique_id = transport.comm.bcast(unique_id, root=0)
        with cupy.cuda.Device(self.device_index):
            self.comm = nccl.NcclCommunicator(transport.size, unique_id, transport.rank)
            self.stream = cupy.cuda.Stream(non_blocking=True)

    def destroy(self) -> None:
        """Release the communicator (after the queued collectives finish)."""
        if self.comm is not None:
            with self.cupy.cuda.Device(self.device_index):
                self.stream.synchronize()
            self.comm.destroy()
            self.comm = None

    # -- launching -------------------------------------------------------------------------------
    def check_device(self, array, op: str) -> None:
        if array.device.id != self.device_index:
            raise DistributedError(
                f"{op}: the tensor is on cuda:{array.device.id} but this process's NCCL communicator is on "
                f"cuda:{self.device_index}; call gradflow.cuda.set_device(local_rank) before init_process_group "
                "and keep the model and data on that GPU"
            )

    def launch(self, arrival: Arrival | None, keep: tuple, issue, finish=None) -> Work:
        """Run ``issue(stream_pointer)`` on the communication stream after the current stream's work."""
        cupy = self.cupy
        with cupy.cuda.Device(self.device_index):
            produced = cupy.cuda.Event(disable_timing=True)
            produced.record(cupy.cuda.get_current_stream())
            self.stream.wait_event(produced)
            issue(self.stream.ptr)
            done = cupy.cuda.Event(disable_timing=True)
            done.record(self.stream)

        def wait():
            if arrival is not None:
                self.transport.wait([], arrival)  # the peers' signatures: names absent ranks on a timeout
            with cupy.cuda.Device(self.device_index):
                cupy.cuda.get_current_stream().wait_event(done)
                if finish is not None:
                    finish()
            del keep_alive[:]

        keep_alive = list(keep)
        return Work(wait, lambda: done.done)


def _type(array) -> int:
    code = _NCCL_TYPES.get(array.dtype)
    if code is None:
        raise DistributedError(f"NCCL has no type for {array.dtype}; convert the tensor (e.g. .float()) first")
    return code


def _contiguous(array, xp):
    return array if array.flags.c_contiguous else xp.ascontiguousarray(array)


def _copy_back(target, staged) -> None:
    if staged is not target and staged.base is not target:
        target[...] = staged


def all_reduce(group: NcclCommunicator, arrival, array, op: ReduceOp, xp) -> Work:
    buffer = _contiguous(array, xp)

    def issue(stream):
        pointer = buffer.data.ptr
        group.comm.allReduce(pointer, pointer, buffer.size, _type(buffer), _NCCL_OPS[op], stream)

    return group.launch(arrival, (buffer, array), issue, lambda: _copy_back(array, buffer))


def broadcast(group, arrival, array, src: int, xp) -> Work:
    buffer = _contiguous(array, xp)

    def issue(stream):
        pointer = buffer.data.ptr
        group.comm.broadcast(pointer, pointer, buffer.size, _type(buffer), src, stream)

    return group.launch(arrival, (buffer, array), issue, lambda: _copy_back(array, buffer))


def reduce(group, arrival, array, dst: int, op: ReduceOp, xp) -> Work:
    buffer = _contiguous(array, xp)

    def issue(stream):
        pointer = buffer.data.ptr
        group.comm.reduce(pointer, pointer, buffer.size, _type(buffer), _NCCL_OPS[op], dst, stream)

    return group.launch(arrival, (buffer, array), issue, lambda: _copy_back(array, buffer))


def all_gather_into(group, arrival, output, array, xp) -> Work:
    send = _contiguous(array, xp)
    gathered = _contiguous(output, xp)

    def issue(stream):
        group.comm.allGather(send.data.ptr, gathered.data.ptr, send.size, _type(send), stream)

    return group.launch(arrival, (send, gathered, output), issue, lambda: _copy_back(output, gathered))


def all_gather_list(group, arrival, outputs: list, array, xp) -> Work:
    send = _contiguous(array, xp)
    gathered = xp.empty((group.transport.size, *array.shape), dtype=array.dtype)

    def issue(stream):
        group.comm.allGather(send.data.ptr, gathered.data.ptr, send.size, _type(send), stream)

    def finish():
        for rank, output in enumerate(outputs):
            output[...] = gathered[rank]

    return group.launch(arrival, (send, gathered), issue, finish)


def reduce_scatter(group, arrival, output, array, op: ReduceOp, xp) -> Work:
    send = _contiguous(array, xp)
    received = _contiguous(output, xp)

    def issue(stream):
        group.comm.reduceScatter(send.data.ptr, received.data.ptr, received.size, _type(send), _NCCL_OPS[op], stream)

    return group.launch(arrival, (send, received, output), issue, lambda: _copy_back(output, received))


def gather(group, arrival, array, outputs: list | None, dst: int, xp) -> Work:
    """NCCL has no gather: each rank sends to ``dst`` inside one NCCL group call (as PyTorch does)."""
    send = _contiguous(array, xp)
    rank, size = group.transport.rank, group.transport.size
    gathered = xp.empty((size, *array.shape), dtype=array.dtype) if rank == dst else None

    def issue(stream):
        group.nccl.groupStart()
        if rank == dst:
            for peer in range(size):
                if peer == rank:
                    continue
                group.comm.recv(gathered[peer].data.ptr, send.size, _type(send), peer, stream)
        else:
            group.comm.send(send.data.ptr, send.size, _type(send), dst, stream)
        group.nccl.groupEnd()

    def finish():
        if rank == dst:
            gathered[rank] = send
            for peer, output in enumerate(outputs):
                output[...] = gathered[peer]

    return group.launch(arrival, (send, gathered), issue, finish)


def scatter(group, arrival, output, inputs: list | None, src: int, xp) -> Work:
    """NCCL has no scatter: ``src`` sends each rank its piece inside one NCCL group call."""
    rank, size = group.transport.rank, group.transport.size
    send = xp.ascontiguousarray(xp.stack(inputs)) if rank == src else None
    received = _contiguous(output, xp)

    def issue(stream):
        group.nccl.groupStart()
        if rank == src:
            for peer in range(size):
                if peer != rank:
                    group.comm.send(send[peer].data.ptr, received.size, _type(received), peer, stream)
        else:
            group.comm.recv(received.data.ptr, received.size, _type(received), src, stream)
        group.nccl.groupEnd()

    def finish():
        if rank == src:
            received[...] = send[rank]
        _copy_back(output, received)

    return group.launch(arrival, (send, received, output), issue, finish)
