"""DistributedSampler yields exactly PyTorch's index sequences, and the ranks' shares partition the dataset."""

from __future__ import annotations

import pytest

import gradflow as gf
from gradflow.errors import DistributedError
from gradflow.utils.data import DataLoader, DistributedSampler, TensorDataset
from gradflow.utils.data.distributed import torch_randperm

CASES = [(10, 3), (17, 4), (8, 2), (1797, 2), (5, 8), (1, 1)]


@pytest.mark.parametrize("size,replicas", CASES)
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [False, True])
def test_index_sequences_equal_pytorchs(size, replicas, shuffle, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(replicas):
        ours = DistributedSampler(range(size), replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(
            range(size), replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last
        )
        for epoch in (0, 1, 7):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)


@pytest.mark.parametrize("seed", [0, 1, 2**32 + 5, 123456789012])
def test_randperm_equals_torch_randperm_with_a_seeded_generator(seed):
    torch = pytest.importorskip("torch")
    generator = torch.Generator()
    generator.manual_seed(seed)
    assert torch_randperm(300, seed) == torch.randperm(300, generator=generator).tolist()


def test_ranks_partition_the_dataset_without_drop_last():
    shares = [list(DistributedSampler(range(10), 3, rank, seed=1)) for rank in range(3)]
    assert all(len(share) == 4 for share in shares)  # padded to 12 = 3 * 4
    every = sorted(index for share in shares for index in share)
    assert set(every) == set(range(10)) and len(every) == 12  # two samples repeated to pad


def test_ranks_partition_the_dataset_with_drop_last():
    shares = [set(DistributedSampler(range(10), 3, rank, seed=1, drop_last=True)) for rank in range(3)]
    assert all(len(share) == 3 for share in shares)
    assert not (shares[0] & shares[1]) and not (shares[1] & shares[2]) and not (shares[0] & shares[2])


def test_set_epoch_changes_the_shuffle_and_is_reproducible():
    sampler = DistributedSampler(range(50), 2, 0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_works_as_a_dataloader_sampler():
    data = TensorDataset(gf.arange(12).float(), gf.arange(12))
    loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, 2, 1, shuffle=False))
    assert [y.tolist() for _, y in loader] == [[1, 3], [5, 7], [9, 11]]


def test_invalid_rank_and_missing_group_raise():
    with pytest.raises(ValueError, match="invalid rank 3"):
        DistributedSampler(range(4), 2, 3)
    with pytest.raises(DistributedError, match="init_process_group"):
        DistributedSampler(range(4))
