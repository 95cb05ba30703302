"""The reductions: all_reduce, reduce and reduce_scatter_tensor, in place on the tensors' memory."""

from __future__ import annotations

from ..errors import DistributedError, ShapeError, shape_str
from ..tensor import Tensor
from .dispatch import (
    _check_rank,
    _check_reduce_op,
    _check_tensor,
    _run,
    _writable,
)
from .process_group import require_group
from .work import ReduceOp, Work


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
