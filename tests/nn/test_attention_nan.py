"""scaled_dot_product_attention with NaN inputs (issue 12; row sdpa-nan of docs/differences.md).

A NaN query row gives a NaN output row (PyTorch's math path agrees; its fused 4-D kernel gives 0), and a
NaN key hidden by the mask does not reach the rows it is hidden from (PyTorch's fused kernel agrees; its
math path makes them NaN).
"""

import numpy as np
import pytest

import gradflow as gf

torch = pytest.importorskip("torch")


def _attend(lib, q, k, v, **kwargs):
    return lib.nn.functional.scaled_dot_product_attention(lib.tensor(q), lib.tensor(k), lib.tensor(v), **kwargs)


@pytest.mark.parametrize("is_causal", [False, True])
def test_nan_query_row_gives_nan_row(is_causal):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 3, 2)).astype(np.float32) for _ in range(3))
    q[0, 0, 1, 0] = np.nan
    ours = _attend(gf, q, k, v, is_causal=is_causal).numpy()
    assert np.isnan(ours[0, 0, 1]).all()
    # the other rows are PyTorch's (and its math path, on 3-D inputs, gives NaN in that row too)
    theirs = _attend(torch, q[0], k[0], v[0], is_causal=is_causal).numpy()
    np.testing.assert_allclose(ours[0], theirs, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("mask_kind", ["causal", "bool"])
def test_masked_nan_key_does_not_reach_hidden_rows(mask_kind):
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 1, 3, 2)).astype(np.float32) for _ in range(3))
    k[0, 0, 2, 0] = np.nan  # only query row 2 may see key 2
    kwargs = {"is_causal": True} if mask_kind == "causal" else {"attn_mask": np.tril(np.ones((3, 3), dtype=bool))}
    ours_kwargs = dict(kwargs)
    if "attn_mask" in kwargs:
        ours_kwargs["attn_mask"] = gf.tensor(kwargs["attn_mask"])
    ours = _attend(gf, q, k, v, **ours_kwargs).numpy()
    assert np.isfinite(ours[0, 0, :2]).all() and np.isnan(ours[0, 0, 2]).all()
    # rows 0 and 1 equal attention over the first two keys alone
    clean = _attend(torch, q[..., :2, :], k[..., :2, :], v[..., :2, :], is_causal=True).numpy()
    np.testing.assert_allclose(ours[0, 0, :2], clean[0, 0], rtol=1e-5)
