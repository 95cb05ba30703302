"""Samplers: the order in which a DataLoader visits a dataset's indices.

``SequentialSampler`` walks 0..n-1, ``RandomSampler`` shuffles (or draws with
replacement), ``SubsetRandomSampler`` shuffles a given list of indices and
``BatchSampler`` groups any sampler's indices into lists of ``batch_size``.

Randomness. ``generator`` may be

- ``None``: draws come from the CPU backend's generator at the time of the draw,
  so ``gradflow.manual_seed(s)`` makes the whole run reproducible;
- an ``int`` seed: a private ``numpy.random.Generator`` seeded with it is created
  once, when the sampler (or DataLoader) is built, so successive epochs get
  different orders and the sequence of orders is fixed by the seed (like
  ``torch.Generator().manual_seed(s)``);
- a ``numpy.random.Generator``: used as it is (and advanced by each draw).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Sized

import numpy as np

from ...device import CPU
from ...errors import ArgumentTypeError, ArgumentValueError

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler"]


def as_numpy_generator(generator, op: str) -> np.random.Generator | None:
    """``generator`` (None, int seed or numpy Generator) as a numpy Generator; None stays None."""
    if generator is None or isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise ArgumentTypeError(
        f"{op}: generator must be None, an int seed or a numpy.random.Generator, got {type(generator).__name__}; "
        "e.g. generator=0 or generator=numpy.random.default_rng(0)"
    )


def _draw_source(generator: np.random.Generator | None) -> np.random.Generator:
    if generator is not None:
        return generator
    # Looked up at every draw: manual_seed replaces the backend's generator object.
    return CPU.backend.generator


def randperm(n: int, generator: np.random.Generator | None = None) -> list:
    """A random permutation of range(n) as Python ints, drawn from ``generator`` (or the CPU backend's)."""
    return _draw_source(generator).permutation(n).tolist()


class Sampler:
    """Base class of samplers: subclasses define ``__iter__`` (indices) and usually ``__len__``."""

    def __init__(self, data_source: Sized | None = None) -> None:
        # Accepted and ignored, as in PyTorch, so subclasses may call super().__init__(data_source).
        pass

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__ to be used as a sampler")


class SequentialSampler(Sampler):
    """Indices 0, 1, ..., len(data_source) - 1 in order."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices of ``data_source`` in random order (a fresh permutation each epoch).

    ``replacement=True`` draws ``num_samples`` indices independently; without
    replacement, ``num_samples`` larger than the dataset chains whole permutations.
    """

    def __init__(
        self, data_source: Sized, replacement: bool = False, num_samples: int | None = None, generator=None
    ) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = as_numpy_generator(generator, "RandomSampler")
        if not isinstance(replacement, bool):
            raise ArgumentTypeError(
                f"RandomSampler: replacement should be a boolean value, but got replacement={replacement}"
            )
        if not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool) or self.num_samples <= 0:
            raise ArgumentValueError(
                f"RandomSampler: num_samples should be a positive integer value, but got num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        # The dataset may change size between construction and iteration.
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        source = _draw_source(self.generator)
        if self.replacement:
            yield from source.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from source.permutation(n).tolist()
        yield from source.permutation(n)[: self.num_samples % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in random order, without replacement."""

    def __init__(self, indices, generator=None) -> None:
        self.indices = indices
        self.generator = as_numpy_generator(generator, "SubsetRandomSampler")

    def __iter__(self) -> Iterator[int]:
        for position in randperm(len(self.indices), self.generator):
            yield self.indices[position]

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``; the last may be shorter unless ``drop_last``.

    >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ArgumentValueError(
                f"BatchSampler: batch_size should be a positive integer value, but got {batch_size!r}"
            )
        if not isinstance(drop_last, bool):
            raise ArgumentValueError(f"BatchSampler: drop_last should be a boolean value, but got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list]:
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
