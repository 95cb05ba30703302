"""Second derivatives of the fused ops match PyTorch's: Hessian-vector products in float64.

Each fused op (every fused activation in tests/opinfo/activation.py's ``FUSED``, softmax, log_softmax,
scaled-dot-product attention with and without masks, multi-head attention (also with
respect to its projection weights), cross_entropy with weights,
ignore_index, label smoothing and every reduction) is wrapped in a scalar function
``sum(op(inputs) * w)`` with a fixed random ``w``. ``gradflow.autograd.functional.hvp``
(which differentiates the op's backward Function, and that Function's backward again)
must give torch's ``hvp`` with respect to every differentiable input, on both devices.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd.functional import hvp

from .opinfo.activation import FUSED

torch = pytest.importorskip("torch")
TF = torch.nn.functional


CASES = {}
# Every fused activation (tests/opinfo/activation.py's FUSED), called the same way on both sides.
for _name, _fused in FUSED.items():
    CASES[_name] = (
        (lambda t, f=_fused: f.call(F, t)),
        (lambda t, f=_fused: f.call(TF, t)),
        [(3, 5)],
    )
for _log in (False, True):
    for _dim in (-1, 0):
        CASES[f"{'log_' if _log else ''}softmax_dim{_dim}"] = (
            (lambda t, d=_dim, lg=_log: (F.log_softmax if lg else F.softmax)(t, dim=d)),
            (lambda t, d=_dim, lg=_log: (TF.log_softmax if lg else TF.softmax)(t, dim=d)),
            [(3, 4, 5)],
        )

_MASK = np.array([[True, False, True, True], [False, False, False, False], [True, True, False, True]])
_FLOAT_MASK = np.random.default_rng(9).uniform(-1, 1, (3, 4))
for _kind in ("none", "bool", "float", "causal"):

    def _sdpa(module, kind=_kind):
        attention = module.scaled_dot_product_attention

        def run(q, k, v):
            if kind == "causal":
                return attention(q, k, v, is_causal=True, scale=0.7)
            if kind == "none":
                return attention(q, k, v)
            mask = _MASK if kind == "bool" else _FLOAT_MASK
            mask = torch.tensor(mask) if module is TF else gf.tensor(mask, device=q.device)
            return attention(q, k, v, attn_mask=mask)

        return run

    CASES[f"sdpa_{_kind}_mask"] = (_sdpa(F), _sdpa(TF), [(2, 3, 5), (2, 4, 5), (2, 4, 3)])

_PADDING = np.array([[False, True, False, False], [False, False, False, True]])  # (N=2, S=4)
for _need_weights in (False, True):

    def _mha(module, need_weights=_need_weights):
        def run(query, key, value, in_weight, in_bias, out_weight, out_bias):
            padding = torch.tensor(_PADDING) if module is TF else gf.tensor(_PADDING, device=query.device)
            out, weights = module.multi_head_attention_forward(
                query, key, value, 4, 2, in_weight, in_bias, None, None, False, 0.0, out_weight, out_bias,
                training=False, key_padding_mask=padding, need_weights=need_weights,
            )  # fmt: skip
            # need_weights=False runs scaled_dot_product_attention (safe softmax), True plain softmax.
            return weights if need_weights else out

        return run

    # Hessian-vector products with respect to the inputs and the projection weights and biases.
    CASES[f"multi_head_attention_need_weights_{_need_weights}"] = (
        _mha(F),
        _mha(TF),
        [(3, 2, 4), (4, 2, 4), (4, 2, 4), (12, 4), (12,), (4, 4), (4,)],
    )

_TARGET = np.array([[0, 2], [3, -100], [1, 1], [2, 0]])  # (N=4, d=2): one ignored
_WEIGHT = np.array([0.5, 1.5, 1.0, 2.0])
for _reduction in ("mean", "sum", "none"):
    for _smoothing in (0.0, 0.3):
        for _weighted in (False, True):

            def _xent(module, reduction=_reduction, smoothing=_smoothing, weighted=_weighted):
                def run(logits):
                    if module is TF:
                        target, weight = torch.tensor(_TARGET), torch.tensor(_WEIGHT) if weighted else None
                    else:
                        target = gf.tensor(_TARGET, device=logits.device)
                        weight = gf.tensor(_WEIGHT, device=logits.device) if weighted else None
                    return module.cross_entropy(
                        logits, target, weight=weight, reduction=reduction, label_smoothing=smoothing
                    )

                return run

            _key = f"cross_entropy_{_reduction}_eps{_smoothing}{'_weighted' if _weighted else ''}"
            CASES[_key] = (_xent(F), _xent(TF), [(4, 4, 2)])


@pytest.mark.parametrize("name", list(CASES))
def test_hessian_vector_products_match_torch_in_float64(name, device):
    ours, theirs, shapes = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    # Away from relu's kink; everything else is smooth.
    arrays = [rng.uniform(0.2, 2.0, s) * rng.choice([-1.0, 1.0], s) for s in shapes]
    vectors = [rng.normal(size=s) for s in shapes]
    probe = theirs(*[torch.tensor(a) for a in arrays])
    weight = rng.normal(size=tuple(probe.shape))

    def our_scalar(*inputs):
        return (ours(*inputs) * gf.tensor(weight, device=device)).sum()

    def their_scalar(*inputs):
        return (theirs(*inputs) * torch.tensor(weight)).sum()

    inputs = tuple(gf.tensor(a, device=device) for a in arrays)
    vs = tuple(gf.tensor(v, device=device) for v in vectors)
    value, products = hvp(our_scalar, inputs, vs)
    # torch's math attention: its fused CPU kernels (flash) have no double backward.
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        want_value, want_products = torch.autograd.functional.hvp(
            their_scalar, tuple(torch.tensor(a) for a in arrays), tuple(torch.tensor(v) for v in vectors)
        )
    np.testing.assert_allclose(value.cpu().numpy(), want_value.numpy(), rtol=1e-12, atol=1e-12)
    for got, want in zip(products, want_products):
        assert got.dtype is gf.float64
        np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    # At least one product is not trivially zero (relu's Hessian is zero away from its kink: H v = 0 there).
    if not name.startswith("relu"):
        assert any(np.abs(w.numpy()).max() > 1e-6 for w in want_products)


def _second_derivatives(op, x, device):
    """(act'(x), act''(x)) elementwise by two rounds of autograd: gradflow's for an array, torch's for a tensor.

    relu's gradient does not depend on x (a select on its output's sign): act'' is then zeros.
    """
    if isinstance(x, np.ndarray):
        t = gf.tensor(x, device=device, requires_grad=True)
        (first,) = gf.autograd.grad(op(t).sum(), t, create_graph=True)
        (second,) = gf.autograd.grad(first.sum(), t, allow_unused=True) if first.requires_grad else (None,)
        first = first.detach().cpu().numpy()
        return first, np.zeros_like(first) if second is None else second.cpu().numpy()
    t = x.clone().requires_grad_()
    (first,) = torch.autograd.grad(op(t).sum(), t, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), t, materialize_grads=True) if first.requires_grad else (None,)
    first = first.detach().numpy()
    return first, np.zeros_like(first) if second is None else second.numpy()


# Large |x| (still inside the range where every torch double backward stays finite: exp(x) overflows
# float32 past 88), a kink's neighbourhood, tiny values, and the non-finite ones.
_EXTREMES = [np.nan, np.inf, -np.inf, 0.0, 1e-30, -1e-30, 0.75, -0.75, 20.5, -20.5, 30.0, -30.0, 80.0, -80.0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(FUSED))
def test_activation_second_derivatives_match_torch_at_large_and_non_finite_inputs(name, dtype, device):
    fused = FUSED[name]
    x = np.array(_EXTREMES, dtype=dtype)
    ours = _second_derivatives(lambda t: fused.call(F, t), x, device)
    theirs = _second_derivatives(lambda t: fused.call(TF, t), torch.tensor(x), device)
    rtol, atol = (1e-10, 1e-15) if dtype == "float64" else (1e-5, 1e-6)
    for got, want in zip(ours, theirs):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(FUSED))
def test_activation_second_derivatives_stay_finite_for_every_finite_input(name, dtype, device):
    # act'' tends to 0 far out for every one of them; ours gets there without an overflowing
    # intermediate (exp(1e4) = inf, then inf * 0 = NaN). (float16 is left out: x * x overflows it
    # past |x| = 256, in gelu's formula as in torch's.)
    x = np.array([-1e4, -300.0, -30.0, -1.0, 0.0, 1.0, 30.0, 300.0, 1e4], dtype=dtype)
    first, second = _second_derivatives(lambda t: FUSED[name].call(F, t), x, device)
    assert np.isfinite(first).all() and np.isfinite(second).all(), (first, second)
    np.testing.assert_allclose(second[[0, -1]], 0.0, atol=1e-6)
