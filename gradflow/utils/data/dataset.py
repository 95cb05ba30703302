"""Map-style datasets: Dataset, TensorDataset, ConcatDataset, Subset and random_split.

A dataset maps an index in ``range(len(dataset))`` to a sample. As in PyTorch,
``Dataset`` itself only fixes the protocol (subclasses implement ``__getitem__``
and, for samplers that need it, ``__len__``) and makes ``a + b`` a
``ConcatDataset``.
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Sequence

from ...errors import ArgumentTypeError, ArgumentValueError, IndexOutOfRangeError, ShapeError
from ...tensor import Tensor
from .sampler import as_numpy_generator, randperm

__all__ = ["Dataset", "TensorDataset", "ConcatDataset", "Subset", "random_split"]


class Dataset:
    """Base class of map-style datasets: subclasses implement ``__getitem__(index)`` and ``__len__()``.

    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, index):
    ...         return index * index
    >>> list(Squares() + Squares())[:5]
    [0, 1, 4, 9, 0]
    """

    def __getitem__(self, index):
        # The PyTorch convention for an abstract method of this protocol class.
        raise NotImplementedError(f"{type(self).__name__} is a Dataset and must implement __getitem__(index)")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the rows ``tuple(t[i] for t in tensors)`` of tensors sharing their first dimension.

    >>> import gradflow
    >>> dataset = TensorDataset(gradflow.zeros(3, 2), gradflow.arange(3))
    >>> len(dataset), dataset[1][1]
    (3, tensor(1))
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ArgumentValueError("TensorDataset: needs at least one tensor, e.g. TensorDataset(inputs, targets)")
        for position, tensor in enumerate(tensors):
            if not isinstance(tensor, Tensor):
                raise ArgumentTypeError(
                    f"TensorDataset: argument {position} is a {type(tensor).__name__}, expected a gradflow Tensor; "
                    "convert it with gradflow.tensor(...)"
                )
            if tensor.ndim == 0:
                raise ShapeError(
                    f"TensorDataset: argument {position} is a 0-d tensor; every tensor needs a first dimension "
                    "that indexes the samples"
                )
        sizes = [tensor.shape[0] for tensor in tensors]
        if any(size != sizes[0] for size in sizes):
            raise ShapeError(
                f"TensorDataset: size mismatch between tensors: their first dimensions are {sizes}; every tensor "
                "must hold the same number of samples along dim 0"
            )
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(tensor[index] for tensor in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    """The datasets one after another: index ``i`` runs through the first, then the second, ...

    ``cumulative_sizes[k]`` is the total length of the first ``k + 1`` datasets.
    """

    @staticmethod
    def cumsum(sequence) -> list:
        """Running totals of the lengths of ``sequence``'s datasets."""
        totals, running = [], 0
        for dataset in sequence:
            running += len(dataset)
            totals.append(running)
        return totals

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ArgumentValueError(
                "ConcatDataset: datasets should not be an empty iterable; pass at least one dataset"
            )
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        length = len(self)
        if index < 0:
            if -index > length:
                # ValueError, as PyTorch raises for a negative index past the start.
                raise ArgumentValueError(
                    f"ConcatDataset: absolute value of index {index} should not exceed dataset length {length}"
                )
            index += length
        if index >= length:
            raise IndexOutOfRangeError(f"ConcatDataset: index {index} is out of range for a dataset of length {length}")
        dataset_index = bisect.bisect_right(self.cumulative_sizes, index)
        start = 0 if dataset_index == 0 else self.cumulative_sizes[dataset_index - 1]
        return self.datasets[dataset_index][index - start]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list) -> list:
        """A list of samples; uses the dataset's own batched fetch when it has one."""
        mapped = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(mapped)
        return [self.dataset[i] for i in mapped]

    def __len__(self) -> int:
        return len(self.indices)


def _lengths_from_fractions(fractions, total: int) -> list:
    """PyTorch's rule: floor each share, then hand the remainder out one by one from the first split."""
    for position, fraction in enumerate(fractions):
        if not 0 <= fraction <= 1:
            raise ArgumentValueError(f"random_split: fraction at index {position} is {fraction}, not between 0 and 1")
    lengths = [int(math.floor(total * fraction)) for fraction in fractions]
    for position in range(total - sum(lengths)):
        lengths[position % len(lengths)] += 1
    for position, length in enumerate(lengths):
        if length == 0:
            warnings.warn(
                f"random_split: length of split at index {position} is 0; this might result in an empty dataset",
                stacklevel=3,
            )
    return lengths


def random_split(dataset, lengths, generator=None) -> list:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given ``lengths``.

    ``lengths`` are sizes summing to ``len(dataset)``, or fractions summing to 1
    (floored, and the remainder given one by one to the first splits, as in
    PyTorch). ``generator``: None (the CPU backend's generator, so
    ``gradflow.manual_seed`` fixes the split), an int seed or a numpy Generator.

    >>> train, val = random_split(range(10), [0.8, 0.2], generator=0)
    >>> len(train), len(val)
    (8, 2)
    """
    generator = as_numpy_generator(generator, "random_split")
    lengths = list(lengths)
    total = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _lengths_from_fractions(lengths, total)
    if any(int(length) != length or length < 0 for length in lengths):
        raise ArgumentValueError(
            f"random_split: lengths must be non-negative integers or fractions summing to 1, got {lengths}"
        )
    if sum(lengths) != total:
        raise ArgumentValueError(
            f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length of the input dataset "
            f"({total}); pass lengths that add up to {total} or fractions that add up to 1"
        )
    order = randperm(total, generator)
    subsets, start = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, order[start : start + int(length)]))
        start += int(length)
    return subsets
