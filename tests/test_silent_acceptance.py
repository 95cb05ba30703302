"""Calls that PyTorch refuses or answers with empty results, which gradflow used to accept silently or crash on."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd.function import Function
from gradflow.errors import DtypeError, OutOfMemoryError, ShapeError


def test_view_never_copies_so_writes_reach_the_base():
    base = gf.zeros(2, 3)
    view = base.view(3, 2)
    view[0, 0] = 5.0
    assert base[0, 0].item() == 5.0
    with pytest.raises(ShapeError, match=r"view: .*reshape"):
        base.t().view(6)
    moved = base.t().reshape(6)  # reshape copies where it must, as in torch
    assert moved.shape == (6,)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_optimizer_refuses_state_of_the_wrong_shape(optimizer):
    def build(param):
        options = {"momentum": 0.9} if optimizer in ("SGD", "RMSprop") else {}
        return getattr(gf.optim, optimizer)([param], lr=0.1, **options)

    param = gf.nn.Parameter(gf.ones(2, 3))
    first = build(param)
    param.grad = gf.ones(2, 3)
    first.step()
    saved = first.state_dict()
    name = next(key for key, value in saved["state"][0].items() if key != "step" and isinstance(value, gf.Tensor))
    saved["state"][0][name] = gf.zeros(3)  # would broadcast in step()
    second = build(param)
    before = {key: dict(value) for key, value in second.state.items()}  # Adagrad makes its state up front
    with pytest.raises(ShapeError, match=rf"{optimizer}\.load_state_dict: state '{name}' .*\[3\].*\[2, 3\]"):
        second.load_state_dict(saved)
    assert {key: dict(value) for key, value in second.state.items()} == before  # nothing half-loaded


def test_optimizer_names_the_parameter_when_it_has_names():
    param = gf.nn.Parameter(gf.ones(2))
    optimizer = gf.optim.Adam([("fc.weight", param)])
    param.grad = gf.ones(2)
    optimizer.step()
    saved = optimizer.state_dict()
    saved["state"][0]["exp_avg_sq"] = gf.zeros(1)
    with pytest.raises(ShapeError, match="'fc.weight'"):
        gf.optim.Adam([("fc.weight", param)]).load_state_dict(saved)


@pytest.mark.parametrize("shape", [(0, 5, 8), (2, 0, 8), (0, 0, 8)], ids=["batch0", "seq0", "both0"])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_of_empty_batches_matches_torch(shape, need_weights):
    torch = pytest.importorskip("torch")
    ours = gf.nn.MultiheadAttention(8, 2, batch_first=True)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    x = gf.zeros(*shape, requires_grad=True)
    tx = torch.zeros(*shape, requires_grad=True)
    out, weights = ours(x, x, x, need_weights=need_weights)
    t_out, t_weights = theirs(tx, tx, tx, need_weights=need_weights)
    assert out.shape == tuple(t_out.shape)
    assert (weights is None) == (t_weights is None)
    if weights is not None:
        assert weights.shape == tuple(t_weights.shape)
    out.sum().backward()
    t_out.sum().backward()
    assert x.grad.shape == tuple(tx.grad.shape)
    np.testing.assert_array_equal(ours.in_proj_weight.grad.numpy(), theirs.in_proj_weight.grad.numpy())


@pytest.mark.parametrize("shape", [(0, 5, 8), (2, 0, 8)], ids=["batch0", "seq0"])
def test_transformer_encoder_layer_of_empty_batches_matches_torch(shape):
    torch = pytest.importorskip("torch")
    layer = gf.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0)
    t_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0)
    x = gf.zeros(*shape, requires_grad=True)
    tx = torch.zeros(*shape, requires_grad=True)
    mask = gf.zeros(shape[1], shape[1])
    out = layer(x, src_mask=mask)
    t_out = t_layer(tx, src_mask=torch.zeros(shape[1], shape[1]))
    assert out.shape == tuple(t_out.shape)
    out.sum().backward()
    t_out.sum().backward()
    assert x.grad.shape == tuple(tx.grad.shape)
    assert layer.linear1.weight.grad.shape == tuple(t_layer.linear1.weight.grad.shape)


@pytest.mark.parametrize("width, indices", [(0, [1, 2]), (3, []), (0, [])])
@pytest.mark.parametrize("scale", [False, True])
def test_embedding_backward_with_empty_rows_matches_torch(width, indices, scale):
    torch = pytest.importorskip("torch")
    layer = gf.nn.Embedding(5, width, scale_grad_by_freq=scale)
    t_layer = torch.nn.Embedding(5, width, scale_grad_by_freq=scale)
    out = layer(gf.tensor(indices, dtype=gf.int64))
    t_out = t_layer(torch.tensor(indices, dtype=torch.int64))
    out.sum().backward()
    t_out.sum().backward()
    assert out.shape == tuple(t_out.shape)
    np.testing.assert_array_equal(layer.weight.grad.numpy(), t_layer.weight.grad.numpy())


def test_a_memory_error_in_any_op_is_out_of_memory_error():
    class Allocates(Function):
        @staticmethod
        def forward(ctx, x):
            raise MemoryError("Unable to allocate 8.00 EiB for an array")

    with pytest.raises(OutOfMemoryError, match=r"allocates: out of memory on cpu .*smaller"):
        Allocates.apply(gf.ones(1))


def test_an_impossible_size_is_out_of_memory_error_naming_the_bytes():
    with pytest.raises(OutOfMemoryError, match=r"empty: a float64 tensor of shape \[4611686018427387904\] needs"):
        gf.empty(2**62, dtype=gf.float64)
    with pytest.raises(MemoryError):  # also what NumPy users catch
        gf.ones(2**40, 2**40)


@pytest.mark.parametrize("text", ["i4,(", "i4,(2,3)f4", "[(]", "float32 "])
def test_malformed_dtype_strings_are_dtype_errors(text):
    with pytest.raises(DtypeError, match="unsupported dtype"):
        gf.dtypes.to_dtype(text)


def test_to_accepts_what_torch_accepts():
    x = gf.ones(2)
    assert x.to(float).dtype is gf.float64  # Python float is float64 in torch's to()
    assert x.to(int).dtype is gf.int64
    assert x.to(bool).dtype is gf.bool
    assert x.to(None) is x
    assert x.to(None, gf.float16).dtype is gf.float16
    assert x.to("cpu", float).dtype is gf.float64
    with pytest.raises(gf.errors.ArgumentValueError, match=r"invalid device string 'float64'.*gradflow\.float64"):
        x.to("float64")
    with pytest.raises(gf.errors.ArgumentTypeError, match=r"pass gradflow\.float64"):
        x.to(np.float64)
