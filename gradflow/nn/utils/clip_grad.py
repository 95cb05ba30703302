"""Gradient clipping by total norm or by value, in place on ``.grad`` (PyTorch's semantics)."""

from __future__ import annotations

import math

from ...autograd.grad_mode import no_grad
from ...errors import GraphError, device_mismatch
from ...ops.creation import tensor
from ...tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p._grad for p in parameters if p._grad is not None]


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
):
    """Scale all gradients together so their joint ``norm_type`` norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor). The scale is max_norm / (norm + 1e-6),
    applied only when it is below 1.
    """
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return tensor(0.0)
    device = grads[0]._device
    for grad in grads:
        if grad._device is not device:
            raise device_mismatch("clip_grad_norm_", device, grad._device, "a gradient", "the first gradient")
    xp = device.backend.xp
    with no_grad():
        if norm_type == math.inf:
            per_grad = [xp.max(xp.abs(g._data)) if g._data.size else xp.zeros((), g._data.dtype) for g in grads]
            total = xp.max(xp.stack([xp.asarray(n, dtype=xp.float64) for n in per_grad]))
        else:
            per_grad = [xp.linalg.norm(g._data.ravel().astype(xp.float64), ord=norm_type) for g in grads]
            total = xp.linalg.norm(xp.stack(per_grad), ord=norm_type)
        total = total.astype(grads[0]._data.dtype)
        if error_if_nonfinite and not bool(xp.isfinite(total)):
            raise GraphError(
                f"clip_grad_norm_: the total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                "so it cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                "anyway, set `error_if_nonfinite=False`"
            )
        scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
        for grad in grads:
            grad._data *= scale.astype(grad._data.dtype)
            grad._bump_version()
    return Tensor._wrap(xp.asarray(total), device)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for grad in _grads(parameters):
        xp = grad._device.backend.xp
        xp.clip(grad._data, -clip_value, clip_value, out=grad._data)
        grad._bump_version()
