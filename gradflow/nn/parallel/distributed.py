"""DistributedDataParallel: one model replica per process, gradients averaged over the processes.

Each rank runs the same model on its own slice of the data; ``backward()`` returns with every
parameter's ``.grad`` averaged over the ranks (see ``reducer.py`` for the buckets that overlap
that communication with backward), so every rank's optimizer takes the same step and the
replicas stay identical.

In each process of an ``mpiexec`` (or ``gradflow run``) job::

    model = DistributedDataParallel(Net())
    loss_fn(model(x), y).backward()  # gradients averaged over the ranks when this returns
    optimizer.step()
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

from ... import distributed as dist
from ...autograd.function import Node
from ...autograd.grad_mode import is_grad_enabled, no_grad
from ...errors import ArgumentTypeError, DistributedError, shape_str
from ...tensor import Tensor
from ..module import Module
from .reducer import Reducer


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training, as ``torch.nn.parallel.DistributedDataParallel``.

    At construction every rank checks that all ranks wrap parameters of the same names, shapes
    and dtypes (a ``DistributedError`` names the first mismatch), then copies rank 0's
    parameters and buffers onto every rank.

    ``bucket_cap_mb``: the size of a gradient bucket (default 25 MiB; the first is 1 MiB).
    ``broadcast_buffers``: copy rank 0's buffers (e.g. BatchNorm running statistics) to every
    rank at each forward. ``find_unused_parameters``: walk the forward's graph to find the
    parameters that get no gradient, so the reduction does not wait for them.
    ``gradient_as_bucket_view``: make ``.grad`` a view into the bucket (saves a copy and memory).
    ``device_ids``/``output_device`` are accepted as in PyTorch: one device per process, the
    module's own.
    """

    def __init__(
        self,
        module: Module,
        device_ids=None,
        output_device=None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group=None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        init_sync: bool = True,
    ):
        super().__init__()
        dist.require_group("DistributedDataParallel")
        if not isinstance(module, Module):
            raise ArgumentTypeError(
                f"DistributedDataParallel: module must be a gradflow.nn.Module, got {type(module).__name__}"
            )
        if device_ids is not None and len(device_ids) > 1:
            raise DistributedError(
                "DistributedDataParallel: device_ids must hold one device (one GPU per process), got "
                f"{list(device_ids)}; start one process per GPU and call gradflow.cuda.set_device(local_rank)"
            )
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        named = [(name, param) for name, param in module.named_parameters() if param.requires_grad]
        self._param_names = [name for name, _ in named]
        self._params = [param for _, param in named]
        _verify_same_layout(self._param_names, self._params)
        if init_sync:
            _broadcast_from_rank0([param for param in module.parameters()] + list(_buffers(module)))
        cap = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        self._reducer = (
            Reducer(
                self._params, self._param_names, int(cap * 1024 * 1024), gradient_as_bucket_view, find_unused_parameters
            )
            if self._params
            else None
        )

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and self.require_forward_param_sync and dist.get_world_size() > 1:
            buffers = list(_buffers(self.module))
            if buffers:
                _broadcast_from_rank0(buffers)
        output = self.module(*inputs, **kwargs)
        if self._reducer is not None and self.require_backward_grad_sync and is_grad_enabled():
            unused = _unused_parameters(output, self._params) if self.find_unused_parameters else []
            self._reducer.prepare(unused)
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context, backward accumulates gradients locally without averaging them.

        The first backward after the context (outside it) averages the accumulated sum::

            with model.no_sync():
                for x, y in micro_batches[:-1]:
                    loss_fn(model(x), y).backward()
            loss_fn(model(micro_batches[-1][0]), micro_batches[-1][1]).backward()   # synchronises
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def __del__(self):
        reducer = getattr(self, "__dict__", {}).get("_reducer")
        if reducer is not None:
            reducer.remove()


def _buffers(module: Module):
    return (buffer for buffer in module.buffers() if buffer is not None)


def _verify_same_layout(names: list, params: list) -> None:
    """Raise on every rank when some rank wraps parameters of other names, shapes or dtypes than rank 0."""
    mine = [(name, tuple(param.shape), param.dtype.name) for name, param in zip(names, params)]
    layouts = [None] * dist.get_world_size()
    dist.all_gather_object(layouts, mine)
    reference = layouts[0]
    for rank, layout in enumerate(layouts[1:], start=1):
        if layout == reference:
            continue
        for position, (ours, theirs) in enumerate(zip(reference, layout)):
            if ours != theirs:
                raise DistributedError(
                    f"DistributedDataParallel: parameter {position} differs between ranks: rank 0 has "
                    f"{ours[0]!r} of shape {shape_str(ours[1])} ({ours[2]}) but rank {rank} has {theirs[0]!r} of "
                    f"shape {shape_str(theirs[1])} ({theirs[2]}); every rank must wrap the same model"
                )
        raise DistributedError(
            f"DistributedDataParallel: rank 0 wraps {len(reference)} parameters that require grad but rank {rank} "
            f"wraps {len(layout)}; every rank must wrap the same model"
        )


def _broadcast_from_rank0(tensors: list) -> None:
    """Copy rank 0's values into ``tensors`` on every rank: one broadcast per (device, dtype)."""
    groups: OrderedDict = OrderedDict()
    for tensor in tensors:
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    with no_grad():
        for (device, _), members in groups.items():
            xp = device.backend.xp
            with device.backend.context():
                flat = xp.concatenate([member._data.reshape(-1) for member in members])
            packed = Tensor._wrap(flat, device)
            dist.broadcast(packed, src=0)
            offset = 0
            for member in members:
                size = member.numel()
                member._data[...] = flat[offset : offset + size].reshape(member.shape)
                member._bump_version()
                offset += size


def _unused_parameters(output, params: list) -> list[int]:
    """Indices of ``params`` that no tensor in ``output`` depends on (found by walking its graph)."""
    roots = [tensor for tensor in _tensors_in(output) if tensor._node is not None or tensor._requires_grad]
    reached = {id(tensor) for tensor in roots if tensor._node is None}
    stack = [tensor._node for tensor in roots if tensor._node is not None]
    seen = set(stack)
    while stack:
        node = stack.pop()
        for edge in node.next_edges:
            if edge is None:
                continue
            target = edge[0]
            if isinstance(target, Node):
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
            else:
                reached.add(id(target))
    return [index for index, param in enumerate(params) if id(param) not in reached]


def _tensors_in(value):
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)


def consume_prefix_in_state_dict_if_present(state_dict: dict, prefix: str) -> None:
    """Strip ``prefix`` (e.g. 'module.') from the keys of ``state_dict`` in place, as PyTorch's helper.

    A checkpoint saved from a DDP-wrapped model has keys 'module.fc.weight'; strip the prefix to
    load it into the bare model (or save ``ddp_model.module.state_dict()`` in the first place).
    """
    for key in list(state_dict.keys()):
        if key.startswith(prefix):
            state_dict[key[len(prefix) :]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        for key in list(metadata.keys()):
            if key == prefix.rstrip(".") or key.startswith(prefix):
                metadata[key[len(prefix) :] if key.startswith(prefix) else ""] = metadata.pop(key)
