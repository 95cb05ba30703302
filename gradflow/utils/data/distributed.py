"""DistributedSampler: each rank's share of a dataset, index for index the sequence PyTorch's gives.

The shuffle must be PyTorch's exactly so that a job moved between the two frameworks (or
checked against one) sees the same samples on each rank. ``torch.randperm`` with a generator
seeded by ``seed + epoch`` is a Fisher-Yates shuffle driven by the raw 32-bit outputs of
MT19937 seeded with the seed's low 32 bits; NumPy's MT19937 with legacy seeding produces the
same stream, so the permutation is rebuilt here from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np

from ... import distributed as dist
from ...errors import ArgumentValueError
from .sampler import Sampler

__all__ = ["DistributedSampler"]

# torch.randperm switches to a 64-bit draw per element from this size on; only the smaller case is mirrored.
_SMALL_RANDPERM_LIMIT = (2**32 - 1) // 20


def torch_randperm(n: int, seed: int) -> list[int]:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()``, without torch."""
    if n >= _SMALL_RANDPERM_LIMIT:
        raise ArgumentValueError(
            f"DistributedSampler: datasets of {n} samples or more are not supported (limit {_SMALL_RANDPERM_LIMIT})"
        )
    bit_generator = np.random.MT19937(0)
    bit_generator._legacy_seeding(int(seed) & 0xFFFFFFFF)
    draws = bit_generator.random_raw(max(n - 1, 0)).tolist()
    order = list(range(n))
    for i in range(n - 1):
        j = i + draws[i] % (n - i)
        order[i], order[j] = order[j], order[i]
    return order


class DistributedSampler(Sampler):
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` visits, as in PyTorch.

    Every rank gets ``num_samples`` indices: the (shuffled) index list is padded by repeating
    its start so it divides evenly (or, with ``drop_last``, cut down), and rank r takes every
    ``num_replicas``-th index from position r. Call ``set_epoch(epoch)`` at the start of each
    epoch so the shuffle changes. ``num_replicas`` and ``rank`` default to the process group's.

    >>> from gradflow.utils.data import DistributedSampler
    >>> list(DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False))
    [1, 4, 7, 0]
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None:
            num_replicas = dist.get_world_size()
        if rank is None:
            rank = dist.get_rank()
        if not 0 <= rank < num_replicas:
            raise ArgumentValueError(
                f"DistributedSampler: invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if drop_last and len(dataset) % num_replicas != 0:
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            indices = torch_randperm(len(self.dataset), self.seed + self.epoch)
        else:
            indices = list(range(len(self.dataset)))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffle of ``epoch`` (seed + epoch) from the next iteration on; call it on every rank."""
        self.epoch = epoch
