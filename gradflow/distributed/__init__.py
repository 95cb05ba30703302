"""Data-parallel training on several processes, GPUs and machines, with ``torch.distributed``'s names.

MPI (through mpi4py, the optional ``distributed`` extra) starts the processes and carries the
CPU collectives; NCCL (through CuPy) carries the GPU ones. Start a job with
``mpiexec -n 4 python train.py`` or ``gradflow run --nproc 4 train.py``, then::

    import gradflow as gf
    import gradflow.distributed as dist

    dist.init_process_group()              # 'nccl' when the default device is CUDA, else 'mpi'
    rank, world = dist.get_rank(), dist.get_world_size()
    t = gf.ones(3) * rank
    dist.all_reduce(t, op=dist.ReduceOp.SUM)

``import gradflow`` never imports mpi4py: MPI starts at ``init_process_group``.
"""

from .collectives import (
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    all_reduce_unchecked,
    barrier,
    broadcast,
    broadcast_object_list,
    gather,
    reduce,
    reduce_scatter_tensor,
    scatter,
)
from .process_group import (
    DEFAULT_TIMEOUT,
    destroy_process_group,
    get_backend,
    get_node_local_rank,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    require_group,
)
from .work import ReduceOp, Work

__all__ = [
    "DEFAULT_TIMEOUT",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "all_reduce_unchecked",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "destroy_process_group",
    "gather",
    "get_backend",
    "get_node_local_rank",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "reduce",
    "reduce_scatter_tensor",
    "require_group",
    "scatter",
]
