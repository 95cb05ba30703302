"""What every collective shares: argument checks, the signature each rank announces, the backend.

``_run`` is each collective's one path: pick the backend for the tensors (``_engine``: NCCL for
CUDA tensors under 'nccl', MPI otherwise), announce the call's signature (op, dtype, shape,
root, reduce op) so that ranks that disagree get a ``DistributedError`` naming both sides
(``_describe``) instead of a hang, launch, and wait unless ``async_op``.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import ALL_DTYPES
from ..errors import ArgumentTypeError, DistributedError, ShapeError, shape_str
from ..tensor import Tensor
from . import mpi_backend, nccl_backend
from .process_group import ProcessGroup
from .work import REDUCE_CODES, ReduceOp

_OPS = (
    "all_reduce",
    "broadcast",
    "reduce",
    "all_gather",
    "all_gather_into_tensor",
    "reduce_scatter_tensor",
    "gather",
    "scatter",
    "barrier",
)
_OP_CODES = {name: code for code, name in enumerate(_OPS, start=1)}
_DTYPE_NAMES = tuple(dtype.name for dtype in ALL_DTYPES)
_DTYPE_CODES = {name: code for code, name in enumerate(_DTYPE_NAMES, start=1)}
_REDUCE_NAMES = {code: op.name for op, code in REDUCE_CODES.items()}


def _describe(signature) -> str:
    """A signature as words: 'all_reduce(shape [3, 4], float32, SUM)'."""
    op_code, dtype_code, reduce_code, root, ndim, numel = (int(value) for value in signature[:6])
    name = _OPS[op_code - 1] if 0 < op_code <= len(_OPS) else f"op #{op_code}"
    if name == "barrier":
        return "barrier()"
    parts = [f"shape {shape_str(signature[6 : 6 + ndim])}" if ndim <= 8 else f"a {ndim}-d shape of {numel} elements"]
    parts.append(_DTYPE_NAMES[dtype_code - 1] if 0 < dtype_code <= len(_DTYPE_NAMES) else "?")
    if reduce_code:
        parts.append(_REDUCE_NAMES[reduce_code])
    if root >= 0:
        parts.append(f"root {root}")
    return f"{name}({', '.join(parts)})"


def _check_tensor(op: str, tensor, role: str = "tensor") -> None:
    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"{op}: {role} must be a gradflow Tensor, got {type(tensor).__name__}")


def _check_reduce_op(op: str, reduce_op) -> ReduceOp:
    if not isinstance(reduce_op, ReduceOp):
        raise DistributedError(f"{op}: op must be a gradflow.distributed.ReduceOp (SUM, AVG, ...), got {reduce_op!r}")
    return reduce_op


def _check_rank(op: str, group: ProcessGroup, rank: int, role: str) -> int:
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < group.size():
        raise DistributedError(f"{op}: {role}={rank!r} is not a rank of this job (0 .. {group.size() - 1})")
    return int(rank)


def _engine(group: ProcessGroup, op: str, tensors):
    """The backend module for these tensors, after the device checks ('nccl' for CUDA tensors under NCCL)."""
    devices = {tensor.device for tensor in tensors}
    if len(devices) > 1:
        names = ", ".join(sorted(str(device) for device in devices))
        raise DistributedError(f"{op}: all tensors must be on one device, got {names}; move them with .to(...)")
    device = next(iter(devices))
    if device.type != "cuda":
        return mpi_backend, group.transport
    if group.nccl is not None:
        for tensor in tensors:
            group.nccl.check_device(tensor._data, op)
        return nccl_backend, group.nccl
    if not _mpi_is_cuda_aware(group):
        raise DistributedError(
            f"{op}: the tensor is on {device} but the process group's backend is 'mpi' and this MPI library is "
            "not CUDA-aware; use init_process_group(backend='nccl') for CUDA tensors, or move the tensor to the "
            "CPU first (.cpu())"
        )
    device.backend.synchronize()  # MPI reads device memory directly: the kernels that wrote it must be done
    return mpi_backend, group.transport


def _mpi_is_cuda_aware(group: ProcessGroup) -> bool:
    query = getattr(group.transport.MPI, "Query_cuda_support", None)
    try:
        return bool(query()) if query is not None else False
    except Exception:  # an MPI without the MPIX extension raises NotImplementedError
        return False


def _run(group, op, tensors, dtype_name, shape, launch, async_op, root=-1, reduce_op=None, check=True):
    """Announce, check agreement, launch; wait unless ``async_op``."""
    engine, target = _engine(group, op, tensors)
    arrival = group.transport.announce(
        op, _OP_CODES[op], _DTYPE_CODES[dtype_name], tuple(shape), root, REDUCE_CODES.get(reduce_op, 0)
    )
    if check:
        group.transport.check_agreement(arrival, _describe)
    xp = tensors[0].device.backend.xp
    work = launch(engine, target, arrival, xp)
    for tensor in tensors:
        tensor._bump_version()  # the collective writes into the tensor's memory
    if async_op:
        return work
    work.wait()
    return None


def _writable(op: str, tensor: Tensor) -> None:
    if not getattr(tensor._data.flags, "writeable", True):
        raise DistributedError(f"{op}: the tensor is read-only (a broadcast or expanded view); pass a .clone()")


def _check_like(op: str, tensor: Tensor, other: Tensor, role: str, expected_shape=None) -> None:
    _check_tensor(op, other, role)
    shape = tensor.shape if expected_shape is None else expected_shape
    if other.shape != tuple(shape) or other.dtype is not tensor.dtype:
        raise ShapeError(
            f"{op}: {role} has shape {shape_str(other.shape)} and dtype {other.dtype.name} but must have shape "
            f"{shape_str(shape)} and dtype {tensor.dtype.name}"
        )


def _check_list(op: str, tensor: Tensor, tensors, role: str, size: int) -> list:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != size:
        count = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise DistributedError(f"{op}: {role} must be a list of world size ({size}) tensors, got {count}")
    for position, other in enumerate(tensors):
        _check_like(op, tensor, other, f"{role}[{position}]")
    return list(tensors)
