"""Second and third derivatives of layer, group and batch norm against PyTorch's, in float64.

Each case takes ``f = sum(c * y**2)`` of the normalised output ``y`` (so that f curves in
the weight and bias too), forms the gradient with ``create_graph=True`` and then the
Hessian-vector product ``d<grad f, v>/d(x, weight, bias)``, on each device, and compares
with torch's. The first-order gradients there are the fused backward (``LayerNormBackward`` /
``BatchNormBackward``); their derivatives are ``_second_order`` in ``gradflow/ops/norm.py``.

Third derivatives are compared with torch differentiating the normalisation written out
in plain ops: torch's own fused norms treat their saved statistics as constants inside
their double backward, so their third derivatives w.r.t. x are not exact.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.nn import functional as F

torch = pytest.importorskip("torch")


def _layer_norm(lib, x, weight, bias):
    return lib.nn.functional.layer_norm(x, x.shape[-2:], weight, bias, eps=1e-3)


def _group_norm(lib, x, weight, bias):
    return lib.nn.functional.group_norm(x, 2, weight, bias, eps=1e-3)


def _batch_norm(lib, x, weight, bias):
    return lib.nn.functional.batch_norm(x, None, None, weight, bias, training=True, eps=1e-3)


def _composite(axes, channel_shape):
    """The normalisation in plain ops over ``axes``, then the affine at ``channel_shape``."""

    def op(lib, x, weight, bias):
        centred = x - x.mean(axes, keepdim=True)
        out = centred * ((centred * centred).mean(axes, keepdim=True) + 1e-3).rsqrt()
        if weight is not None:
            out = out * weight.reshape(channel_shape) + bias.reshape(channel_shape)
        return out

    return op


def _composite_group_norm(lib, x, weight, bias):
    out = _composite((2,), (-1,))(lib, x.reshape(2, 2, 6), None, None).reshape(x.shape)
    return out if weight is None else out * weight.reshape(-1, 1) + bias.reshape(-1, 1)


COMPOSITE = {
    "layer_norm": _composite((-2, -1), (2, 5)),
    "group_norm": _composite_group_norm,
    "batch_norm": _composite((0, 2), (-1, 1)),
}

# (op, x shape, parameter shape); the parameters of batch and group norm are per channel.
CASES = {
    "layer_norm": (_layer_norm, (3, 2, 5), (2, 5)),
    "group_norm": (_group_norm, (2, 4, 3), (4,)),
    "batch_norm": (_batch_norm, (4, 3, 2), (3,)),
}


def _operands(x_shape, param_shape, affine, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 2.0, x_shape)
    params = [rng.normal(1.0, 0.5, param_shape), rng.normal(0.0, 0.5, param_shape)] if affine else []
    c = rng.standard_normal(x_shape)
    vectors = [rng.standard_normal(a.shape) for a in [x, *params]]
    return [x, *params], c, vectors


def _hessian_vector_products(lib, op, arrays, c, vectors, make, order):
    """``d<grad f, v>/d inputs`` (order 2), or the derivative of its sum with the vectors once more (order 3)."""
    inputs = [make(a) for a in arrays]
    params = inputs[1:] if len(inputs) == 3 else [None, None]
    y = op(lib, inputs[0], *params)
    f = (make(c, grad=False) * y * y).sum()
    grads = lib.autograd.grad(f, inputs, create_graph=True)
    directional = sum((g * make(v, grad=False)).sum() for g, v in zip(grads, vectors))
    hvp = lib.autograd.grad(directional, inputs, create_graph=order > 2)
    if order == 2:
        return hvp
    third = sum((h * make(v, grad=False)).sum() for h, v in zip(hvp, vectors))
    return lib.autograd.grad(third, inputs)


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("name", list(CASES))
def test_higher_derivatives_match_torch(name, affine, order, device):
    op, x_shape, param_shape = CASES[name]
    arrays, c, vectors = _operands(x_shape, param_shape, affine)

    def ours(array, grad=True):
        return gf.tensor(array, device=device, requires_grad=grad)

    def theirs(array, grad=True):
        return torch.tensor(array, requires_grad=grad)

    got = _hessian_vector_products(gf, op, arrays, c, vectors, ours, order)
    reference = op if order == 2 else COMPOSITE[name]
    expected = _hessian_vector_products(torch, reference, arrays, c, vectors, theirs, order)
    assert len(got) == len(expected) == len(arrays)
    for position, (mine, reference) in enumerate(zip(got, expected)):
        reference = reference.detach().numpy()
        scale = max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(
            mine.detach().cpu().numpy(), reference, rtol=1e-9, atol=1e-10 * scale, err_msg=f"{name} input {position}"
        )


def test_plain_backward_records_nothing_inside_the_fused_backward():
    x = gf.randn(4, 6, dtype=gf.float64, requires_grad=True)
    weight = gf.randn(6, dtype=gf.float64, requires_grad=True)
    F.layer_norm(x, (6,), weight).sum().backward()
    # Without create_graph the engine runs backward with grad mode off: the gradients are plain leaves.
    assert x.grad.grad_fn is None and not x.grad.requires_grad
    assert weight.grad.grad_fn is None
    # With it, the first-order gradient is the output of the differentiable fused backward.
    x.grad = None
    (gx,) = gf.autograd.grad(F.layer_norm(x, (6,), weight).pow(2).sum(), [x], create_graph=True)
    producers = {node.name() for node, _ in gx.grad_fn.next_functions if node is not None}
    assert producers == {"LayerNormBackwardBackward"}
