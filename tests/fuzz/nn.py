"""Fuzz specs for nn.functional: activations, losses, norms, convolution, pooling, attention."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

import gradflow.nn.functional as F

from .draw import array, index_array, shape
from .engine import FLOATS, Case, FuzzSpec, product_scale, sum_scale

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _act(name, **kwargs):
    def sample(draw, dtype):
        return Case((array(draw, shape(draw), dtype, -25.0, 25.0),), dict(kwargs), dtype)

    suffix = "_".join(f"{k}{v}" for k, v in kwargs.items())
    return FuzzSpec(f"F.{name}{'_' + suffix if suffix else ''}", getattr(F, name), getattr(TF, name), sample, FLOATS)


def _pair_loss(name, low=-3.0, high=3.0, target_low=None, target_high=None, **kwargs):
    def sample(draw, dtype):
        dims = shape(draw, max_dims=3)
        reduction = draw(st.sampled_from(["mean", "sum", "none"]))
        tlow = low if target_low is None else target_low
        thigh = high if target_high is None else target_high
        return Case(
            (array(draw, dims, dtype, low, high), array(draw, dims, dtype, tlow, thigh, grad=False)),
            {"reduction": reduction, **kwargs},
            dtype,
        )

    suffix = "_".join(f"{k}{v}" for k, v in kwargs.items())
    return FuzzSpec(
        f"F.{name}{'_' + suffix if suffix else ''}",
        getattr(F, name),
        getattr(TF, name),
        sample,
        FLOATS,
        scale=sum_scale,
    )


def _class_sample(log_probs):
    def sample(draw, dtype):
        n, c = draw(st.integers(0, 4)), draw(st.integers(1, 4))
        extra = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 1))))
        logits = array(draw, (n, c, *extra), dtype, -5.0, 5.0)
        target = index_array(draw, (n, *extra), c, negative=False)
        kwargs = {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))}
        if draw(st.booleans()):
            kwargs["ignore_index"] = draw(st.sampled_from([-100, 0]))
        if draw(st.booleans()):
            kwargs["weight"] = array(draw, (c,), dtype, 0.1, 2.0, special=False, grad=False)
        if not log_probs and draw(st.booleans()):
            kwargs["label_smoothing"] = draw(st.sampled_from([0.1, 0.5]))
        return Case((logits, target), kwargs, dtype)

    return sample


def _norm_sample(kind):
    def sample(draw, dtype):
        n, c = draw(st.integers(0, 3)), draw(st.sampled_from([2, 4]))
        spatial = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
        x = array(draw, (n, c, *spatial), dtype, -3.0, 3.0)
        affine = draw(st.booleans())
        weight = array(draw, (c,), dtype, 0.5, 2.0, special=False) if affine else None
        bias = array(draw, (c,), dtype, -1.0, 1.0, special=False) if affine else None
        if kind == "layer":
            x = array(draw, (n, *spatial, c), dtype, -3.0, 3.0)
            return Case((x, (c,), weight, bias), {}, dtype)
        if kind == "group":
            return Case((x, draw(st.sampled_from([1, 2])), weight, bias), {}, dtype)
        mean = array(draw, (c,), dtype, -1.0, 1.0, special=False, grad=False)
        var = array(draw, (c,), dtype, 0.5, 2.0, special=False, grad=False)
        return Case((x, mean, var, weight, bias), {"training": False}, dtype)

    return sample


def _conv_sample(dims, transpose=False):
    def sample(draw, dtype):
        n, groups = draw(st.integers(0, 2)), draw(st.sampled_from([1, 2]))
        cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        spatial = tuple(k + draw(st.integers(0, 3)) for k in kernel)
        stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        weight_shape = (cin, cout // groups, *kernel) if transpose else (cout, cin // groups, *kernel)
        x = array(draw, (n, cin, *spatial), dtype)
        weight = array(draw, weight_shape, dtype, -1.0, 1.0)
        bias = array(draw, (cout,), dtype, -1.0, 1.0) if draw(st.booleans()) else None
        return Case((x, weight, bias), {"stride": stride, "padding": padding, "groups": groups}, dtype)

    return sample


def _pool_sample(kind):
    def sample(draw, dtype):
        lead = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(1, 2))))
        spatial = tuple(draw(st.integers(1, 6)) for _ in range(2))
        x = array(draw, (*lead, *spatial), dtype)
        if kind == "adaptive":
            return Case((x, tuple(draw(st.integers(1, 4)) for _ in range(2))), {}, dtype)
        kernel = draw(st.integers(1, min(spatial)))
        kwargs = {"stride": draw(st.sampled_from([None, 1, 2])), "padding": draw(st.integers(0, kernel // 2))}
        if draw(st.booleans()):
            kwargs["ceil_mode"] = True
        return Case((x, kernel), kwargs, dtype)

    return sample


def _attention_sample(draw, dtype):
    batch = tuple(draw(st.integers(0, 2)) for _ in range(draw(st.integers(1, 2))))
    lq, lk, e = draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    q, k, v = (array(draw, (*batch, length, e), dtype) for length in (lq, lk, lk))
    return Case((q, k, v), {"is_causal": draw(st.booleans())} if lq == lk else {}, dtype)


SPECS = [
    _act("relu"),
    _act("gelu"),
    _act("gelu", approximate="tanh"),
    _act("silu"),
    _act("elu"),
    _act("leaky_relu"),
    _act("softplus"),
    _act("sigmoid"),
    _act("tanh"),
    _pair_loss("mse_loss"),
    _pair_loss("l1_loss"),
    _pair_loss("huber_loss"),
    _pair_loss("huber_loss", delta=0.5),
    _pair_loss("smooth_l1_loss"),
    _pair_loss("smooth_l1_loss", beta=0.5),
    _pair_loss("binary_cross_entropy", 0.0, 1.0),
    _pair_loss("binary_cross_entropy_with_logits", -5.0, 5.0, 0.0, 1.0),
    _pair_loss("kl_div", -3.0, 0.0, 0.0, 1.0),
    _pair_loss("kl_div", -3.0, 0.0, -3.0, 0.0, log_target=True),
    FuzzSpec("F.cross_entropy", F.cross_entropy, TF.cross_entropy, _class_sample(False), FLOATS),
    FuzzSpec("F.nll_loss", F.nll_loss, TF.nll_loss, _class_sample(True), FLOATS),
    # tol 2: with two features the exact input gradient is O(eps), a difference of O(1) terms.
    FuzzSpec("F.layer_norm", F.layer_norm, TF.layer_norm, _norm_sample("layer"), FLOATS, tol=2.0),
    FuzzSpec("F.group_norm", F.group_norm, TF.group_norm, _norm_sample("group"), FLOATS, scale=sum_scale),
    FuzzSpec("F.batch_norm_eval", F.batch_norm, TF.batch_norm, _norm_sample("batch"), FLOATS, scale=sum_scale),
    FuzzSpec("F.conv1d", F.conv1d, TF.conv1d, _conv_sample(1), FLOATS, scale=product_scale),
    FuzzSpec("F.conv2d", F.conv2d, TF.conv2d, _conv_sample(2), FLOATS, scale=product_scale),
    FuzzSpec(
        "F.conv_transpose2d",
        F.conv_transpose2d,
        TF.conv_transpose2d,
        _conv_sample(2, True),
        FLOATS,
        scale=product_scale,
    ),
    FuzzSpec("F.max_pool2d", F.max_pool2d, TF.max_pool2d, _pool_sample("max"), FLOATS),
    FuzzSpec("F.avg_pool2d", F.avg_pool2d, TF.avg_pool2d, _pool_sample("avg"), FLOATS, scale=sum_scale),
    FuzzSpec(
        "F.adaptive_avg_pool2d",
        F.adaptive_avg_pool2d,
        TF.adaptive_avg_pool2d,
        _pool_sample("adaptive"),
        FLOATS,
        scale=sum_scale,
    ),
    FuzzSpec(
        "F.scaled_dot_product_attention",
        F.scaled_dot_product_attention,
        TF.scaled_dot_product_attention,
        _attention_sample,
        FLOATS,
        scale=product_scale,
    ),
]
