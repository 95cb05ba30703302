"""dropout, embedding and one_hot (and the Dropout and Embedding modules)."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.errors import DtypeError, IndexOutOfRangeError, ShapeError
from gradflow.nn import functional as F


def host(tensor):
    return tensor.detach().cpu().numpy()


# -- dropout -----------------------------------------------------------------------------------------------------


def test_dropout_zeroes_about_p_and_scales_the_rest(device):
    x = gf.ones(200, 100, device=device)
    out = host(F.dropout(x, p=0.3))
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.02, "about 1 - p of the elements survive"
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)


def test_dropout_is_reproducible_with_manual_seed_and_differs_without(device):
    x = gf.randn(50, device=device)
    gf.manual_seed(7)
    first = host(F.dropout(x, 0.5))
    gf.manual_seed(7)
    again = host(F.dropout(x, 0.5))
    later = host(F.dropout(x, 0.5))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, later)


def test_dropout_gradient_is_the_scaled_mask(device):
    x = gf.randn(40, dtype=gf.float64, device=device, requires_grad=True)
    out = F.dropout(x, 0.25)
    out.sum().backward()
    mask = host(out) / host(x)
    np.testing.assert_allclose(host(x.grad), mask, rtol=1e-12)
    assert set(np.round(np.unique(mask), 12)) <= {0.0, round(1 / 0.75, 12)}

    def seeded(a):
        gf.manual_seed(3)  # the same mask on every call of the finite-difference check
        return F.dropout(a, 0.5)

    assert gradcheck(seeded, (x[:6].detach().requires_grad_(),))
    assert gradgradcheck(seeded, (x[:4].detach().requires_grad_(),))


def test_dropout_eval_and_p0_are_the_identity_and_p1_gives_zeros(device):
    x = gf.randn(8, device=device, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    out = F.dropout(x, 1.0)
    np.testing.assert_array_equal(host(out), np.zeros(8))
    out.sum().backward()
    np.testing.assert_array_equal(host(x.grad), np.zeros(8))


def test_dropout_rejects_probabilities_outside_0_1():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"):
            F.dropout(gf.ones(2), p)
        with pytest.raises(ValueError, match="dropout probability"):
            nn.Dropout(p)


def test_dropout_inplace_writes_into_the_input(device):
    x = gf.ones(100, device=device)
    out = F.dropout(x, 0.5, inplace=True)
    assert out is x
    assert x._version == 1
    assert set(np.unique(host(x))) <= {0.0, 2.0} and (host(x) == 0).any()


def test_dropout_module_train_and_eval(device):
    torch = pytest.importorskip("torch")
    layer = nn.Dropout(0.2)
    assert repr(layer) == repr(torch.nn.Dropout(0.2))
    x = gf.ones(1000, device=device)
    assert (host(layer(x)) == 0).any()
    layer.eval()
    assert layer(x) is x


# -- embedding ---------------------------------------------------------------------------------------------------


def test_embedding_looks_up_rows_and_accumulates_repeated_indices(device):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((6, 3))
    indices = np.array([[1, 4, 1], [0, 1, 5]])
    weight = gf.tensor(table, device=device, requires_grad=True)
    out = F.embedding(gf.tensor(indices, device=device), weight)
    np.testing.assert_array_equal(host(out), table[indices])
    grad = rng.standard_normal(out.shape)
    out.backward(gf.tensor(grad, device=device))
    expected = np.zeros_like(table)
    np.add.at(expected, indices.reshape(-1), grad.reshape(-1, 3))
    np.testing.assert_allclose(host(weight.grad), expected, rtol=1e-12)
    assert host(weight.grad)[1].any() and not host(weight.grad)[2].any()


def test_embedding_padding_idx_row_gets_no_gradient(device):
    weight = gf.randn(5, 2, dtype=gf.float64, device=device, requires_grad=True)
    indices = gf.tensor([0, 3, 3, 4], device=device)
    out = F.embedding(indices, weight, padding_idx=-2)  # -2 is row 3
    np.testing.assert_array_equal(host(out)[1], host(weight)[3]), "the padding row is still looked up"
    out.sum().backward()
    np.testing.assert_array_equal(host(weight.grad), [[1, 1], [0, 0], [0, 0], [0, 0], [1, 1]])


def test_embedding_matches_pytorch_with_scale_grad_by_freq_and_max_norm(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    table = rng.standard_normal((7, 4)) * 2
    indices = np.array([[2, 2, 5], [1, 2, 6]])
    grad = rng.standard_normal((2, 3, 4))
    options = {"padding_idx": 6, "max_norm": 1.5, "norm_type": 3.0, "scale_grad_by_freq": True}
    weight = gf.tensor(table, device=device, requires_grad=True)
    out = F.embedding(gf.tensor(indices, device=device), weight, **options)
    out.backward(gf.tensor(grad, device=device))
    tweight = torch.tensor(table, requires_grad=True)
    tout = torch.nn.functional.embedding(torch.tensor(indices), tweight, **options)
    tout.backward(torch.tensor(grad))
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(host(weight), tweight.detach().numpy(), rtol=1e-12)  # renormalised in place
    np.testing.assert_allclose(host(weight.grad), tweight.grad.numpy(), rtol=1e-12)
    assert weight._version == 1


def test_embedding_gradcheck_and_gradgradcheck(device):
    weight = gf.randn(4, 2, dtype=gf.float64, device=device, requires_grad=True)
    indices = gf.tensor([[0, 2], [2, 3]], device=device)
    assert gradcheck(lambda w: F.embedding(indices, w) ** 2, (weight,))
    assert gradgradcheck(lambda w: F.embedding(indices, w) ** 2, (weight,))
    # padding_idx and scale_grad_by_freq change the gradient on purpose (it is no longer the derivative),
    # but the double backward must still be the derivative of that backward.
    assert gradgradcheck(lambda w: F.embedding(indices, w, padding_idx=2, scale_grad_by_freq=True) ** 2, (weight,))


def test_embedding_errors_name_index_and_table_size(device):
    weight = gf.randn(3, 2, device=device)
    with pytest.raises(IndexOutOfRangeError, match=r"index 5 .*3 embeddings"):
        F.embedding(gf.tensor([0, 5], device=device), weight)
    with pytest.raises(IndexError, match=r"index -1"):
        F.embedding(gf.tensor([-1], device=device), weight)
    with pytest.raises(DtypeError, match="int64 or int32"):
        F.embedding(gf.tensor([1.0], device=device), weight)
    with pytest.raises(IndexOutOfRangeError, match="Padding_idx must be within num_embeddings"):
        F.embedding(gf.tensor([1], device=device), weight, padding_idx=3)
    with pytest.raises(ValueError, match="sparse"):
        F.embedding(gf.tensor([1], device=device), weight, sparse=True)


def test_embedding_module_init_padding_and_repr(device):
    torch = pytest.importorskip("torch")
    layer = nn.Embedding(200, 50, padding_idx=3, device=device)
    values = host(layer.weight)
    np.testing.assert_array_equal(values[3], np.zeros(50))
    assert abs(values.mean()) < 0.05 and abs(values.std() - 1) < 0.05, "initialised from N(0, 1)"
    options = {"padding_idx": 1, "max_norm": 2.0, "norm_type": 3.0, "scale_grad_by_freq": True}
    assert repr(nn.Embedding(4, 2, **options)) == repr(torch.nn.Embedding(4, 2, **options))
    assert nn.Embedding(4, 2, padding_idx=-1).padding_idx == 3
    out = layer(gf.tensor([3, 4], device=device))
    out.sum().backward()
    assert not host(layer.weight.grad)[3].any() and host(layer.weight.grad)[4].all()


def test_embedding_from_pretrained_shares_and_freezes(device):
    table = gf.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    assert frozen(gf.tensor([1, 0], device=device)).tolist() == [[3.0, 4.0], [1.0, 2.0]]
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    assert host(trainable.weight)[0].tolist() == [1.0, 2.0], "from_pretrained does not zero the padding row"
    with pytest.raises(ShapeError, match="2-dimensional"):
        nn.Embedding.from_pretrained(gf.ones(3))
    with pytest.raises(ShapeError, match="does not match num_embeddings"):
        nn.Embedding(3, 2, _weight=gf.ones(2, 2))


# -- one_hot -----------------------------------------------------------------------------------------------------


def test_one_hot_matches_numpy_and_infers_num_classes(device):
    labels = np.array([[0, 3], [2, 1]])
    out = F.one_hot(gf.tensor(labels, device=device))
    assert out.dtype is gf.int64 and out.shape == (2, 2, 4)
    np.testing.assert_array_equal(host(out), np.eye(4, dtype=np.int64)[labels])
    assert F.one_hot(gf.tensor([1], device=device), 5).tolist() == [[0, 1, 0, 0, 0]]
    assert F.one_hot(gf.tensor([], dtype=gf.int64, device=device), 3).shape == (0, 3)


def test_one_hot_errors_follow_pytorch(device):
    with pytest.raises(DtypeError, match="LongTensor"):
        F.one_hot(gf.tensor([1], dtype=gf.int32, device=device), 3)
    with pytest.raises(IndexOutOfRangeError, match="Class values must be non-negative"):
        F.one_hot(gf.tensor([-1], device=device))
    with pytest.raises(IndexOutOfRangeError, match="Class values must be smaller than num_classes"):
        F.one_hot(gf.tensor([3], device=device), 3)
    with pytest.raises(ValueError, match="Can not infer total number of classes from empty tensor"):
        F.one_hot(gf.tensor([], dtype=gf.int64, device=device))
