"""gradflow.utils.data: datasets, random_split, samplers, collation and the DataLoader."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.errors import IndexOutOfRangeError, ShapeError
from gradflow.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    default_convert,
    random_split,
)
from gradflow.utils.data import dataloader as dataloader_module


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return index * index


def _host(value):
    """Batches as plain Python/NumPy values, for comparisons."""
    if isinstance(value, gf.Tensor):
        return (value.dtype.name, value.detach().cpu().numpy().tolist())
    if isinstance(value, dict):
        return {key: _host(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_host(item) for item in value)
    return value


def _epoch(loader):
    return [_host(batch) for batch in loader]


# -- datasets ----------------------------------------------------------------------------------------


def test_tensor_dataset_rows_and_length():
    x, y = gf.arange(12).reshape(4, 3), gf.tensor([1.0, 2.0, 3.0, 4.0])
    dataset = TensorDataset(x, y)
    assert len(dataset) == 4 and dataset.tensors == (x, y)
    row, target = dataset[2]
    assert row.tolist() == [6, 7, 8] and target.item() == 3.0


def test_tensor_dataset_size_mismatch_names_the_sizes():
    with pytest.raises(ShapeError, match=r"first dimensions are \[3, 4\]"):
        TensorDataset(gf.zeros(3, 2), gf.zeros(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ShapeError, match="0-d tensor"):
        TensorDataset(gf.tensor(1.0))
    with pytest.raises(TypeError, match="argument 1 is a list"):
        TensorDataset(gf.zeros(2), [1, 2])


def test_base_dataset_getitem_is_abstract_and_add_concatenates():
    with pytest.raises(NotImplementedError, match="must implement __getitem__"):
        Dataset()[0]
    joined = Squares(2) + Squares(3)
    assert isinstance(joined, ConcatDataset) and len(joined) == 5
    assert [joined[i] for i in range(5)] == [0, 1, 0, 1, 4]


def test_concat_dataset_indexing_matches_pytorch():
    joined = ConcatDataset([range(3), range(10, 14)])
    assert joined.cumulative_sizes == [3, 7] and len(joined) == 7
    assert [joined[i] for i in range(7)] == [0, 1, 2, 10, 11, 12, 13]
    assert joined[-1] == 13 and joined[-7] == 0
    with pytest.raises(ValueError, match="should not exceed dataset length 7"):
        joined[-8]
    with pytest.raises(IndexOutOfRangeError, match="index 7 is out of range"):
        joined[7]
    with pytest.raises(ValueError, match="empty iterable"):
        ConcatDataset([])


def test_subset_maps_indices_and_fetches_lists():
    subset = Subset(Squares(10), [5, 2, 7])
    assert len(subset) == 3 and subset[0] == 25 and subset[-1] == 49
    assert subset.__getitems__([2, 0]) == [49, 25]
    nested = Subset(Subset(range(20, 30), [9, 8, 7]), [2, 0])
    assert nested.__getitems__([0, 1]) == [27, 29]


# -- random_split ------------------------------------------------------------------------------------


def test_random_split_is_a_disjoint_cover_reproducible_by_seed():
    first = random_split(range(20), [5, 15], generator=3)
    again = random_split(range(20), [5, 15], generator=np.random.default_rng(3))
    assert [len(part) for part in first] == [5, 15]
    assert sorted(first[0].indices + first[1].indices) == list(range(20))
    assert first[0].indices == again[0].indices
    gf.manual_seed(11)
    seeded = random_split(range(20), [10, 10])
    gf.manual_seed(11)
    assert random_split(range(20), [10, 10])[0].indices == seeded[0].indices


@pytest.mark.parametrize(
    "n, fractions, expected",
    [(10, [0.33, 0.33, 0.34], [4, 3, 3]), (11, [0.5, 0.5], [6, 5]), (7, [0.1, 0.9], [1, 6]), (5, [1.0], [5])],
)
def test_random_split_fractions_follow_pytorch_rounding(n, fractions, expected):
    assert [len(part) for part in random_split(range(n), fractions, generator=0)] == expected


def test_random_split_fractions_match_torch():
    torch = pytest.importorskip("torch")
    for n, fractions in [(10, [0.33, 0.33, 0.34]), (13, [0.25, 0.25, 0.5]), (3, [0.2, 0.8])]:
        ours = [len(part) for part in random_split(range(n), fractions, generator=0)]
        theirs = [len(part) for part in torch.utils.data.random_split(range(n), fractions)]
        assert ours == theirs


def test_random_split_rejects_bad_lengths_and_warns_on_empty_splits():
    with pytest.raises(ValueError, match=r"sum of input lengths \(6\) does not equal .* \(10\)"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="fraction at index 0 is 1.5"):
        random_split(range(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="split at index 1 is 0"):
        parts = random_split(range(2), [0.9, 0.1], generator=0)
    assert [len(part) for part in parts] == [2, 0]
    with pytest.raises(TypeError, match="generator must be None, an int seed"):
        random_split(range(4), [2, 2], generator="seed")


# -- samplers ----------------------------------------------------------------------------------------


def test_sequential_and_random_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    sampler = RandomSampler(range(50), generator=0)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(50)) and first != second  # a fresh permutation each epoch
    assert list(RandomSampler(range(50), generator=0)) == first
    assert len(RandomSampler(range(5), num_samples=12)) == 12
    chained = list(RandomSampler(range(5), num_samples=12, generator=1))
    assert sorted(chained[:10]) == sorted(list(range(5)) * 2) and len(set(chained[10:])) == 2
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=40, generator=2))
    assert len(drawn) == 40 and set(drawn) == {0, 1, 2}


def test_sampler_arguments_are_validated():
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), batch_size=0, drop_last=False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(3), batch_size=2, drop_last=None)


def test_subset_random_sampler_permutes_the_given_indices():
    drawn = list(SubsetRandomSampler([4, 8, 15, 16], generator=0))
    assert sorted(drawn) == [4, 8, 15, 16] and len(SubsetRandomSampler([1, 2])) == 2


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 30), batch_size=st.integers(1, 8), drop_last=st.booleans())
def test_batch_sampler_and_loader_lengths(n, batch_size, drop_last):
    batches = list(BatchSampler(range(n), batch_size, drop_last))
    expected = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(batches) == expected == len(BatchSampler(range(n), batch_size, drop_last))
    assert [i for batch in batches for i in batch] == list(range(expected * batch_size if drop_last else n))
    assert len(DataLoader(Squares(n), batch_size=batch_size, drop_last=drop_last)) == expected


# -- collation ---------------------------------------------------------------------------------------


def test_default_collate_numbers_follow_pytorch_dtypes():
    assert _host(default_collate([1, 2])) == ("int64", [1, 2])
    assert _host(default_collate([1.5, 2.0])) == ("float64", [1.5, 2.0])
    assert _host(default_collate([True, False])) == ("bool", [True, False])
    assert _host(default_collate([np.float32(1), np.float32(2)])) == ("float32", [1.0, 2.0])
    assert default_collate(["a", "b"]) == ["a", "b"]


def test_default_collate_stacks_tensors_and_arrays_and_recurses():
    stacked = default_collate([gf.tensor([1.0, 2.0]), gf.tensor([3.0, 4.0])])
    assert _host(stacked) == ("float32", [[1.0, 2.0], [3.0, 4.0]])
    arrays = default_collate([np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)])
    assert _host(arrays) == ("int32", [[1, 2], [3, 4]])
    batch = default_collate([{"x": (1, "a"), "y": [0.5]}, {"x": (2, "b"), "y": [1.5]}])
    assert _host(batch) == {"x": [("int64", [1, 2]), ["a", "b"]], "y": [("float64", [0.5, 1.5])]}
    Point = collections.namedtuple("Point", "x y")
    points = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(points, Point) and _host(points.x) == ("int64", [1, 3])


def test_default_collate_errors():
    with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers"):
        default_collate([None, None])
    with pytest.raises(TypeError, match="batch must contain"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match="should be of equal size"):
        default_collate([[1, 2], [3]])


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    samples = [
        {"image": np.full((2, 2), i, dtype=np.float32), "label": i, "weight": 0.5 * i, "flag": i % 2 == 0}
        for i in range(3)
    ]
    ours, theirs = default_collate(samples), torch.utils.data.default_collate(samples)
    for key in theirs:
        assert ours[key].dtype.name == str(theirs[key].dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy())


def test_default_convert_turns_arrays_into_tensors_only():
    converted = default_convert({"a": np.arange(3), "b": (np.float64(2.5), "text"), "c": 7})
    assert _host(converted) == {"a": ("int64", [0, 1, 2]), "b": [("float64", 2.5), "text"], "c": 7}


# -- DataLoader ----------------------------------------------------------------------------------


def test_loader_yields_sequential_batches_with_a_short_last_one():
    loader = DataLoader(Squares(5), batch_size=2)
    assert _epoch(loader) == [("int64", [0, 1]), ("int64", [4, 9]), ("int64", [16])]
    assert _epoch(DataLoader(Squares(5), batch_size=2, drop_last=True)) == [("int64", [0, 1]), ("int64", [4, 9])]
    assert len(loader) == 3 and loader.batch_size == 2 and isinstance(loader.sampler, SequentialSampler)


def test_shuffle_is_reproducible_from_manual_seed_and_from_a_generator():
    gf.manual_seed(5)
    first = _epoch(DataLoader(Squares(20), batch_size=4, shuffle=True))
    gf.manual_seed(5)
    assert _epoch(DataLoader(Squares(20), batch_size=4, shuffle=True)) == first
    seen = sorted(value for _, batch in first for value in batch)
    assert seen == [i * i for i in range(20)] and seen != [value for _, batch in first for value in batch]
    loader = DataLoader(Squares(20), batch_size=4, shuffle=True, generator=9)
    epochs = [_epoch(loader), _epoch(loader)]
    assert epochs[0] != epochs[1]
    assert [_epoch(same := DataLoader(Squares(20), batch_size=4, shuffle=True, generator=9)), _epoch(same)] == epochs


def test_batch_size_none_yields_converted_samples():
    dataset = TensorDataset(gf.arange(3), gf.arange(3) * 2)
    samples = list(DataLoader(dataset, batch_size=None))
    assert len(samples) == 3 and _host(samples[2]) == [("int64", 2), ("int64", 4)]
    assert len(DataLoader(dataset, batch_size=None)) == 3


def test_custom_collate_fn_sampler_and_batch_sampler():
    loader = DataLoader(Squares(6), batch_size=3, collate_fn=lambda batch: sum(batch))
    assert list(loader) == [5, 50]
    assert _epoch(DataLoader(Squares(6), batch_size=2, sampler=[5, 0, 1])) == [("int64", [25, 0]), ("int64", [1])]
    by_batches = DataLoader(Squares(6), batch_sampler=[[4], [1, 2]])
    assert _epoch(by_batches) == [("int64", [16]), ("int64", [1, 4])] and len(by_batches) == 2


def test_loader_argument_errors_match_pytorch():
    with pytest.raises(ValueError, match="num_workers=2 is not supported.*num_workers=0"):
        DataLoader(Squares(3), num_workers=2)
    with pytest.raises(ValueError, match="should be non-negative"):
        DataLoader(Squares(3), num_workers=-1)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(Squares(3), sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(Squares(3), batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(Squares(3), batch_size=None, drop_last=True)
    with pytest.raises(TypeError, match="generator must be"):
        DataLoader(Squares(3), shuffle=True, generator=1.5)
    loader = DataLoader(Squares(3))
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 2


def test_pin_memory_says_it_has_no_effect():
    with pytest.warns(UserWarning, match="pin_memory=True has no effect"):
        loader = DataLoader(Squares(2), pin_memory=True)
    assert _epoch(loader) == [("int64", [0]), ("int64", [1])]


def test_device_moves_every_tensor_of_the_batch(device):
    dataset = [{"x": gf.ones(2), "pair": (gf.zeros(1), 3)} for _ in range(4)]
    for batch in DataLoader(dataset, batch_size=2, device=device):
        assert batch["x"].device == device and batch["pair"][0].device == device
        assert batch["pair"][1].device == device and batch["x"].shape == (2, 2)


# -- the TensorDataset fast path ---------------------------------------------------------------------


def _generic(batch):
    return default_collate(batch)  # a different function object, so the loader takes the per-sample path


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 17),
    batch_size=st.integers(1, 6),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 100),
)
def test_tensor_dataset_fast_path_matches_the_generic_path(n, batch_size, shuffle, drop_last, seed):
    features = gf.tensor(np.random.default_rng(seed).standard_normal((n, 3)))
    dataset = TensorDataset(features, gf.arange(n), gf.arange(n) % 2 == 0)
    options = dict(batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    fast = _epoch(DataLoader(dataset, generator=seed, **options))
    generic = _epoch(DataLoader(dataset, generator=seed, collate_fn=_generic, **options))
    assert fast == generic and all(isinstance(batch, list) for batch in fast)


def test_fast_path_gathers_without_stacking_rows(monkeypatch):
    dataset = TensorDataset(gf.arange(10).reshape(5, 2), gf.arange(5))
    train, _ = random_split(dataset, [3, 2], generator=0)
    expected_plain = _epoch(DataLoader(dataset, batch_size=2, collate_fn=_generic))
    expected_subset = _epoch(DataLoader(train, batch_size=2, collate_fn=_generic))

    def no_stack(*args, **kwargs):
        raise AssertionError("the fast path must not stack samples")

    monkeypatch.setattr(dataloader_module, "stack", no_stack)
    assert _epoch(DataLoader(dataset, batch_size=2)) == expected_plain
    assert _epoch(DataLoader(train, batch_size=2)) == expected_subset


def test_tensor_dataset_subclass_with_its_own_getitem_is_respected():
    class Doubled(TensorDataset):
        def __getitem__(self, index):
            return tuple(tensor[index] * 2 for tensor in self.tensors)

    assert _epoch(DataLoader(Doubled(gf.arange(3)), batch_size=3)) == [[("int64", [0, 2, 4])]]


def test_fast_path_on_the_tensors_device(device):
    dataset = TensorDataset(gf.arange(12, device=device).reshape(6, 2).float(), gf.arange(6, device=device))
    fast = list(DataLoader(dataset, batch_size=4, shuffle=True, generator=2))
    generic = list(DataLoader(dataset, batch_size=4, shuffle=True, generator=2, collate_fn=_generic))
    assert all(tensor.device == device for batch in fast for tensor in batch)
    assert [_host(batch) for batch in fast] == [_host(batch) for batch in generic]
