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
"""

from __future__ import annotations

import pickle

import numpy as np

from ..device import CPU
from ..dtypes import ALL_DTYPES
from ..errors import ArgumentTypeError, DistributedError, ShapeError, shape_str
from ..tensor import Tensor
from . import mpi_backend, nccl_backend
from .process_group import ProcessGroup, require_group
from .work import REDUCE_CODES, ReduceOp, Work

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


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False) -> Work | None:
    """Reduce ``tensor`` over all ranks with ``op``; every rank gets the result in ``tensor``."""
    name = "all_reduce"
    process_group = require_group(name)
    _check_tensor(name, tensor)
    _writable(name, tensor)
    op = _check_reduce_op(name, op)
    return _run(
        process_group,
        name,
        [tensor],
        tensor.dtype.name,
        tensor.shape,
        lambda engine, target, arrival, xp: engine.all_reduce(target, arrival, tensor._data, op, xp),
        async_op,
        reduce_op=op,
    )


def all_reduce_unchecked(tensor: Tensor, op: ReduceOp = ReduceOp.SUM) -> Work:
    """Start an all_reduce without waiting for the ranks to agree on shapes first; returns its ``Work``.

    For callers that checked their layout across ranks once, like DistributedDataParallel's
    gradient buckets: the launch does not block on the slowest rank, so reductions overlap the
    rest of backward. A timeout still names the ranks that did not arrive.
    """
    name = "all_reduce"
    process_group = require_group(name)
    return _run(
        process_group,
        name,
        [tensor],
        tensor.dtype.name,
        tensor.shape,
        lambda engine, target, arrival, xp: engine.all_reduce(target, arrival, tensor._data, op, xp),
        True,
        reduce_op=op,
        check=False,
    )


def broadcast(tensor: Tensor, src: int = 0, group=None, async_op: bool = False) -> Work | None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank."""
    name = "broadcast"
    process_group = require_group(name)
    _check_tensor(name, tensor)
    _writable(name, tensor)
    src = _check_rank(name, process_group, src, "src")
    return _run(
        process_group,
        name,
        [tensor],
        tensor.dtype.name,
        tensor.shape,
        lambda engine, target, arrival, xp: engine.broadcast(target, arrival, tensor._data, src, xp),
        async_op,
        root=src,
    )


def reduce(tensor: Tensor, dst: int = 0, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` over all ranks into rank ``dst``'s ``tensor`` (the others' are left as they were)."""
    name = "reduce"
    process_group = require_group(name)
    _check_tensor(name, tensor)
    _writable(name, tensor)
    op = _check_reduce_op(name, op)
    dst = _check_rank(name, process_group, dst, "dst")
    return _run(
        process_group,
        name,
        [tensor],
        tensor.dtype.name,
        tensor.shape,
        lambda engine, target, arrival, xp: engine.reduce(target, arrival, tensor._data, dst, op, xp),
        async_op,
        root=dst,
        reduce_op=op,
    )


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


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False) -> Work | None:
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` on every rank."""
    name = "all_gather"
    process_group = require_group(name)
    _check_tensor(name, tensor)
    outputs = _check_list(name, tensor, tensor_list, "tensor_list", process_group.size())
    for output in outputs:
        _writable(name, output)
    return _run(
        process_group,
        name,
        [tensor, *outputs],
        tensor.dtype.name,
        tensor.shape,
        lambda engine, target, arrival, xp: engine.all_gather_list(
            target, arrival, [output._data for output in outputs], tensor._data, xp
        ),
        async_op,
    )


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None, async_op: bool = False):
    """Every rank's ``input_tensor`` in rank order in ``output_tensor``: stacked ([world, *shape]) or
    concatenated along dim 0 ([world * shape[0], ...]), as in PyTorch."""
    name = "all_gather_into_tensor"
    process_group = require_group(name)
    _check_tensor(name, input_tensor, "input_tensor")
    _check_tensor(name, output_tensor, "output_tensor")
    _writable(name, output_tensor)
    size = process_group.size()
    shape = input_tensor.shape
    stacked = (size, *shape)
    concatenated = (size * shape[0], *shape[1:]) if shape else (size,)
    if output_tensor.shape not in (stacked, concatenated) or output_tensor.dtype is not input_tensor.dtype:
        raise ShapeError(
            f"{name}: output_tensor has shape {shape_str(output_tensor.shape)} ({output_tensor.dtype.name}) but "
            f"must have shape {shape_str(concatenated)} or {shape_str(stacked)} ({input_tensor.dtype.name}) "
            f"for an input of shape {shape_str(shape)} on {size} ranks"
        )
    return _run(
        process_group,
        name,
        [input_tensor, output_tensor],
        input_tensor.dtype.name,
        shape,
        lambda engine, target, arrival, xp: engine.all_gather_into(
            target, arrival, output_tensor._data, input_tensor._data, xp
        ),
        async_op,
    )


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``input`` (world blocks along dim 0) over all ranks; rank r gets block r in ``output``."""
    name = "reduce_scatter_tensor"
    process_group = require_group(name)
    _check_tensor(name, input, "input")
    _check_tensor(name, output, "output")
    _writable(name, output)
    op = _check_reduce_op(name, op)
    size = process_group.size()
    shape = output.shape
    if input.shape not in ((size * shape[0], *shape[1:]) if shape else (size,), (size, *shape)):
        raise ShapeError(
            f"{name}: input has shape {shape_str(input.shape)} but must hold world size ({size}) blocks of the "
            f"output's shape {shape_str(shape)} along dim 0"
        )
    if input.dtype is not output.dtype:
        raise DistributedError(f"{name}: input is {input.dtype.name} but output is {output.dtype.name}")
    return _run(
        process_group,
        name,
        [input, output],
        input.dtype.name,
        input.shape,
        lambda engine, target, arrival, xp: engine.reduce_scatter(target, arrival, output._data, input._data, op, xp),
        async_op,
        reduce_op=op,
    )


def gather(tensor: Tensor, gather_list: list | None = None, dst: int = 0, group=None, async_op: bool = False):
    """Collect every rank's ``tensor`` into ``gather_list`` on rank ``dst`` (None elsewhere)."""
    name = "gather"
    process_group = require_group(name)
    _check_tensor(name, tensor)
    dst = _check_rank(name, process_group, dst, "dst")
    outputs = []
    if process_group.rank() == dst:
        outputs = _check_list(name, tensor, gather_list, "gather_list", process_group.size())
    elif gather_list:
        raise DistributedError(f"{name}: gather_list must be None on ranks other than dst={dst}")
    return _run(
        process_group,
        name,
        [tensor, *outputs],
        tensor.dtype.name,
        tensor.shape,
        lambda engine, target, arrival, xp: engine.gather(
            target, arrival, tensor._data, [output._data for output in outputs], dst, xp
        ),
        async_op,
        root=dst,
    )


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int = 0, group=None, async_op: bool = False):
    """Rank ``src`` sends ``scatter_list[r]`` to rank r, which receives it in ``tensor``."""
    name = "scatter"
    process_group = require_group(name)
    _check_tensor(name, tensor)
    _writable(name, tensor)
    src = _check_rank(name, process_group, src, "src")
    inputs = None
    if process_group.rank() == src:
        inputs = _check_list(name, tensor, scatter_list, "scatter_list", process_group.size())
    elif scatter_list:
        raise DistributedError(f"{name}: scatter_list must be None on ranks other than src={src}")
    return _run(
        process_group,
        name,
        [tensor, *(inputs or [])],
        tensor.dtype.name,
        tensor.shape,
        lambda engine, target, arrival, xp: engine.scatter(
            target, arrival, tensor._data, None if inputs is None else [piece._data for piece in inputs], src, xp
        ),
        async_op,
        root=src,
    )


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


# -- Python objects (over MPI, whatever the backend): the checkpoint and metadata helpers ----------
def _object_bytes(obj) -> np.ndarray:
    return np.frombuffer(pickle.dumps(obj), dtype=np.uint8)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Fill ``object_list[r]`` with rank r's picklable ``obj`` (a list of world size)."""
    name = "all_gather_object"
    process_group = require_group(name)
    size = process_group.size()
    if not isinstance(object_list, list) or len(object_list) != size:
        raise DistributedError(f"{name}: object_list must be a list of world size ({size})")
    payload = _object_bytes(obj)
    lengths = [Tensor._wrap(np.zeros(1, dtype=np.int64), _cpu()) for _ in range(size)]
    all_gather(lengths, Tensor._wrap(np.array([payload.size], dtype=np.int64), _cpu()))
    longest = max(int(length._data[0]) for length in lengths)
    padded = np.zeros(longest, dtype=np.uint8)
    padded[: payload.size] = payload
    gathered = Tensor._wrap(np.zeros(size * longest, dtype=np.uint8), _cpu())
    all_gather_into_tensor(gathered, Tensor._wrap(padded, _cpu()))
    for rank in range(size):
        start = rank * longest
        object_list[rank] = pickle.loads(gathered._data[start : start + int(lengths[rank]._data[0])].tobytes())


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Replace ``object_list``'s items on every rank with rank ``src``'s (picklable) items, in place."""
    name = "broadcast_object_list"
    process_group = require_group(name)
    if not isinstance(object_list, list):
        raise DistributedError(f"{name}: object_list must be a list, got {type(object_list).__name__}")
    payload = _object_bytes(object_list) if process_group.rank() == src else np.zeros(0, dtype=np.uint8)
    length = Tensor._wrap(np.array([payload.size], dtype=np.int64), _cpu())
    broadcast(length, src)
    data = Tensor._wrap(np.zeros(int(length._data[0]), dtype=np.uint8), _cpu())
    if process_group.rank() == src:
        data._data[...] = payload
    broadcast(data, src)
    received = pickle.loads(data._data.tobytes())
    if len(received) != len(object_list):
        raise DistributedError(
            f"{name}: rank {src} broadcast {len(received)} objects but this rank's list has {len(object_list)}; "
            "pass a list of the same length on every rank"
        )
    object_list[:] = received


def _cpu():
    return CPU
