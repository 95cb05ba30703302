"""scaled_dot_product_attention, MultiheadAttention and the Transformer encoder, against NumPy and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import nn
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.errors import DtypeError, ShapeError
from gradflow.nn import functional as F


def host(tensor):
    return tensor.detach().cpu().numpy()


def numpy_sdpa(q, k, v, mask=None, is_causal=False, scale=None):
    scores = q @ np.swapaxes(k, -1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        mask = np.tril(np.ones((q.shape[-2], k.shape[-2]), dtype=bool))
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    peak = scores.max(-1, keepdims=True)
    exps = np.exp(scores - np.where(np.isfinite(peak), peak, 0))
    sums = exps.sum(-1, keepdims=True)
    return (exps / np.where(sums == 0, 1, sums)) @ v  # fully masked rows attend to nothing


# -- scaled_dot_product_attention --------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    batch=st.lists(st.integers(1, 2), min_size=0, max_size=2),
    sizes=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
    mask_kind=st.sampled_from(["none", "bool", "float", "causal"]),
    seed=st.integers(0, 2**16),
)
def test_sdpa_matches_numpy_reference(batch, sizes, mask_kind, seed):
    length, source, width, value_width = sizes
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((*batch, length, width))
    k = rng.standard_normal((*batch, source, width))
    v = rng.standard_normal((*batch, source, value_width))
    mask = None
    if mask_kind == "bool":
        mask = rng.random((length, source)) > 0.4  # may mask whole rows: those give zeros
    elif mask_kind == "float":
        mask = rng.standard_normal((length, source))
    out = F.scaled_dot_product_attention(
        gf.tensor(q),
        gf.tensor(k),
        gf.tensor(v),
        attn_mask=None if mask is None else gf.tensor(mask),
        is_causal=mask_kind == "causal",
        scale=0.7,
    )
    expected = numpy_sdpa(q, k, v, mask, mask_kind == "causal", scale=0.7)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask_kind", ["bool", "float", "causal"])
def test_sdpa_forward_and_grads_match_pytorch(device, mask_kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 6, 2))
    mask = None
    if mask_kind == "bool":
        mask = rng.random((2, 1, 4, 6)) > 0.5
        mask[0, 0, 1] = False  # one fully masked row: zeros, not NaN, in both
    elif mask_kind == "float":
        mask = rng.standard_normal((4, 6))
    mine = [gf.tensor(a, device=device, requires_grad=True) for a in (q, k, v)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    causal = mask_kind == "causal"
    out = F.scaled_dot_product_attention(
        *mine, attn_mask=None if mask is None else gf.tensor(mask, device=device), is_causal=causal
    )
    tout = torch.nn.functional.scaled_dot_product_attention(
        *theirs, attn_mask=None if mask is None else torch.tensor(mask), is_causal=causal
    )
    grad = rng.standard_normal(out.shape)
    out.backward(gf.tensor(grad, device=device))
    tout.backward(torch.tensor(grad))
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_sdpa_gqa_matches_pytorch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((1, 4, 3, 2)), rng.standard_normal((1, 2, 5, 2)), rng.standard_normal((1, 2, 5, 2))
    out = F.scaled_dot_product_attention(*(gf.tensor(a, device=device) for a in (q, k, v)), enable_gqa=True)
    expected = torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)), enable_gqa=True)
    np.testing.assert_allclose(host(out), expected.numpy(), rtol=1e-10)


def test_sdpa_gradcheck_and_gradgradcheck(device):
    q = gf.randn(2, 3, 2, dtype=gf.float64, device=device, requires_grad=True)
    k = gf.randn(2, 3, 2, dtype=gf.float64, device=device, requires_grad=True)
    v = gf.randn(2, 3, 2, dtype=gf.float64, device=device, requires_grad=True)
    mask = gf.tensor([[True, False, False], [False, False, False], [True, True, True]], device=device)
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=mask), (q, k, v))
    assert gradgradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), (q, k, v))


def test_sdpa_dropout_is_seeded_and_p1_gives_zeros(device):
    q = gf.randn(2, 4, 3, device=device)
    gf.manual_seed(5)
    first = host(F.scaled_dot_product_attention(q, q, q, dropout_p=0.5))
    gf.manual_seed(5)
    np.testing.assert_array_equal(host(F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)), first)
    assert not np.allclose(first, host(F.scaled_dot_product_attention(q, q, q)))
    np.testing.assert_array_equal(host(F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)), np.zeros((2, 4, 3)))


def test_sdpa_errors_name_the_problem():
    x = gf.randn(2, 3, 4)
    with pytest.raises(ShapeError, match="Explicit attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=gf.ones(3, 3, dtype=gf.bool), is_causal=True)
    with pytest.raises(DtypeError, match="same dtype"):
        F.scaled_dot_product_attention(x, x, x.double())
    with pytest.raises(ShapeError, match=r"key \[2, 3, 5\]"):
        F.scaled_dot_product_attention(x, gf.randn(2, 3, 5), x)
    with pytest.raises(DtypeError, match="attn_mask dtype"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=gf.ones(3, 3, dtype=gf.int64))
    with pytest.raises(ShapeError, match="cannot be broadcast"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=gf.ones(3, 2))
    with pytest.raises(ShapeError, match="at least 2 dimensional"):
        F.scaled_dot_product_attention(gf.randn(4), gf.randn(4), gf.randn(4))


# -- MultiheadAttention ------------------------------------------------------------------------------------------


def copy_from_torch(torch_module, module, device):
    """Copy a PyTorch module's parameters and buffers into ours by name (the names must agree exactly)."""
    theirs = torch_module.state_dict()
    assert sorted(theirs) == sorted(module.state_dict())
    module.load_state_dict({name: gf.tensor(value.numpy(), device=device) for name, value in theirs.items()})


MHA_OPTIONS = [{}, {"kdim": 3, "vdim": 5}, {"add_bias_kv": True, "add_zero_attn": True}, {"bias": False}]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("options", MHA_OPTIONS, ids=["plain", "kdim_vdim", "bias_kv_zero_attn", "no_bias"])
def test_multihead_attention_matches_pytorch_with_masks(device, batch_first, options):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first, dtype=torch.float64, **options)
    layer = nn.MultiheadAttention(8, 2, batch_first=batch_first, dtype=gf.float64, device=device, **options)
    copy_from_torch(reference, layer, device)
    rng = np.random.default_rng(3)
    length, source, batch = 4, 5, 3

    def sample(seq, width):
        return rng.standard_normal((batch, seq, width) if batch_first else (seq, batch, width))

    q, k, v = sample(length, 8), sample(source, options.get("kdim", 8)), sample(source, options.get("vdim", 8))
    padding = np.zeros((batch, source), dtype=bool)
    padding[0, -2:] = True
    attn_mask = rng.random((length, source)) > 0.7
    attn_mask[:, 0] = False
    mine = [gf.tensor(a, device=device, requires_grad=True) for a in (q, k, v)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    for need_weights, average in ((True, True), (True, False), (False, True)):
        out, weights = layer(
            *mine,
            key_padding_mask=gf.tensor(padding, device=device),
            attn_mask=gf.tensor(attn_mask, device=device),
            need_weights=need_weights,
            average_attn_weights=average,
        )
        tout, tweights = reference(
            *theirs,
            key_padding_mask=torch.tensor(padding),
            attn_mask=torch.tensor(attn_mask),
            need_weights=need_weights,
            average_attn_weights=average,
        )
        np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
        if need_weights:
            np.testing.assert_allclose(host(weights), tweights.detach().numpy(), rtol=1e-9, atol=1e-12)
        else:
            assert weights is None and tweights is None
    grad = rng.standard_normal(out.shape)
    out.backward(gf.tensor(grad, device=device))
    tout.backward(torch.tensor(grad))
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-8, atol=1e-10)
    reference_params = dict(reference.named_parameters())
    for name, parameter in layer.named_parameters():
        np.testing.assert_allclose(host(parameter.grad), reference_params[name].grad.numpy(), rtol=1e-8, atol=1e-10)


def test_multihead_attention_float_and_3d_masks_unbatched_and_causal_hint(device):
    torch = pytest.importorskip("torch")
    reference = torch.nn.MultiheadAttention(4, 2, dtype=torch.float64)
    layer = nn.MultiheadAttention(4, 2, dtype=gf.float64, device=device)
    copy_from_torch(reference, layer, device)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 4))
    float_mask = rng.standard_normal((2 * 2, 3, 3))
    out, weights = layer(*(gf.tensor(x, device=device),) * 3, attn_mask=gf.tensor(float_mask, device=device))
    tout, tweights = reference(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(float_mask))
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(host(weights), tweights.detach().numpy(), rtol=1e-10)
    unbatched = x[:, 0]
    out, weights = layer(*(gf.tensor(unbatched, device=device),) * 3)
    tout, tweights = reference(*(torch.tensor(unbatched),) * 3)
    assert out.shape == (3, 4) and weights.shape == (3, 3)
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-10)
    causal = np.triu(np.ones((3, 3), dtype=bool), 1)
    out, _ = layer(*(gf.tensor(x, device=device),) * 3, attn_mask=gf.tensor(causal, device=device), need_weights=False)
    tout, _ = reference(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(causal), need_weights=False)
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-10)
    hinted, _ = layer(
        *(gf.tensor(x, device=device),) * 3,
        attn_mask=gf.tensor(causal, device=device),
        need_weights=False,
        is_causal=True,
    )
    np.testing.assert_allclose(host(hinted), tout.detach().numpy(), rtol=1e-10)


def test_multihead_attention_parameters_and_init_follow_pytorch():
    torch = pytest.importorskip("torch")
    layer = nn.MultiheadAttention(6, 3)
    reference = torch.nn.MultiheadAttention(6, 3)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in reference.named_parameters()]
    assert layer.in_proj_weight.shape == (18, 6) and layer.head_dim == 2
    bound = np.sqrt(6 / (6 + 18))  # xavier_uniform_ on (3E, E)
    weight = layer.in_proj_weight.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.8 * bound
    assert not layer.in_proj_bias.detach().numpy().any() and not layer.out_proj.bias.detach().numpy().any()
    separate = nn.MultiheadAttention(6, 3, kdim=2, vdim=4)
    assert separate.in_proj_weight is None and separate.k_proj_weight.shape == (6, 2)
    assert separate.v_proj_weight.shape == (6, 4)


def test_multihead_attention_errors():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(5, 2)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.MultiheadAttention(0, 2)
    layer = nn.MultiheadAttention(4, 2)
    x = gf.randn(3, 2, 4)
    with pytest.raises(ShapeError, match=r"key_padding_mask of shape \[2, 3\]"):
        layer(x, x, x, key_padding_mask=gf.zeros(2, 4, dtype=gf.bool))
    with pytest.raises(ShapeError, match=r"2D attn_mask is \[2, 2\], but should be \[3, 3\]"):
        layer(x, x, x, attn_mask=gf.zeros(2, 2, dtype=gf.bool))
    with pytest.raises(ShapeError, match="Need attn_mask if specifying the is_causal hint"):
        layer(x, x, x, is_causal=True)
    with pytest.raises(ShapeError, match="was expecting embedding dimension of 4, but got 3"):
        layer(gf.randn(3, 2, 3), x, x)


def test_multihead_attention_dropout_only_in_training(device):
    layer = nn.MultiheadAttention(4, 2, dropout=0.5, device=device)
    x = gf.randn(3, 2, 4, device=device)
    gf.manual_seed(1)
    first, _ = layer(x, x, x)
    gf.manual_seed(1)
    again, _ = layer(x, x, x)
    np.testing.assert_array_equal(host(first), host(again))
    layer.eval()
    evaluated, _ = layer(x, x, x)
    assert not np.allclose(host(first), host(evaluated))
    np.testing.assert_array_equal(host(layer(x, x, x)[0]), host(evaluated))


# -- Transformer encoder -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_matches_pytorch_forward_and_grads(device, batch_first, norm_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    activation = "gelu" if norm_first else "relu"
    options = {"dropout": 0.0, "activation": activation, "batch_first": batch_first, "norm_first": norm_first}
    reference_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dtype=torch.float64, **options)
    reference = torch.nn.TransformerEncoder(
        reference_layer, 2, norm=torch.nn.LayerNorm(8, dtype=torch.float64), enable_nested_tensor=False
    )
    encoder = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16, dtype=gf.float64, device=device, **options),
        2,
        norm=nn.LayerNorm(8, dtype=gf.float64, device=device),
    )
    copy_from_torch(reference, encoder, device)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 8) if batch_first else (5, 3, 8))
    padding = np.zeros((3, 5), dtype=bool)
    padding[1, -2:] = True
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    mine = gf.tensor(x, device=device, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out = encoder(mine, mask=gf.tensor(causal, device=device), src_key_padding_mask=gf.tensor(padding, device=device))
    tout = reference(theirs, mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(padding))
    grad = rng.standard_normal(out.shape)
    out.backward(gf.tensor(grad, device=device))
    tout.backward(torch.tensor(grad))
    np.testing.assert_allclose(host(out), tout.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(host(mine.grad), theirs.grad.numpy(), rtol=1e-8, atol=1e-10)
    reference_params = dict(reference.named_parameters())
    for name, parameter in encoder.named_parameters():
        np.testing.assert_allclose(host(parameter.grad), reference_params[name].grad.numpy(), rtol=1e-7, atol=1e-9)


def test_transformer_encoder_layer_eval_matches_pytorch_and_callable_activation(device):
    torch = pytest.importorskip("torch")
    reference = torch.nn.TransformerEncoderLayer(4, 2, 8, batch_first=True).eval()
    layer = nn.TransformerEncoderLayer(4, 2, 8, batch_first=True, device=device).eval()
    assert [n for n, _ in layer.named_modules()] == [n for n, _ in reference.named_modules()]
    copy_from_torch(reference, layer, device)
    x = np.random.default_rng(6).standard_normal((2, 3, 4)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()  # PyTorch's fused eval path
    np.testing.assert_allclose(host(layer(gf.tensor(x, device=device))), expected, rtol=1e-4, atol=1e-5)
    squared = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, activation=lambda t: t * t)
    assert squared(gf.randn(3, 2, 4)).shape == (3, 2, 4)
    with pytest.raises(ValueError, match="activation should be relu/gelu, not 'tanh'"):
        nn.TransformerEncoderLayer(4, 2, activation="tanh")


def test_mismatched_mask_types_warn_as_in_pytorch_and_causal_float_mask_is_detected():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), 1).eval()
    x = gf.randn(3, 2, 4)
    float_causal = gf.full((3, 3), float("-inf")).triu(1)
    padding = gf.zeros(2, 3, dtype=gf.bool)
    with pytest.warns(UserWarning, match="mismatched src_key_padding_mask and mask is deprecated"):
        warned = encoder(x, mask=float_causal, src_key_padding_mask=padding)
    np.testing.assert_allclose(host(warned), host(encoder(x, mask=float_causal)), rtol=1e-6)
    bool_causal = gf.ones(3, 3, dtype=gf.bool).triu(1)
    np.testing.assert_allclose(host(encoder(x, mask=bool_causal)), host(warned), rtol=1e-6)
    assert not np.allclose(host(encoder(x)), host(warned))


def test_transformer_encoder_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(4, 2, 8)
    layer.norm1.weight.grad = gf.ones(4)
    encoder = nn.TransformerEncoder(layer, 3)
    assert encoder.layers[2].norm1.weight.grad is None, "deepcopy does not copy Parameter grads (as in PyTorch)"
    assert layer.norm1.weight.grad.tolist() == [1.0] * 4
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and first.linear1.weight is not second.linear1.weight
    np.testing.assert_array_equal(first.linear1.weight.detach().numpy(), layer.linear1.weight.detach().numpy())
    with gf.no_grad():
        first.linear1.weight.fill_(0.0)
    assert second.linear1.weight.detach().numpy().any() and layer.linear1.weight.detach().numpy().any()
    assert len(list(encoder.parameters())) == 3 * len(list(layer.parameters()))
    assert first.linear1.weight.requires_grad


def test_transformer_encoder_layers_start_without_grads():
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0)
    layer(gf.randn(3, 2, 4)).sum().backward()
    encoder = nn.TransformerEncoder(layer, num_layers=2)
    assert all(parameter.grad is None for parameter in encoder.parameters())
