"""Gradient checkpointing: trade compute for memory by recomputing activations during backward.

``checkpoint(fn, *args)`` runs ``fn`` without recording its graph, so none of its
intermediate activations stay alive; backward runs ``fn`` again (with the random
number generators rewound, so dropout draws the same masks) and backpropagates
through the recomputed graph. Like PyTorch's reentrant checkpoint, gradients of
parameters used inside ``fn`` are accumulated into their ``.grad`` during the
recomputation, so it works with ``backward()`` but not with ``autograd.grad``.
"""

from __future__ import annotations

import functools
import warnings

from ..autograd.custom_function import Function
from ..autograd.engine import backward as run_backward
from ..autograd.engine import pass_kind
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..device import device as as_device
from ..errors import ArgumentValueError, GraphError
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential"]


def _rng_states(devices) -> list:
    return [(device, device.backend.get_rng_state()) for device in devices]


def _restore(states) -> None:
    for device, state in states:
        device.backend.set_rng_state(state)


class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        devices = {as_device("cpu")} | {arg._device for arg in args if isinstance(arg, Tensor)}
        ctx.rng_devices = sorted(devices, key=str)
        if preserve_rng_state:
            ctx.rng_states = _rng_states(ctx.rng_devices)
        ctx.tensor_positions = [position for position, arg in enumerate(args) if isinstance(arg, Tensor)]
        ctx.other_args = [None if isinstance(arg, Tensor) else arg for arg in args]
        ctx.save_for_backward(*[arg for arg in args if isinstance(arg, Tensor)])
        return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        if not pass_kind.accumulates_everywhere:
            raise GraphError(
                "checkpoint: checkpointing is not compatible with autograd.grad() or with backward(inputs=...), "
                "because parameters used inside the checkpointed function get their gradients through .grad; "
                "call loss.backward() instead"
            )
        args = list(ctx.other_args)
        inputs = []
        for position, saved in zip(ctx.tensor_positions, ctx.saved_tensors):
            detached = saved.detach()
            detached.requires_grad_(saved.requires_grad)
            args[position] = detached
            inputs.append(detached)
        current = _rng_states(ctx.rng_devices) if ctx.preserve_rng_state else None
        try:
            if ctx.preserve_rng_state:
                _restore(ctx.rng_states)
            with enable_grad():
                outputs = ctx.run_function(*args)
        finally:
            if current is not None:
                _restore(current)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        roots, grads = [], []
        for output, gradient in zip(outputs, grad_outputs):
            if isinstance(output, Tensor) and output.requires_grad and gradient is not None:
                roots.append(output)
                grads.append(gradient)
        if not roots:
            raise GraphError(
                "checkpoint: none of the outputs of the checkpointed function requires grad, so there is nothing "
                "to backpropagate; at least one input or parameter used inside it must require grad"
            )
        run_backward(roots, grads, create_graph=is_grad_enabled())
        input_grads = [detached.grad if detached.requires_grad else None for detached in inputs]
        result = [None] * len(ctx.other_args)
        for position, gradient in zip(ctx.tensor_positions, input_grads):
            result[position] = gradient
        return (None, None, *result)


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)`` without keeping its activations; they are recomputed in backward.

    ``preserve_rng_state`` rewinds the CPU generator and those of the arguments' devices
    before recomputing, so random ops (dropout) repeat exactly. ``use_reentrant`` is accepted
    for PyTorch compatibility; gradflow always uses the reentrant algorithm described above.
    """
    if kwargs:
        function = functools.partial(function, **kwargs)
    if is_grad_enabled() and not any(isinstance(arg, Tensor) and arg.requires_grad for arg in args):
        # Nothing records the checkpoint then, so parameters inside it would get no gradients.
        warnings.warn(
            "checkpoint: none of the inputs has requires_grad=True, so parameters inside the checkpointed function "
            "will get no gradients; call requires_grad_() on an input",
            stacklevel=2,
        )
    return CheckpointFunction.apply(function, preserve_rng_state, *args)


def checkpoint_sequential(functions, segments: int, input, use_reentrant=None, **kwargs):
    """Run a Sequential (or list of modules/functions) in ``segments`` chunks, checkpointing all but the last.

    Only the inputs of each segment stay alive during the forward pass.
    """
    preserve_rng_state = kwargs.pop("preserve_rng_state", True)
    if kwargs:  # PyTorch's rule: the segments are called with one input, so nothing else can be passed on
        raise ArgumentValueError(
            f"checkpoint_sequential: unexpected keyword arguments: {', '.join(kwargs)}; only use_reentrant and "
            "preserve_rng_state are accepted"
        )
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if segments < 1:
        raise ArgumentValueError(f"checkpoint_sequential: segments must be at least 1, got {segments}")
    segment_size = max(len(functions) // segments, 1)

    def run_range(start: int, end: int):
        def forward(value):
            for function in functions[start : end + 1]:
                value = function(value)
            return value

        return forward

    end = -1
    value = input
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        value = checkpoint(
            run_range(start, end), value, use_reentrant=use_reentrant, preserve_rng_state=preserve_rng_state
        )
    return run_range(end + 1, len(functions) - 1)(value)
