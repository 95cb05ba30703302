"""The CPU's optimizer updates: in-place NumPy, chunked, allocation-free after the first step.

The one statement of each optimizer's formula for the CPU, and the reference the CUDA
primitives are tested against. ``gradflow.optim._functional`` calls these (through
``NumpyBackend``) after computing the scalar terms (step counts, bias corrections, step
sizes) once; the CUDA backend implements the same signatures (``kernels/optim.cu`` for SGD
and Adam, launched from ``fused/optim.py``; ``optim_xp.py`` for RMSprop and Adagrad).

Contract shared by every primitive:

- The lists hold arrays and host numbers only, never Tensors. ``params[i]``, ``grads[i]``
  and the state arrays at index ``i`` have one shape and one floating dtype; different
  ``i`` may differ in both. Parameters and state are updated in place.
- ``grads`` are only read; a gradient is never modified.
- Per-tensor scalars that depend on the step count (Adam's ``step_sizes`` and
  ``bias_correction2_sqrts``, Adagrad's ``learning_rates``) come as lists of Python floats,
  one per parameter; the step counters themselves are the caller's.
- Arithmetic runs in each parameter's dtype, with hyperparameters passed as
  Python floats (NumPy treats those as weak scalars, so float32 stays float32,
  as in PyTorch's CPU kernels).
- Mixed precision (SGD and Adam): float16 parameters (and gradients) compute in
  float32, with float32 state, and are rounded back once per step, as the CUDA
  kernels do. Each chunk of a float16 array is staged through a float32 buffer.
- Arrays are walked as flat C-order views. A non-contiguous array (rare:
  gradflow creates parameters, gradients and state contiguous) goes through a
  contiguous copy that is written back, which allocates.

Why chunks: one pass of Adam touches five arrays about a dozen times. Walking
each array in slices of ``CHUNK_ELEMENTS`` keeps every slice (and the two
scratch slices) in the L2 cache across those dozen ufunc calls, so memory
traffic is about one read and one write per array instead of a dozen. The
scratch buffers live per thread and per dtype and are reused by every later
step, so a step allocates no array memory after the first.
"""

from __future__ import annotations

import threading

import numpy as np

# 32K elements: 128 KiB per float32 slice; 4-6 slices stay within a typical L2.
CHUNK_ELEMENTS = 32768

_workspace = threading.local()


def _scratch(dtype) -> tuple[np.ndarray, np.ndarray]:
    """Two reusable scratch slices of ``dtype`` for this thread (created once)."""
    buffers = getattr(_workspace, "buffers", None)
    if buffers is None:
        buffers = _workspace.buffers = {}
    found = buffers.get(dtype)
    if found is None or found[0].size < CHUNK_ELEMENTS:  # the size check lets tests shrink the chunks
        found = buffers[dtype] = (np.empty(CHUNK_ELEMENTS, dtype), np.empty(CHUNK_ELEMENTS, dtype))
    return found


def _compute_dtype(dtype) -> np.dtype:
    """The arithmetic dtype of SGD/Adam for parameters of ``dtype``: float32 for float16, else ``dtype``."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def _stage_in(pieces, dtype) -> list:
    """Each chunk as an array of ``dtype``: itself when it has that dtype, else a copy in a staging buffer."""
    staged, buffers = [], None
    for index, piece in enumerate(pieces):
        if piece is None or piece.dtype == dtype:
            staged.append(piece)
            continue
        if buffers is None:
            buffers = _staging(dtype)
        copy = buffers[index][: piece.size]
        np.copyto(copy, piece)
        staged.append(copy)
    return staged


def _stage_out(pieces, staged) -> None:
    """Copy staged chunks back into their arrays, rounded to nearest even (None: read-only, skipped)."""
    for piece, copy in zip(pieces, staged):
        if piece is not None and copy is not piece:
            np.copyto(piece, copy, casting="same_kind")


def _staging(dtype) -> tuple:
    """Five reusable staging slices of ``dtype`` for this thread (mixed-precision updates only)."""
    buffers = getattr(_workspace, "staging", None)
    if buffers is None:
        buffers = _workspace.staging = {}
    found = buffers.get(dtype)
    if found is None or found[0].size < CHUNK_ELEMENTS:
        found = buffers[dtype] = tuple(np.empty(CHUNK_ELEMENTS, dtype) for _ in range(5))
    return found


def _flat(array: np.ndarray) -> np.ndarray:
    """A 1-D C-order view of ``array``; a contiguous copy when no view exists (see ``_write_back``)."""
    if array.flags.c_contiguous:
        return array.reshape(-1)
    return np.ascontiguousarray(array).reshape(-1)


def _write_back(array: np.ndarray, flat: np.ndarray) -> None:
    """Copy an updated flat copy back into a non-contiguous ``array`` (nothing to do for views)."""
    if not array.flags.c_contiguous:
        np.copyto(array, flat.reshape(array.shape))


def _chunks(size: int):
    """(start, stop) pairs covering ``range(size)`` in slices of at most CHUNK_ELEMENTS."""
    for start in range(0, size, CHUNK_ELEMENTS):
        yield start, min(start + CHUNK_ELEMENTS, size)


def _effective_grad(grad, param, weight_decay: float, maximize: bool, out):
    """g <- -grad if maximize, then g <- g + weight_decay * param; ``grad`` itself when neither applies."""
    if weight_decay != 0:
        np.multiply(param, weight_decay, out=out)  # out = wd * p
        if maximize:
            return np.subtract(out, grad, out=out)  # g = -grad + wd * p
        return np.add(grad, out, out=out)  # g = grad + wd * p
    if maximize:
        return np.negative(grad, out=out)  # g = -grad
    return grad


def _lerp(start, end, weight: float, tmp) -> None:
    """start <- start + weight * (end - start), in place, rounded like PyTorch's lerp."""
    np.subtract(end, start, out=tmp)  # tmp = end - start
    if abs(weight) < 0.5:
        np.multiply(tmp, weight, out=tmp)
        np.add(start, tmp, out=start)  # start + w * (end - start)
    else:
        np.multiply(tmp, 1 - weight, out=tmp)
        np.subtract(end, tmp, out=start)  # end - (1 - w) * (end - start)


def sgd_step(
    params, grads, momentum_buffers, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first_steps
) -> None:
    """SGD with optional momentum, dampening, Nesterov and L2 weight decay, in place.

    ``momentum_buffers`` is empty when ``momentum == 0``; otherwise one buffer per
    parameter, and ``first_steps[i]`` is True where buffer ``i`` is new: PyTorch's first
    momentum step stores the gradient itself (no dampening) instead of blending.
    float16 parameters compute in float32 (their buffers are float32; see the module doc).
    """
    for i, (param, grad) in enumerate(zip(params, grads)):
        p_flat, g_flat = _flat(param), _flat(grad)
        buffer = momentum_buffers[i] if momentum != 0 else None
        b_flat = None if buffer is None else _flat(buffer)
        first = buffer is not None and first_steps[i]
        compute = _compute_dtype(param.dtype)
        work, tmp = _scratch(compute)
        for start, stop in _chunks(p_flat.size):
            n = stop - start
            pieces = [p_flat[start:stop], g_flat[start:stop], None if b_flat is None else b_flat[start:stop]]
            p, g, buf = _stage_in(pieces, compute)
            g = _effective_grad(g, p, weight_decay, maximize, work[:n])
            direction = g
            if buf is not None:
                if first:
                    np.copyto(buf, g)  # buf = g
                else:
                    np.multiply(buf, momentum, out=buf)  # buf = momentum * buf
                    np.multiply(g, 1 - dampening, out=tmp[:n])
                    np.add(buf, tmp[:n], out=buf)  #     + (1 - dampening) * g
                if nesterov:
                    np.multiply(buf, momentum, out=tmp[:n])
                    direction = np.add(g, tmp[:n], out=tmp[:n])  # d = g + momentum * buf
                else:
                    direction = buf  # d = buf
            np.multiply(direction, -lr, out=tmp[:n])
            np.add(p, tmp[:n], out=p)  # p = p - lr * d
            _stage_out([pieces[0], None, pieces[2]], [p, g, buf])
        _write_back(param, p_flat)
        if buffer is not None:
            _write_back(buffer, b_flat)


def adam_step(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    *,
    step_sizes,
    bias_correction2_sqrts,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    amsgrad,
    maximize,
) -> None:
    """Adam (L2 weight decay) or AdamW (``decoupled_weight_decay=True``), with optional AMSGrad, in place.

    ``step_sizes[i]`` is ``lr / (1 - beta1^t)`` and ``bias_correction2_sqrts[i]`` is
    ``sqrt(1 - beta2^t)`` at tensor ``i``'s step ``t``. ``max_exp_avg_sqs`` is empty unless
    ``amsgrad``. float16 parameters compute in float32 (their moments are float32; see the module doc).
    """
    coupled_decay = 0.0 if decoupled_weight_decay else weight_decay
    for i, (param, grad) in enumerate(zip(params, grads)):
        step_size, bias_correction2_sqrt = step_sizes[i], bias_correction2_sqrts[i]
        written = [param, exp_avgs[i], exp_avg_sqs[i]]
        if amsgrad:
            written.append(max_exp_avg_sqs[i])
        flats = [_flat(a) for a in written]
        g_flat = _flat(grad)
        compute = _compute_dtype(param.dtype)
        work, tmp = _scratch(compute)
        for start, stop in _chunks(g_flat.size):
            n = stop - start
            pieces = [*(f[start:stop] for f in flats), g_flat[start:stop]]  # p, m, v, [v_max,] grad
            staged = _stage_in(pieces, compute)
            p, m, v, g = staged[0], staged[1], staged[2], staged[-1]
            if weight_decay != 0 and decoupled_weight_decay:
                np.multiply(p, 1 - lr * weight_decay, out=p)  # p = p * (1 - lr * wd)
            g = _effective_grad(g, p, coupled_decay, maximize, work[:n])
            _lerp(m, g, 1 - beta1, tmp[:n])  # m = beta1 * m + (1 - beta1) * g
            np.multiply(v, beta2, out=v)  # v = beta2 * v
            np.multiply(g, g, out=tmp[:n])
            np.multiply(tmp[:n], 1 - beta2, out=tmp[:n])
            np.add(v, tmp[:n], out=v)  #     + (1 - beta2) * g * g
            if amsgrad:
                v_max = staged[3]
                np.maximum(v_max, v, out=v_max)  # v_max = max(v_max, v)
                v = v_max
            denom = np.sqrt(v, out=tmp[:n])
            np.divide(denom, bias_correction2_sqrt, out=denom)
            np.add(denom, eps, out=denom)  # denom = sqrt(v) / sqrt(1 - beta2^t) + eps
            np.divide(m, denom, out=denom)
            np.multiply(denom, -step_size, out=denom)
            np.add(p, denom, out=p)  # p = p - lr / (1 - beta1^t) * m / denom
            _stage_out(pieces[:-1], staged[:-1])  # the gradient is only read
        for array, flat in zip(written, flats):
            _write_back(array, flat)


def rmsprop_step(
    params,
    grads,
    square_avgs,
    grad_avgs,
    momentum_buffers,
    *,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
) -> None:
    """RMSprop with optional centering, momentum and L2 weight decay, in place.

    ``grad_avgs`` is empty unless ``centered``; ``momentum_buffers`` is empty unless ``momentum > 0``.
    """
    for i, (param, grad) in enumerate(zip(params, grads)):
        written = [param, square_avgs[i]]
        if centered:
            written.append(grad_avgs[i])
        if momentum > 0:
            written.append(momentum_buffers[i])
        flats = [_flat(a) for a in written]
        g_flat = _flat(grad)
        work, tmp = _scratch(param.dtype)
        for start, stop in _chunks(g_flat.size):
            p, v, *rest = (f[start:stop] for f in flats)
            n = stop - start
            g = _effective_grad(g_flat[start:stop], p, weight_decay, maximize, work[:n])
            np.multiply(v, alpha, out=v)  # v = alpha * v
            np.multiply(g, g, out=tmp[:n])
            np.multiply(tmp[:n], 1 - alpha, out=tmp[:n])
            np.add(v, tmp[:n], out=v)  #     + (1 - alpha) * g * g
            avg = tmp[:n]
            if centered:
                g_avg = rest.pop(0)
                _lerp(g_avg, g, 1 - alpha, tmp[:n])  # g_avg = alpha * g_avg + (1 - alpha) * g
                np.multiply(g_avg, g_avg, out=avg)
                np.subtract(v, avg, out=avg)
                np.sqrt(avg, out=avg)  # avg = sqrt(v - g_avg^2)
            else:
                np.sqrt(v, out=avg)  # avg = sqrt(v)
            np.add(avg, eps, out=avg)  # avg = avg + eps
            np.divide(g, avg, out=avg)  # (g / avg)
            if momentum > 0:
                buf = rest.pop(0)
                np.multiply(buf, momentum, out=buf)
                np.add(buf, avg, out=buf)  # buf = momentum * buf + g / avg
                np.multiply(buf, -lr, out=avg)  # p = p - lr * buf
            else:
                np.multiply(avg, -lr, out=avg)  # p = p - lr * g / avg
            np.add(p, avg, out=p)
        for array, flat in zip(written, flats):
            _write_back(array, flat)


def adagrad_step(params, grads, state_sums, *, learning_rates, weight_decay, eps, maximize) -> None:
    """Adagrad with L2 weight decay, in place.

    ``learning_rates[i]`` is the decayed ``clr = lr / (1 + (t - 1) * lr_decay)`` at tensor ``i``'s step ``t``.
    """
    for i, (param, grad) in enumerate(zip(params, grads)):
        clr = learning_rates[i]
        p_flat, s_flat, g_flat = _flat(param), _flat(state_sums[i]), _flat(grad)
        work, tmp = _scratch(param.dtype)
        for start, stop in _chunks(g_flat.size):
            p, state_sum, n = p_flat[start:stop], s_flat[start:stop], stop - start
            g = _effective_grad(g_flat[start:stop], p, weight_decay, maximize, work[:n])
            np.multiply(g, g, out=tmp[:n])
            np.add(state_sum, tmp[:n], out=state_sum)  # sum = sum + g * g
            std = np.sqrt(state_sum, out=tmp[:n])
            np.add(std, eps, out=std)  # std = sqrt(sum) + eps
            np.divide(g, std, out=std)
            np.multiply(std, -clr, out=std)
            np.add(p, std, out=p)  # p = p - clr * g / std
        _write_back(param, p_flat)
        _write_back(state_sums[i], s_flat)
