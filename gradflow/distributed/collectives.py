"""The collectives, with PyTorch's names and arguments, in place on the tensors' own memory.

Each call checks its arguments, announces itself to the other ranks (so that ranks passing
different shapes or dtypes, or calling different collectives, get a ``DistributedError`` instead
of a hang), then runs on the group's backend: CUDA tensors on NCCL under the 'nccl' backend,
everything else on MPI. ``async_op=True`` returns a ``Work`` to ``wait()`` on; otherwise the call
returns None once the result is in place.

In each process of an ``mpiexec -n 2`` (or ``gradflow run --nproc 2``) job::

    import gradflow as gf, gradflow.distributed as dist
    dist.init_process_group()
    t = gf.ones(3) * (dist.get_rank() + 1)
    dist.all_reduce(t)  # every rank now holds [3., 3., 3.]

The calls live by family: ``reductions.py`` (all_reduce, reduce, reduce_scatter_tensor),
``gather_scatter.py`` (broadcast, all_gather, gather, scatter) and ``object_collectives.py``
(picklable objects), on the shared checks and launch path of ``dispatch.py``; this module
defines ``barrier`` and is the public home of them all.
"""

from __future__ import annotations

from . import mpi_backend
from .dispatch import _DTYPE_CODES, _OP_CODES
from .gather_scatter import all_gather, all_gather_into_tensor, broadcast, gather, scatter
from .object_collectives import all_gather_object, broadcast_object_list
from .process_group import require_group
from .reductions import all_reduce, all_reduce_unchecked, reduce, reduce_scatter_tensor
from .work import Work

__all__ = [
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "all_reduce_unchecked",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "gather",
    "reduce",
    "reduce_scatter_tensor",
    "scatter",
]


def barrier(group=None, async_op: bool = False, device_ids=None) -> Work | None:
    """Wait until every rank has reached this call (GPU work queued before it has finished first)."""
    name = "barrier"
    process_group = require_group(name)
    if process_group.nccl is not None:
        process_group.nccl.stream.synchronize()
    transport = process_group.transport
    arrival = transport.announce(name, _OP_CODES[name], _DTYPE_CODES["float32"], ())
    work = mpi_backend.barrier(transport, arrival)
    if async_op:
        return work
    work.wait()
    return None
