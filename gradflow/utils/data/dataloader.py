"""DataLoader: batches of a dataset, in order or shuffled, optionally moved to a device.

Also ``default_collate`` (samples -> one batch) and ``default_convert`` (one
sample -> tensors), with PyTorch's rules: tensors and NumPy arrays are stacked
along a new first dimension, Python ints become int64, floats float64 and
bools bool tensors; dicts, named tuples and sequences are collated field by
field (a batch of tuples gives a list, as in PyTorch); strings stay a list.

Loading runs in the calling process: ``num_workers`` must be 0.
"""

from __future__ import annotations

import collections.abc
import copy
import numbers
import warnings

import numpy as np

from ...device import device as to_device
from ...dtypes import float64
from ...errors import ArgumentTypeError, ArgumentValueError, ShapeError
from ...ops.creation import as_tensor, tensor
from ...ops.join import stack
from ...tensor import Tensor
from .dataset import Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler, as_numpy_generator

__all__ = ["DataLoader", "default_collate", "default_convert"]

_UNSUPPORTED = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _is_text(array) -> bool:
    # Strings, bytes and Python objects have no tensor dtype.
    return np.asarray(array).dtype.kind in "SUaO"


def _same_mapping(mapping, values: dict):
    """``values`` in the mapping type of ``mapping`` (a copy keeps extras such as a defaultdict's factory)."""
    if isinstance(mapping, collections.abc.MutableMapping):
        try:
            clone = copy.copy(mapping)
            clone.update(values)
            return clone
        except TypeError:
            return values
    try:
        return type(mapping)(values)
    except TypeError:
        return values


def default_collate(batch):
    """Merge a list of samples into one batch: ``[(x0, y0), (x1, y1)] -> [stack([x0, x1]), stack([y0, y1])]``.

    >>> default_collate([{"x": 1.5, "y": 1}, {"x": 2.5, "y": 0}])
    {'x': tensor([1.5, 2.5], dtype=gradflow.float64), 'y': tensor([1, 0])}
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if _is_text(elem):
            raise ArgumentTypeError(_UNSUPPORTED.format(elem.dtype))
        return stack([as_tensor(item) for item in batch], 0)
    if isinstance(elem, np.generic):
        if _is_text(elem):
            raise ArgumentTypeError(_UNSUPPORTED.format(type(elem)))
        return as_tensor(np.asarray(batch))
    if isinstance(elem, float):
        return tensor(batch, dtype=float64)
    if isinstance(elem, numbers.Integral):
        return tensor(batch)  # ints -> int64, bools -> bool (as torch.tensor infers)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _same_mapping(elem, {key: default_collate([sample[key] for sample in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        sizes = [len(sample) for sample in batch]
        if any(size != sizes[0] for size in sizes):
            raise ShapeError(
                f"default_collate: each element in list of batch should be of equal size, got {sizes}; "
                "pad the samples or pass a collate_fn"
            )
        columns = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, collections.abc.MutableSequence):
            try:
                clone = copy.copy(elem)  # keeps a list subclass and its attributes
                clone[:] = columns
                return clone
            except TypeError:
                return columns
        return columns  # tuples (and other immutable sequences) become lists, as in PyTorch
    raise ArgumentTypeError(_UNSUPPORTED.format(type(elem)))


def default_convert(data):
    """Turn the NumPy arrays and scalars inside one sample into tensors; everything else stays as it is.

    A DataLoader with ``batch_size=None`` applies this instead of ``default_collate``.
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)):
        return data if _is_text(data) else as_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping(data, {key: default_convert(value) for key, value in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(item) for item in data))
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return [default_convert(item) for item in data]
    return data


def _move(data, device):
    """Every tensor inside ``data`` (dicts, lists, tuples, named tuples) moved to ``device``."""
    if isinstance(data, Tensor):
        return data.to(device)
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping(data, {key: _move(value, device) for key, value in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_move(item, device) for item in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_move(item, device) for item in data)
    return data


def _plain(dataset, cls) -> bool:
    """``dataset`` is a ``cls`` whose sample access is not overridden (so a direct gather is equivalent)."""
    kind = type(dataset)
    return (
        isinstance(dataset, cls)
        and kind.__getitem__ is cls.__getitem__
        and getattr(kind, "__getitems__", None) is getattr(cls, "__getitems__", None)
    )


def _gather_tensor_rows(dataset, indices: list):
    """The batch default_collate would build from a TensorDataset (possibly under Subsets), as one gather.

    Returns None when ``dataset`` is not such a dataset.
    """
    if not indices:
        return None  # let the collate function decide what an empty batch is
    while _plain(dataset, Subset):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if not _plain(dataset, TensorDataset):
        return None
    host_index = np.asarray(indices, dtype=np.int64)
    index_by_device = {}
    batch = []
    for source in dataset.tensors:
        index = index_by_device.get(source.device)
        if index is None:
            index = index_by_device[source.device] = tensor(host_index, device=source.device)
        batch.append(source[index])
    return batch  # a list, as default_collate returns for tuple samples


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Arguments follow ``torch.utils.data.DataLoader``: ``shuffle`` draws a new
    order every epoch (``RandomSampler``); ``sampler`` / ``batch_sampler`` give
    the order explicitly; ``batch_size=None`` yields single samples (converted
    with ``default_convert``); ``drop_last`` drops a short final batch;
    ``collate_fn`` replaces ``default_collate``. ``generator`` seeds shuffling:
    None (the CPU backend's generator, so ``gradflow.manual_seed`` makes runs
    reproducible), an int seed, or a ``numpy.random.Generator``.

    Beyond PyTorch: ``device`` moves every tensor of each batch there. Loading
    runs in this process, so ``num_workers`` must be 0, and ``pin_memory`` has
    no effect (a warning says so). For a ``TensorDataset`` (also under
    ``Subset``s, as ``random_split`` makes them) with the default collate, each
    batch is one indexed gather per tensor instead of a stack of single rows.

    >>> import gradflow
    >>> from gradflow.utils.data import TensorDataset
    >>> loader = DataLoader(TensorDataset(gradflow.arange(5)), batch_size=2)
    >>> [batch for (batch,) in loader]
    [tensor([0, 1]), tensor([2, 3]), tensor([4])]
    """

    _frozen = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset")

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        pin_memory: bool = False,
        drop_last: bool = False,
        generator=None,
        *,
        device=None,
    ) -> None:
        if num_workers < 0:
            raise ArgumentValueError(
                f"DataLoader: num_workers option should be non-negative, got {num_workers}; "
                "use num_workers=0 to disable multiprocessing"
            )
        if num_workers > 0:
            raise ArgumentValueError(
                f"DataLoader: num_workers={num_workers} is not supported: gradflow loads batches in the calling "
                "process only; pass num_workers=0"
            )
        if sampler is not None and shuffle:
            raise ArgumentValueError(
                "DataLoader: sampler option is mutually exclusive with shuffle; shuffle in the sampler"
            )
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ArgumentValueError(
                    "DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                    "and drop_last; leave those at their defaults"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ArgumentValueError(
                "DataLoader: batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
            )
        if pin_memory:
            warnings.warn(
                "DataLoader: pin_memory=True has no effect in gradflow (batches are not copied to page-locked "
                "memory); pass device='cuda' to move batches to the GPU",
                stacklevel=2,
            )
        self.generator = as_numpy_generator(generator, "DataLoader")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=self.generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.collate_fn = collate_fn
        self.device = None if device is None else to_device(device)
        self._initialized = True

    def __setattr__(self, name, value) -> None:
        # As in PyTorch: the batching set up in __init__ would silently stop matching these.
        if getattr(self, "_initialized", False) and name in self._frozen:
            raise ArgumentValueError(
                f"DataLoader: {name} attribute should not be set after DataLoader is initialized; "
                "create a new DataLoader instead"
            )
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    def __len__(self) -> int:
        return len(self.batch_sampler if self._auto_collation else self.sampler)

    def __iter__(self):
        if not self._auto_collation:
            convert = default_convert if self.collate_fn is None else self.collate_fn
            for index in self.sampler:
                yield self._to_device(convert(self.dataset[index]))
            return
        collate = default_collate if self.collate_fn is None else self.collate_fn
        gather = collate is default_collate
        fetch_many = getattr(self.dataset, "__getitems__", None)
        for indices in self.batch_sampler:
            indices = list(indices)
            batch = _gather_tensor_rows(self.dataset, indices) if gather else None
            if batch is None:
                samples = fetch_many(indices) if callable(fetch_many) else [self.dataset[i] for i in indices]
                batch = collate(samples)
            yield self._to_device(batch)

    def _to_device(self, batch):
        return batch if self.device is None else _move(batch, self.device)
