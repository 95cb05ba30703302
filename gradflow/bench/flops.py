"""Counted FLOPs of one training step, from the shapes a forward pass actually sees.

Forward hooks on the layers that do the arithmetic (Linear, Conv1d/Conv2d, MultiheadAttention)
read their input and output shapes during one forward pass under ``no_grad`` and count the
multiply-adds of their matrix products as 2 FLOPs each:

- Linear: ``2 * in_features * out_features`` per row of the input;
- Conv: ``2 * (C_in / groups) * prod(kernel) * C_out`` per output position and sample;
- MultiheadAttention: the q/k/v and output projections, ``Q K^T`` and ``softmax(.) V``.

Element-wise work (activations, norms, softmax, the loss) is not counted: it is a few percent
of these models' arithmetic, and the convention of FLOP counts is to leave it out. The backward
pass is counted as twice the forward (a gradient for the input and one for the weights per
product), so a training step is 3x the forward.
"""

from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..nn.modules.conv import Conv1d, Conv2d
from ..nn.modules.linear import Linear
from ..nn.modules.transformer import MultiheadAttention

__all__ = ["forward_flops", "training_step_flops"]

BACKWARD_FACTOR = 2


def _numel(shape) -> int:
    return math.prod(int(size) for size in shape)


def _linear(module, args, output) -> int:
    rows = _numel(args[0].shape) // module.in_features
    return 2 * rows * module.in_features * module.out_features


def _conv(module, args, output) -> int:
    per_output = 2 * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    return per_output * _numel(output.shape)


def _attention(module, args, output) -> int:
    query, key = args[0], args[1]
    embed = module.embed_dim
    # (L, N, E), (N, L, E) with batch_first, or unbatched (L, E): the key's sequence axis follows suit
    seq_axis = 1 if (module.batch_first and key.ndim == 3) else 0
    query_tokens = _numel(query.shape) // query.shape[-1]
    key_tokens = _numel(key.shape) // key.shape[-1]
    key_length = int(key.shape[seq_axis])
    projections = 2 * embed * (query_tokens * (query.shape[-1] + embed) + key_tokens * (module.kdim + module.vdim))
    scores_and_mix = 2 * 2 * query_tokens * key_length * embed
    return projections + scores_and_mix


_COUNTERS = ((Linear, _linear), ((Conv1d, Conv2d), _conv), (MultiheadAttention, _attention))


def forward_flops(model, *inputs) -> int:
    """FLOPs of ``model(*inputs)`` counted from its Linear, Conv and attention layers (one no_grad forward)."""
    total = [0]
    handles = []
    for module in model.modules():
        for kinds, counter in _COUNTERS:
            if isinstance(module, kinds):

                def hook(mod, args, output, counter=counter):
                    total[0] += counter(mod, args, output)

                handles.append(module.register_forward_hook(hook))
                break
    try:
        with no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def training_step_flops(model, *inputs) -> int:
    """FLOPs of one training step: the counted forward plus a backward of twice that."""
    return (1 + BACKWARD_FACTOR) * forward_flops(model, *inputs)
