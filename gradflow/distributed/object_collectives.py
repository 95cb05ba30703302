"""Python objects (over MPI, whatever the backend): the checkpoint and metadata helpers.

Each object is pickled into a uint8 CPU tensor; lengths travel first so that every rank can
size its buffer, then the bytes go through the tensor collectives.
"""

from __future__ import annotations

import pickle

import numpy as np

from ..device import CPU
from ..errors import DistributedError
from ..tensor import Tensor
from .gather_scatter import all_gather, all_gather_into_tensor, broadcast
from .process_group import require_group


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
