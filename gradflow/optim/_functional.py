"""The optimizers' updates as functions over lists of tensors: one entry point per optimizer.

Like ``torch.optim.adam.adam``: an optimizer class keeps the parameter groups and the
state, and its ``step()`` calls one of these functions per group and device with
parallel lists of parameters, gradients and state tensors. Each function computes the
scalar terms once, on the host (step counts, bias corrections, step sizes), then hands
the arrays to the primitive of the parameters' device kind, which updates parameters
and state in place:

============  ===================================  =============================================
function      CPU: ``NumpyBackend``                CUDA: ``CupyBackend``
============  ===================================  =============================================
``sgd``       ``optim_numpy.sgd_step``             ``fused/optim.cuda_sgd_step`` (``optim.cu``)
``adam``      ``optim_numpy.adam_step``            ``fused/optim.cuda_adam_step`` (``optim.cu``)
``rmsprop``   ``optim_numpy.rmsprop_step``         ``optim_xp.rmsprop_step`` (no kernel)
``adagrad``   ``optim_numpy.adagrad_step``         ``optim_xp.adagrad_step`` (no kernel)
============  ===================================  =============================================

AdamW is ``adam(..., decoupled_weight_decay=True)``. The CPU primitives are the
reference the CUDA ones are tested against (``tests/kernels/test_optim.py``).

Step counters (``state_steps``) are 0-d float32 CPU tensors, as PyTorch keeps
``state['step']``; they are incremented in place, once per call, also for empty parameters.

>>> import gradflow as gf
>>> from gradflow.optim import _functional
>>> w = gf.tensor([1.0, -2.0])
>>> m, v, step = gf.zeros(2), gf.zeros(2), gf.zeros(())
>>> _functional.adam([w], [gf.tensor([0.5, 0.5])], [m], [v], [], [step], lr=0.1, beta1=0.9, beta2=0.999,
...                  eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)
>>> [round(x, 4) for x in w.tolist()], step.item()
([0.9, -2.1], 1.0)
"""

from __future__ import annotations

from ..errors import ArgumentValueError, DeviceMismatchError
from ..tensor import Tensor


def sgd(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_steps: list[bool],
) -> None:
    """One SGD step in place (formula: ``gradflow.optim.SGD``).

    ``momentum_buffers`` is empty when ``momentum == 0``; ``first_steps[i]`` is True where
    buffer ``i`` is new (it then takes the gradient itself, as in PyTorch).
    """
    optional = {"momentum_buffers": momentum_buffers, "first_steps": first_steps} if momentum != 0 else {}
    backend = _backend("sgd", params, grads=grads, **optional)
    if backend is None:
        return
    backend.sgd_step(
        _arrays(params),
        _arrays(grads),
        _arrays(momentum_buffers),
        lr=float(lr),
        momentum=float(momentum),
        dampening=float(dampening),
        weight_decay=float(weight_decay),
        nesterov=bool(nesterov),
        maximize=bool(maximize),
        first_steps=first_steps,
    )


def adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool = False,
) -> None:
    """One Adam step in place, or AdamW's with ``decoupled_weight_decay=True`` (formula: ``gradflow.optim.Adam``).

    ``max_exp_avg_sqs`` is empty unless ``amsgrad``.
    """
    optional = {"max_exp_avg_sqs": max_exp_avg_sqs} if amsgrad else {}
    backend = _backend(
        "adam", params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs, state_steps=state_steps, **optional
    )
    if backend is None:
        return
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    step_sizes, bias_correction2_sqrts = adam_scalars(count_steps(state_steps), lr, beta1, beta2)
    backend.adam_step(
        _arrays(params),
        _arrays(grads),
        _arrays(exp_avgs),
        _arrays(exp_avg_sqs),
        _arrays(max_exp_avg_sqs),
        step_sizes=step_sizes,
        bias_correction2_sqrts=bias_correction2_sqrts,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=float(eps),
        weight_decay=float(weight_decay),
        decoupled_weight_decay=bool(decoupled_weight_decay),
        amsgrad=bool(amsgrad),
        maximize=bool(maximize),
    )


def rmsprop(
    params: list[Tensor],
    grads: list[Tensor],
    square_avgs: list[Tensor],
    grad_avgs: list[Tensor],
    momentum_buffers: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """One RMSprop step in place (formula: ``gradflow.optim.RMSprop``).

    ``grad_avgs`` is empty unless ``centered``; ``momentum_buffers`` is empty unless ``momentum > 0``.
    The update does not depend on the step count; it is kept, as PyTorch keeps it.
    """
    optional = {"grad_avgs": grad_avgs} if centered else {}
    if momentum > 0:
        optional["momentum_buffers"] = momentum_buffers
    backend = _backend("rmsprop", params, grads=grads, square_avgs=square_avgs, state_steps=state_steps, **optional)
    if backend is None:
        return
    count_steps(state_steps)
    backend.rmsprop_step(
        _arrays(params),
        _arrays(grads),
        _arrays(square_avgs),
        _arrays(grad_avgs),
        _arrays(momentum_buffers),
        lr=float(lr),
        alpha=float(alpha),
        eps=float(eps),
        weight_decay=float(weight_decay),
        momentum=float(momentum),
        centered=bool(centered),
        maximize=bool(maximize),
    )


def adagrad(
    params: list[Tensor],
    grads: list[Tensor],
    state_sums: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """One Adagrad step in place (formula: ``gradflow.optim.Adagrad``)."""
    backend = _backend("adagrad", params, grads=grads, state_sums=state_sums, state_steps=state_steps)
    if backend is None:
        return
    backend.adagrad_step(
        _arrays(params),
        _arrays(grads),
        _arrays(state_sums),
        learning_rates=adagrad_learning_rates(count_steps(state_steps), float(lr), float(lr_decay)),
        weight_decay=float(weight_decay),
        eps=float(eps),
        maximize=bool(maximize),
    )


# -- the scalar terms, computed once per call ---------------------------------------------------
def count_steps(state_steps: list[Tensor]) -> list[float]:
    """Add 1 to each step counter in place (t = t + 1) and return the new counts as Python floats."""
    counts = []
    for step in state_steps:
        counter = step._data
        counter += 1  # a 0-d float32 host array, as PyTorch's state['step']
        counts.append(float(counter))
    return counts


def adam_scalars(counts: list[float], lr: float, beta1: float, beta2: float) -> tuple[list[float], list[float]]:
    """Per tensor at step ``t``: Adam's step size ``lr / (1 - beta1^t)`` and ``sqrt(1 - beta2^t)``.

    Tensors share their step count but for parameters added later, so each count is worked out once.
    """
    by_count: dict = {}
    step_sizes, bias_correction2_sqrts = [], []
    for t in counts:
        found = by_count.get(t)
        if found is None:
            found = by_count[t] = (lr / (1 - beta1**t), (1 - beta2**t) ** 0.5)
        step_sizes.append(found[0])
        bias_correction2_sqrts.append(found[1])
    return step_sizes, bias_correction2_sqrts


def adagrad_learning_rates(counts: list[float], lr: float, lr_decay: float) -> list[float]:
    """Per tensor at step ``t``: Adagrad's decayed learning rate ``lr / (1 + (t - 1) * lr_decay)``."""
    return [lr / (1 + (t - 1) * lr_decay) for t in counts]


# -- dispatch --------------------------------------------------------------------------------------
def _backend(op: str, params: list[Tensor], **lists):
    """The backend of the parameters' device (None when there are none), after checking the lists.

    Every list in ``lists`` must have one entry per parameter, and every
    parameter must be on one device: the callers group them by device.
    """
    for name, tensors in lists.items():
        if len(tensors) != len(params):
            raise ArgumentValueError(
                f"{op}: got {len(params)} parameters but {len(tensors)} {name}; pass one entry per parameter"
            )
    if not params:
        return None
    device = params[0]._device
    for param in params:
        if param._device is not device:
            raise DeviceMismatchError(
                f"{op}: expected every parameter on {device}, got one on {param._device}; call it once per device "
                "(the optimizers group their parameters by device)"
            )
    return device.backend


def _arrays(tensors: list[Tensor]) -> list:
    return [tensor._data for tensor in tensors]
