"""Second derivatives of the normalisations (layer, group and batch norm): one statement for all.

Derivatives follow Chainer's ``ReLUGrad2`` pattern: ``LayerNorm.backward`` and
``BatchNorm.backward`` (``norm.py``) call ``LayerNormBackward`` / ``BatchNormBackward``, subclasses of
``_NormalizationBackward`` whose forward computes the first-order gradients on arrays and whose
backward, ``_second_order``, is the one statement of the derivatives of those gradients.

With ``xhat = (x - mean) * rstd`` and, over the normalised axes,
``L(v) = v - mean(v) - xhat * mean(v * xhat)`` (symmetric; ``d xhat / dx = rstd * L``)::

    first order, gw = grad * weight:   grad_x = rstd * L(gw)
                                        grad_weight = sum(grad * xhat),  grad_bias = sum(grad)
    second order, given cotangents a, wbar, bbar of grad_x, grad_weight, grad_bias:
        d grad   = weight * rstd * L(a) + wbar * xhat + bbar
        d weight = sum(grad * rstd * L(a))
        d x      = rstd * L(wbar * grad)
                   - rstd**2 * (xhat * mean(a * L(gw)) + mean(gw * xhat) * L(a) + mean(a * xhat) * L(gw))
"""

from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor


def _project(v: Tensor, xhat: Tensor, axes: tuple) -> Tensor:
    """``L(v) = v - mean(v) - xhat * mean(v * xhat)`` over ``axes`` (``rstd * L`` is d xhat / dx)."""
    return v - v.mean(axes, keepdim=True) - xhat * (v * xhat).mean(axes, keepdim=True)


def _total(*terms):
    """The sum of the terms that are not None (None when all are)."""
    present = [term for term in terms if term is not None]
    return sum(present[1:], present[0]) if present else None


def _second_order(ctx, grad, x, weight, a, wbar, bbar):
    """Gradients w.r.t. ``(grad, x, weight)`` of the first-order gradients, given their cotangents.

    ``a``, ``wbar``, ``bbar`` are the cotangents of grad_x, grad_weight and grad_bias (None
    where unused). The statistics are recomputed from ``x`` with gradflow ops, so that the
    result, when it is differentiated again, carries their dependence on x.
    """
    axes = ctx.axes
    need_grad, need_x, need_weight = ctx.needs_input_grad[:3]
    centred = x - x.mean(axes, keepdim=True)
    rstd = _reciprocal_std(centred, axes, ctx.eps)
    xhat = centred * rstd
    gw = grad if weight is None else grad * weight
    rstd_l_a = None if a is None else rstd * _project(a, xhat, axes)
    d_grad = d_x = d_weight = None
    if need_grad:
        d_grad = _total(
            None if rstd_l_a is None else (rstd_l_a if weight is None else rstd_l_a * weight),
            None if wbar is None else wbar * xhat,
            bbar,
        )
        if d_grad.shape != grad.shape:  # bbar alone: it broadcasts along the normalised axes
            d_grad = d_grad.expand(grad.shape)
    if need_weight and rstd_l_a is not None:
        d_weight = grad * rstd_l_a  # at x's shape: the engine sums it to the weight's
    if need_x:
        curvature = None
        if a is not None:
            l_gw = _project(gw, xhat, axes)
            curvature = -(rstd * rstd) * (
                xhat * (a * l_gw).mean(axes, keepdim=True)
                + (gw * xhat).mean(axes, keepdim=True) * _project(a, xhat, axes)
                + (a * xhat).mean(axes, keepdim=True) * l_gw
            )
        d_x = _total(None if wbar is None else rstd * _project(wbar * grad, xhat, axes), curvature)
    return d_grad, d_x, d_weight


def _reciprocal_std(centred: Tensor, axes: tuple, eps: float) -> Tensor:
    """``(mean(centred**2) + eps) ** -0.5`` in gradflow ops, the deviations scaled by a constant power of two
    first (``reciprocal_std``'s scale), so that huge deviations do not overflow their squares."""
    backend = centred._device.backend
    with backend.context():
        peak = backend.xp.max(backend.xp.abs(centred._data), axis=axes, keepdims=True) if centred.numel() else 1.0
        scale = backend.xp.ldexp(backend.xp.ones_like(peak), backend.xp.maximum(backend.xp.frexp(peak)[1], 0))
    scale = Tensor._wrap(scale.astype(centred._data.dtype, copy=False), centred._device)
    scaled = centred / scale
    return ((scaled * scaled).mean(axes, keepdim=True) + eps / (scale * scale)).rsqrt() / scale


class _NormalizationBackward(Function):
    """First-order gradients of a normalisation as an op of ``(grad, x, weight)``.

    A subclass's forward returns grad_x, then grad_weight and grad_bias where requested, and
    sets ``ctx.axes`` and ``ctx.eps``; the backward is ``_second_order`` for every subclass.
    """

    @staticmethod
    def backward(ctx, *cotangents):
        grad, x, weight = ctx.saved_tensors
        rest = iter(cotangents[1:])
        wbar = next(rest) if ctx.need_weight else None
        bbar = next(rest) if ctx.need_bias else None
        return _second_order(ctx, grad, x, weight, cotangents[0], wbar, bbar)


def _per_input(ctx, grads: tuple) -> tuple:
    """``(grad_x, grad_weight, grad_bias)``, None where not needed, from a backward Function's outputs."""
    needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
    return (grads[0] if needs_x else None), (grads[1] if needs_weight else None), (grads[-1] if needs_bias else None)
