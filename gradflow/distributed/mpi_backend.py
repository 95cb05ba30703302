"""The collectives on MPI: non-blocking MPI calls on the arrays' own memory, finished by ``Work.wait()``.

Each function takes backend arrays (NumPy, or CuPy with a CUDA-aware MPI), starts the MPI
operation and returns a ``Work`` whose wait polls the requests under the group's timeout, then
copies results into place: into the caller's array when a contiguous staging copy was needed
(a strided view, or float16, which MPI has no reduction type for), into list entries for
``all_gather``/``gather``/``scatter``, and divides by the world size for ``ReduceOp.AVG``.
"""

from __future__ import annotations

import numpy as np

from ..errors import DtypeError
from .transport import Arrival, MpiTransport
from .work import ReduceOp, Work


def _mpi_op(transport: MpiTransport, op: ReduceOp):
    mpi = transport.MPI
    return {
        ReduceOp.SUM: mpi.SUM,
        ReduceOp.AVG: mpi.SUM,
        ReduceOp.PRODUCT: mpi.PROD,
        ReduceOp.MIN: mpi.MIN,
        ReduceOp.MAX: mpi.MAX,
    }[op]


def _staged(array, xp):
    """A contiguous array MPI can reduce: ``array`` itself when possible, else a copy (float16 -> float32)."""
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.flags.c_contiguous:
        return array
    return xp.ascontiguousarray(array)


def _plain(array, xp):
    """A contiguous array MPI can move as it is (float16 travels as its bits: MPI has no half type)."""
    buffer = array if array.flags.c_contiguous else xp.ascontiguousarray(array)
    return buffer.view(np.uint16) if buffer.dtype == np.float16 else buffer


def _work(transport: MpiTransport, arrival: Arrival, requests: list, finish=None) -> Work:
    def wait():
        transport.wait(requests, arrival)
        if finish is not None:
            finish()

    return Work(wait, lambda: transport.progress(requests))


def _copy_back(target, staged) -> None:
    """Put a staged result into the caller's array (nothing to do when MPI worked on that memory)."""
    if staged is target or staged.base is target:
        return
    if staged.dtype != target.dtype and staged.dtype.itemsize == target.dtype.itemsize:
        staged = staged.view(target.dtype)  # float16 that travelled as uint16
    target[...] = staged


def _check_average(op: ReduceOp, array, name: str) -> None:
    if op is ReduceOp.AVG and array.dtype.kind not in "fc":
        raise DtypeError(
            f"{name}: ReduceOp.AVG needs a floating point tensor, got {array.dtype}; "
            "use ReduceOp.SUM and divide, or convert with .float()"
        )


def all_reduce(transport, arrival, array, op: ReduceOp, xp) -> Work:
    _check_average(op, array, "all_reduce")
    buffer = _staged(array, xp)
    request = transport.comm.Iallreduce(transport.MPI.IN_PLACE, buffer, _mpi_op(transport, op))

    def finish():
        if op is ReduceOp.AVG:
            buffer[...] /= transport.size
        _copy_back(array, buffer)

    return _work(transport, arrival, [request], finish)


def broadcast(transport, arrival, array, src: int, xp) -> Work:
    buffer = _plain(array, xp)
    request = transport.comm.Ibcast(buffer, root=src)
    return _work(transport, arrival, [request], lambda: _copy_back(array, buffer))


def reduce(transport, arrival, array, dst: int, op: ReduceOp, xp) -> Work:
    _check_average(op, array, "reduce")
    buffer = _staged(array, xp)
    mpi_op = _mpi_op(transport, op)
    if transport.rank == dst:
        request = transport.comm.Ireduce(transport.MPI.IN_PLACE, buffer, op=mpi_op, root=dst)
    else:
        request = transport.comm.Ireduce(buffer, None, op=mpi_op, root=dst)

    def finish():
        if transport.rank == dst:
            if op is ReduceOp.AVG:
                buffer[...] /= transport.size
            _copy_back(array, buffer)

    return _work(transport, arrival, [request], finish)


def all_gather_into(transport, arrival, output, array, xp) -> Work:
    """Every rank's ``array`` concatenated, in rank order, into ``output`` (world * numel elements)."""
    send = _plain(array, xp)
    gathered = _plain(output, xp)
    request = transport.comm.Iallgather(send, gathered)
    return _work(transport, arrival, [request], lambda: _copy_back(output, gathered))


def all_gather_list(transport, arrival, outputs: list, array, xp) -> Work:
    send = _plain(array, xp)
    gathered = xp.empty((transport.size, *array.shape), dtype=send.dtype)
    request = transport.comm.Iallgather(send, gathered)

    def finish():
        for rank, output in enumerate(outputs):
            _copy_back(output, gathered[rank])

    return _work(transport, arrival, [request], finish)


def reduce_scatter(transport, arrival, output, array, op: ReduceOp, xp) -> Work:
    """Reduce ``array`` (world blocks of ``output``'s size) over the ranks; block r lands on rank r."""
    _check_average(op, array, "reduce_scatter_tensor")
    send = _staged(array, xp)
    received = xp.empty(output.shape, dtype=send.dtype)
    request = transport.comm.Ireduce_scatter_block(send, received, op=_mpi_op(transport, op))

    def finish():
        if op is ReduceOp.AVG:
            received[...] /= transport.size
        output[...] = received

    return _work(transport, arrival, [request], finish)


def gather(transport, arrival, array, outputs: list | None, dst: int, xp) -> Work:
    send = _plain(array, xp)
    is_root = transport.rank == dst
    gathered = xp.empty((transport.size, *array.shape), dtype=send.dtype) if is_root else None
    request = transport.comm.Igather(send, gathered, root=dst)

    def finish():
        if is_root:
            for rank, output in enumerate(outputs):
                _copy_back(output, gathered[rank])

    return _work(transport, arrival, [request], finish)


def scatter(transport, arrival, output, inputs: list | None, src: int, xp) -> Work:
    is_root = transport.rank == src
    send = _plain(xp.stack(inputs), xp) if is_root else None
    received = _plain(xp.empty(output.shape, dtype=output.dtype), xp)
    request = transport.comm.Iscatter(send, received, root=src)

    def finish():
        _copy_back(output, received)

    return _work(transport, arrival, [request], finish)


def barrier(transport, arrival) -> Work:
    return _work(transport, arrival, [transport.comm.Ibarrier()])
