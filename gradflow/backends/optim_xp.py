"""The CUDA backend's RMSprop and Adagrad, which have no kernel: whole-array expressions against ``xp``.

The same signatures as ``optim_numpy.rmsprop_step`` / ``adagrad_step`` (see its module
docstring for the contract, and the optimizer classes for the formulas), with ``xp`` as
the first argument: ``CupyBackend`` passes CuPy, and the CPU tests pass NumPy to compare
these formulas with the CPU's chunked ones. On the GPU the chunking that pays off on the
CPU is the hardware's job, and temporaries come from CuPy's memory pool. SGD and
Adam/AdamW on the GPU launch ``kernels/optim.cu`` instead (``fused/optim.py``).
"""

from __future__ import annotations


def _effective_grad(xp, grad, param, weight_decay: float, maximize: bool):
    """-grad if maximize, plus weight_decay * param; ``grad`` itself when neither applies (never modified)."""
    if maximize:
        grad = xp.negative(grad)  # g = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * param  # g = g + wd * p
    return grad


def _lerp_(start, end, weight: float) -> None:
    """start <- start + weight * (end - start), in place, rounded like PyTorch's lerp."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (1 - weight) * (end - start)


def rmsprop_step(
    xp,
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
    """RMSprop with centering, momentum and L2 weight decay, in place (see ``optim_numpy.rmsprop_step``)."""
    for i, (param, grad) in enumerate(zip(params, grads)):
        g = _effective_grad(xp, grad, param, weight_decay, maximize)
        square_avg = square_avgs[i]
        square_avg *= alpha
        square_avg += (1 - alpha) * (g * g)  # v = alpha * v + (1 - alpha) * g * g
        if centered:
            grad_avg = grad_avgs[i]
            _lerp_(grad_avg, g, 1 - alpha)  # g_avg = alpha * g_avg + (1 - alpha) * g
            avg = xp.sqrt(square_avg - grad_avg * grad_avg) + eps  # avg = sqrt(v - g_avg^2) + eps
        else:
            avg = xp.sqrt(square_avg) + eps  # avg = sqrt(v) + eps
        if momentum > 0:
            buf = momentum_buffers[i]
            buf *= momentum
            buf += g / avg  # buf = momentum * buf + g / avg
            param += -lr * buf  # p = p - lr * buf
        else:
            param += -lr * (g / avg)  # p = p - lr * g / avg


def adagrad_step(xp, params, grads, state_sums, *, learning_rates, weight_decay, eps, maximize) -> None:
    """Adagrad with L2 weight decay and decayed learning rates, in place (see ``optim_numpy.adagrad_step``)."""
    for i, (param, grad) in enumerate(zip(params, grads)):
        clr = learning_rates[i]  # lr / (1 + (t - 1) * lr_decay)
        g = _effective_grad(xp, grad, param, weight_decay, maximize)
        state_sum = state_sums[i]
        state_sum += g * g  # sum = sum + g * g
        param += -clr * (g / (xp.sqrt(state_sum) + eps))  # p = p - clr * g / (sqrt(sum) + eps)
