"""Datasets, samplers and the DataLoader, named and shaped as in ``torch.utils.data``.

>>> import gradflow
>>> from gradflow.utils.data import DataLoader, TensorDataset
>>> inputs, targets = gradflow.randn(10, 3), gradflow.arange(10)
>>> loader = DataLoader(TensorDataset(inputs, targets), batch_size=4, shuffle=True, generator=0)
>>> [tuple(x.shape) for x, y in loader]
[(4, 3), (4, 3), (2, 3)]
"""

from .dataloader import DataLoader, default_collate, default_convert
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "default_collate",
    "default_convert",
    "random_split",
]
