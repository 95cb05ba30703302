"""Gradient checkpointing: identical gradients (random ops included), lower peak memory, PyTorch's limits."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import GraphError
from gradflow.utils.checkpoint import checkpoint, checkpoint_sequential
from gradflow.utils.memory import peak_memory


def _noisy_block(x, weight):
    """A block with a random mask drawn from the device's generator, like dropout."""
    hidden = (x @ weight).tanh()
    mask = (gf.rand(*hidden.shape, device=hidden.device) > 0.3).to(hidden.dtype)
    return hidden * mask / 0.7


def _grads_of(run, device):
    gf.manual_seed(3)
    x = gf.randn(4, 6, dtype=gf.float64, device=device, requires_grad=True)
    weight = gf.randn(6, 6, dtype=gf.float64, device=device, requires_grad=True)
    gf.manual_seed(11)
    out = run(x, weight)
    (out * out).sum().backward()
    after = gf.rand(3, device=device).tolist()  # the generator must continue as in the plain run
    return x.grad.cpu().numpy(), weight.grad.cpu().numpy(), after


def test_gradients_equal_the_plain_run_with_random_ops(device):
    plain = _grads_of(lambda x, w: _noisy_block(_noisy_block(x, w), w), device)
    checkpointed = _grads_of(lambda x, w: checkpoint(_noisy_block, checkpoint(_noisy_block, x, w), w), device)
    for a, b in zip(plain[:2], checkpointed[:2]):
        np.testing.assert_array_equal(a, b)
    assert plain[2] == checkpointed[2]


def test_without_preserved_rng_state_the_masks_differ(device):
    plain = _grads_of(lambda x, w: _noisy_block(x, w), device)
    unpreserved = _grads_of(lambda x, w: checkpoint(_noisy_block, x, w, preserve_rng_state=False), device)
    assert not np.array_equal(plain[1], unpreserved[1])


def test_dropout_module_inside_checkpoint_sequential():
    def run(segments):
        gf.manual_seed(5)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 16), nn.Dropout(0.5))
        x = gf.randn(4, 8, requires_grad=True)
        out = model(x) if segments is None else checkpoint_sequential(model, segments, x)
        out.sum().backward()
        return [p.grad.numpy() for p in model.parameters()] + [x.grad.numpy()]

    for a, b in zip(run(None), run(3)):
        np.testing.assert_array_equal(a, b)


def test_multiple_outputs_non_tensor_args_and_kwargs():
    def split_scale(x, factor, *, shift):
        return x * factor + shift, (x * x).sum()

    x = gf.tensor([1.0, 2.0], requires_grad=True)
    first, second = checkpoint(split_scale, x, 3.0, shift=1.0)
    (first.sum() + second).backward()
    assert x.grad.tolist() == [5.0, 7.0]


def test_autograd_grad_is_refused():
    x = gf.tensor([1.0], requires_grad=True)
    out = checkpoint(lambda t: t * t, x)
    with pytest.raises(GraphError, match="not compatible with autograd.grad"):
        gf.autograd.grad(out.sum(), x)


def test_checkpoint_sequential_segments_must_be_positive():
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(nn.Sequential(nn.ReLU()), 0, gf.ones(1))


def _peak_bytes(run, device) -> int:
    with peak_memory(device) as usage:
        run()
    return usage.peak_bytes


def test_checkpointing_lowers_peak_memory_of_a_deep_mlp(device):
    gf.manual_seed(0)
    layers = []
    for _ in range(32):
        layers += [nn.Linear(256, 256), nn.Tanh()]
    model = nn.Sequential(*layers).to(device)
    x = gf.randn(1024, 256, device=device)

    def plain():
        model(x).sum().backward()

    def checkpointed():
        checkpoint_sequential(model, 6, x.requires_grad_(True)).sum().backward()

    plain_peak = _peak_bytes(plain, device)
    model.zero_grad()
    checkpointed_peak = _peak_bytes(checkpointed, device)
    # The plain run keeps 32 activations of 1 MiB alive; with 6 segments, 5 segment inputs, the last
    # segment's activations and one recomputed segment at a time. Parameter grads (8 MiB) are in both.
    assert checkpointed_peak < 0.6 * plain_peak, (plain_peak, checkpointed_peak)


def test_warns_when_no_input_requires_grad():
    layer = nn.Linear(2, 2)
    with pytest.warns(UserWarning, match="none of the inputs has requires_grad=True"):
        checkpoint(layer, gf.ones(1, 2))


def test_peak_memory_counts_only_what_the_block_allocates():
    kept = gf.zeros(1 << 20)  # 4 MiB alive before the block: not counted
    with peak_memory("cpu") as usage:
        temporary = gf.ones(1 << 18)  # 1 MiB
        del temporary
    assert (1 << 20) <= usage.peak_bytes < (1 << 21), usage.peak_bytes
    assert kept.numel() == 1 << 20


def test_checkpoint_sequential_rejects_unknown_keywords_like_torch():
    x = gf.ones(2, requires_grad=True)
    functions = [lambda v: v * 2, lambda v: v + 1]
    with pytest.raises(ValueError, match="unexpected keyword arguments: foo"):
        checkpoint_sequential(functions, 2, x, use_reentrant=True, foo=1)
    out = checkpoint_sequential(functions, 2, x, use_reentrant=True, preserve_rng_state=False)
    out.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
