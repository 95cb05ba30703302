"""Data movement without arithmetic: broadcast, all_gather, all_gather_into_tensor, gather, scatter."""

from __future__ import annotations

from ..errors import DistributedError, ShapeError, shape_str
from ..tensor import Tensor
from .dispatch import (
    _check_list,
    _check_rank,
    _check_tensor,
    _run,
    _writable,
)
from .process_group import require_group
from .work import Work


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
