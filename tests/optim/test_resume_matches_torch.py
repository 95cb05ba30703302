"""Training state saved with gradflow.save and resumed in fresh objects continues exactly as PyTorch's run.

A CNN trained with Adam + OneCycleLR, then SGD + warm-up/MultiStepLR (SequentialLR), checkpointed
mid-schedule and resumed; and MultiStepLR's closed form after its state went through a checkpoint
(its milestones must come back as a Counter, not a dict).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradflow as gf
from gradflow import optim
from gradflow.optim import lr_scheduler

torch = pytest.importorskip("torch")

BATCH, SAMPLES = 8, 32
ADAM_STEPS, SGD_STEPS, RESUME_AT = 12, 16, 5  # SGD's warm-up ends at 6 and MultiStepLR cuts at 4 and 7 after it


def _data():
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((SAMPLES, 1, 6, 6)).astype(np.float32)
    targets = rng.integers(0, 3, SAMPLES)
    order = rng.permutation(SAMPLES).tolist()  # one fixed data order for both frameworks
    return inputs, targets, order


def _cnn(module_lib):
    # No conv bias before BatchNorm: its exact gradient is 0, and Adam would amplify rounding noise in it.
    return module_lib.Sequential(
        module_lib.Conv2d(1, 3, 3, padding=1, bias=False),
        module_lib.BatchNorm2d(3),
        module_lib.ReLU(),
        module_lib.Dropout(p=0.0),
        module_lib.MaxPool2d(2),
        module_lib.Flatten(),
        module_lib.Linear(27, 3),
    )


def _sgd_phase(lib, model):
    """SGD with Nesterov momentum and weight decay; a linear warm-up, then MultiStepLR (SequentialLR)."""
    opt_lib = optim if lib is gf else torch.optim
    sched_lib = lr_scheduler if lib is gf else torch.optim.lr_scheduler
    optimizer = opt_lib.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    warmup = sched_lib.LinearLR(optimizer, start_factor=0.2, total_iters=6)
    decay = sched_lib.MultiStepLR(optimizer, milestones=[4, 7, 7], gamma=0.5)
    return optimizer, sched_lib.SequentialLR(optimizer, [warmup, decay], milestones=[6])


def _train(lib, model, optimizer, scheduler, batches, losses):
    functional = gf.nn.functional if lib is gf else torch.nn.functional
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())


def _batches(lib, inputs, targets, order, count, start):
    as_tensor = gf.tensor if lib is gf else torch.tensor
    for step in range(start, start + count):
        index = [order[(step * BATCH + i) % SAMPLES] for i in range(BATCH)]
        yield as_tensor(inputs[index]), as_tensor(targets[index])


def _torch_run(inputs, targets, order, initial_state):
    model = _cnn(torch.nn)
    model.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in initial_state.items()})
    losses: list[float] = []
    adam = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(adam, max_lr=0.02, total_steps=ADAM_STEPS)
    _train(torch, model, adam, one_cycle, _batches(torch, inputs, targets, order, ADAM_STEPS, 0), losses)
    optimizer, scheduler = _sgd_phase(torch, model)
    _train(torch, model, optimizer, scheduler, _batches(torch, inputs, targets, order, SGD_STEPS, ADAM_STEPS), losses)
    return model, scheduler, losses


def test_cnn_training_resumed_from_a_checkpoint_mid_schedule_matches_torch(tmp_path):
    """Adam + OneCycleLR, then SGD (Nesterov, weight decay) + warm-up/MultiStepLR, checkpointed with gradflow.save
    before the warm-up ends and resumed in fresh objects: every loss and the final state equal torch's run.

    Before the fix the resumed SequentialLR reached its milestone with a MultiStepLR whose milestones came back
    from the checkpoint as a dict, and the closed form raised AttributeError ('dict' has no 'elements').
    """
    inputs, targets, order = _data()
    gf.manual_seed(0)
    model = _cnn(gf.nn)
    initial_state = {name: value.numpy().copy() for name, value in model.state_dict().items()}
    torch_model, torch_scheduler, torch_losses = _torch_run(inputs, targets, order, initial_state)

    losses: list[float] = []
    adam = optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    one_cycle = lr_scheduler.OneCycleLR(adam, max_lr=0.02, total_steps=ADAM_STEPS)
    _train(gf, model, adam, one_cycle, _batches(gf, inputs, targets, order, ADAM_STEPS, 0), losses)
    optimizer, scheduler = _sgd_phase(gf, model)
    _train(gf, model, optimizer, scheduler, _batches(gf, inputs, targets, order, RESUME_AT, ADAM_STEPS), losses)

    path = tmp_path / "train.safetensors"
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "extra": {"step": ADAM_STEPS + RESUME_AT, "best": min(losses), "note": None, "done": False, "hist": [[1, 2.5]]},
    }
    gf.save(checkpoint, path)
    loaded = gf.load(path)
    assert loaded["extra"] == checkpoint["extra"]
    assert loaded["model"]["1.num_batches_tracked"].dtype == gf.int64
    for name, value in checkpoint["model"].items():
        assert loaded["model"][name].numpy().tobytes() == value.numpy().tobytes(), name

    gf.manual_seed(1)  # different initial weights: everything must come from the checkpoint
    resumed = _cnn(gf.nn)
    resumed.load_state_dict(loaded["model"])
    resumed_optimizer, resumed_scheduler = _sgd_phase(gf, resumed)
    resumed_optimizer.load_state_dict(loaded["optimizer"])
    resumed_scheduler.load_state_dict(loaded["scheduler"])
    remaining = SGD_STEPS - RESUME_AT
    batches = _batches(gf, inputs, targets, order, remaining, ADAM_STEPS + RESUME_AT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "scheduler before optimizer" warning from the resumed objects
        _train(gf, resumed, resumed_optimizer, resumed_scheduler, batches, losses)

    assert resumed_scheduler.get_last_lr() == torch_scheduler.get_last_lr()
    np.testing.assert_allclose(losses, torch_losses, rtol=2e-5, atol=2e-6)
    torch_state = torch_model.state_dict()
    for name, value in resumed.state_dict().items():
        np.testing.assert_allclose(value.numpy(), torch_state[name].numpy(), rtol=1e-4, atol=2e-5, err_msg=name)


def test_multistep_closed_form_survives_a_gradflow_checkpoint(tmp_path):
    """``MultiStepLR.step(epoch)`` after its state went through gradflow.save/load gives torch's closed form.

    Before the fix ``milestones`` came back as a dict and ``step(epoch)`` raised AttributeError.
    """
    params = [gf.zeros(2, requires_grad=True)]
    optimizer = optim.SGD(params, lr=1.0)
    scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4, 4], gamma=0.5)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    gf.save(scheduler.state_dict(), tmp_path / "sched.safetensors")

    restored = lr_scheduler.MultiStepLR(optim.SGD([gf.zeros(2, requires_grad=True)], lr=1.0), milestones=[9])
    restored.load_state_dict(gf.load(tmp_path / "sched.safetensors"))
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    torch_scheduler = torch.optim.lr_scheduler.MultiStepLR(torch_optimizer, milestones=[2, 4, 4], gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecated epoch argument warns, in both libraries
        for epoch in (5, 3, 1):
            restored.step(epoch)
            torch_scheduler.step(epoch)
            assert restored.get_last_lr() == torch_scheduler.get_last_lr()
    assert restored.milestones == torch_scheduler.milestones
