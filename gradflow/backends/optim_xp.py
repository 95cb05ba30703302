"""Fused optimizer updates written once against ``xp`` (CuPy on the GPU; NumPy works too).

The same four primitives and signatures as ``optim_numpy.py`` (see its module
docstring for the contract), with ``xp`` as the first argument. Here each
tensor is updated with whole-array expressions: on the GPU the chunking that
pays off on the CPU is the hardware's job, and temporaries come from CuPy's
memory pool. The CuPy backend runs RMSprop and Adagrad from here; SGD and Adam/AdamW
launch ``kernels/optim.cu`` instead (``fused/optim.py``), and these two bodies remain as
the stand-in ``benchmarks/kernels_gpu.py`` times the kernel against.

``steps`` are 0-d float32 host (NumPy) arrays whatever ``xp`` is, as PyTorch
keeps ``state['step']`` on the CPU: bias corrections are computed on the host.
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


def sgd_step(
    xp, params, grads, momentum_buffers, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first_steps
) -> None:
    """SGD with momentum, dampening, Nesterov and L2 weight decay, in place (see ``optim_numpy.sgd_step``)."""
    lr, momentum, dampening, weight_decay = float(lr), float(momentum), float(dampening), float(weight_decay)
    for i, (param, grad) in enumerate(zip(params, grads)):
        g = _effective_grad(xp, grad, param, weight_decay, maximize)
        direction = g
        if momentum != 0:
            buf = momentum_buffers[i]
            if first_steps[i]:
                buf[...] = g  # buf = g
            else:
                buf *= momentum
                buf += (1 - dampening) * g  # buf = momentum * buf + (1 - dampening) * g
            direction = g + momentum * buf if nesterov else buf
        param += -lr * direction  # p = p - lr * d


def adam_step(
    xp,
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    amsgrad,
    maximize,
) -> None:
    """Adam / AdamW with optional AMSGrad, in place (see ``optim_numpy.adam_step``)."""
    lr, beta1, beta2, eps, weight_decay = float(lr), float(beta1), float(beta2), float(eps), float(weight_decay)
    for i, (param, grad) in enumerate(zip(params, grads)):
        step = steps[i]
        step += 1  # t = t + 1
        t = float(step)
        step_size = lr / (1 - beta1**t)
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        if decoupled_weight_decay:
            if weight_decay != 0:
                param *= 1 - lr * weight_decay  # p = p * (1 - lr * wd)
            g = _effective_grad(xp, grad, param, 0.0, maximize)
        else:
            g = _effective_grad(xp, grad, param, weight_decay, maximize)
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        _lerp_(exp_avg, g, 1 - beta1)  # m = beta1 * m + (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (g * g)  # v = beta2 * v + (1 - beta2) * g * g
        if amsgrad:
            xp.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])  # v_max = max(v_max, v)
            exp_avg_sq = max_exp_avg_sqs[i]
        denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps  # sqrt(v) / sqrt(1 - beta2^t) + eps
        param += -step_size * (exp_avg / denom)  # p = p - lr / (1 - beta1^t) * m / denom


def rmsprop_step(
    xp,
    params,
    grads,
    square_avgs,
    grad_avgs,
    momentum_buffers,
    steps,
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
    lr, alpha, eps, weight_decay, momentum = float(lr), float(alpha), float(eps), float(weight_decay), float(momentum)
    for i, (param, grad) in enumerate(zip(params, grads)):
        step = steps[i]
        step += 1  # t = t + 1 (kept like PyTorch; the update does not depend on t)
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


def adagrad_step(xp, params, grads, state_sums, steps, *, lr, lr_decay, weight_decay, eps, maximize) -> None:
    """Adagrad with learning-rate decay and L2 weight decay, in place (see ``optim_numpy.adagrad_step``)."""
    lr, lr_decay, weight_decay, eps = float(lr), float(lr_decay), float(weight_decay), float(eps)
    for i, (param, grad) in enumerate(zip(params, grads)):
        step = steps[i]
        step += 1  # t = t + 1
        clr = lr / (1 + (float(step) - 1) * lr_decay)  # clr = lr / (1 + (t - 1) * lr_decay)
        g = _effective_grad(xp, grad, param, weight_decay, maximize)
        state_sum = state_sums[i]
        state_sum += g * g  # sum = sum + g * g
        param += -clr * (g / (xp.sqrt(state_sum) + eps))  # p = p - clr * g / (sqrt(sum) + eps)
