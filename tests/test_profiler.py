"""gradflow.profiler: op names and counts of a training step, steps, nesting, off means off. No timings asserted."""

from __future__ import annotations

import json
import threading

import pytest

import gradflow as gf
from gradflow import profiler
from gradflow.autograd import function
from gradflow.backends import kernels

STEP_OPS = {
    ("Linear", "forward"): 2,
    ("Relu", "forward"): 1,
    ("SoftmaxCrossEntropy", "forward"): 1,
    ("SoftmaxCrossEntropyBackward", "backward"): 1,
    ("LinearBackward", "backward"): 2,
    ("ReluBackward", "backward"): 1,
}


def _training_setup(device):
    gf.manual_seed(0)
    model = gf.nn.Sequential(gf.nn.Linear(4, 8), gf.nn.ReLU(), gf.nn.Linear(8, 3)).to(device)
    optimizer = gf.optim.Adam(model.parameters(), lr=1e-2)
    inputs = gf.randn(5, 4, device=device)
    target = gf.tensor([0, 1, 2, 0, 1], device=device)

    def step():
        loss = gf.nn.functional.cross_entropy(model(inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def _counts(prof) -> dict:
    return {(row.name, row.kind): row.count for row in prof.key_averages()}


def test_training_step_records_each_forward_and_backward_op_once_per_call(device):
    step = _training_setup(device)
    with profiler.profile() as prof:
        for _ in range(3):
            step()
            prof.step()
    counts = _counts(prof)
    for key, per_step in STEP_OPS.items():
        assert counts.get(key) == 3 * per_step, key
    summary = prof.summary()
    assert summary.steps == 3
    linear = next(row for row in prof.key_averages() if row.name == "Linear")
    assert summary.per_step(linear.count) == 2
    for row in prof.key_averages():
        assert row.count >= 1 and 0.0 <= row.host_self <= row.host_total + 1e-12
        assert row.devices == [str(device)] or row.kind == "range"
    # the backward formulas' own ops are recorded too, nested under their node
    assert any(kind == "forward" and name not in ("Linear", "Relu", "SoftmaxCrossEntropy") for name, kind in counts)
    assert function.profiler_hook is None and kernels.launch_hook is None


def test_optimizer_step_is_recorded_as_a_range_named_after_the_optimizer():
    step = _training_setup("cpu")
    with profiler.profile(steps=2) as prof:
        step()
        step()
    assert _counts(prof)[("Adam.step", "range")] == 2


def test_steps_argument_divides_the_per_step_figures():
    step = _training_setup("cpu")
    with profiler.profile(steps=2) as prof:
        step()
        step()
    assert prof.steps == 2
    assert prof.to_dict()["summary"]["per_step_unit"] == "training step"
    with pytest.raises(ValueError, match="steps must be a positive int"):
        profiler.profile(steps=0)


def test_without_steps_the_figures_cover_the_whole_profile():
    with profiler.profile() as prof:
        gf.ones(3) * 2
    assert prof.steps is None
    assert prof.to_dict()["summary"]["per_step_unit"].startswith("whole profile")
    assert "no steps marked" in prof.report()


def test_report_lists_the_top_ops_and_labels_missing_device_time():
    step = _training_setup("cpu")
    with profiler.profile() as prof:
        step()
        prof.step()
    text = prof.report(top=50)
    for name in ("LinearBackward", "SoftmaxCrossEntropy", "Relu"):
        assert name in text
    assert "device time: absent" in text
    assert "kernel launches per step: 0" in text
    short = prof.report(top=1)
    top_name = prof.key_averages()[0].name
    assert top_name in short
    dropped = [row.name for row in prof.key_averages()[1:] if row.name not in top_name]
    assert dropped and not any(f" {name} " in short for name in dropped)
    assert prof.table(top=3).row_count == 3


def test_to_dict_is_json_ready_and_has_no_device_figures_on_cpu():
    with profiler.profile() as prof:
        (gf.ones(3, requires_grad=True) * 2).sum().backward()
    data = json.loads(json.dumps(prof.to_dict()))
    assert data["summary"]["device_timing"] is False and data["summary"]["host_overhead_share"] is None
    names = {op["name"] for op in data["ops"]}
    assert {"Mul", "Sum", "MulBackward", "SumBackward"} <= names
    assert all(op["device_total"] is None for op in data["ops"])


def test_ops_outside_the_profile_or_with_it_disabled_are_not_recorded():
    x = gf.ones(3)
    with profiler.profile() as prof:
        x + 1
    x * 2  # after the block: not recorded
    assert _counts(prof) == {("Add", "forward"): 1}
    with profiler.profile(enabled=False) as off:
        assert function.profiler_hook is None
        x + 1
    assert "disabled" in off.report()
    with pytest.raises(RuntimeError, match="disabled"):
        off.key_averages()


def test_nested_profile_records_its_ops_and_hands_them_to_the_outer_one():
    x = gf.ones(3)
    with profiler.profile() as outer:
        x + 1
        with profiler.profile() as inner:
            x * 2
            x * 3
        assert function.profiler_hook is not None  # the outer one records again
        x - 1
    assert _counts(inner) == {("Mul", "forward"): 2}
    assert _counts(outer) == {("Add", "forward"): 1, ("Mul", "forward"): 2, ("Sub", "forward"): 1}
    assert function.profiler_hook is None


def test_an_op_that_raises_is_dropped_and_later_ops_still_nest_correctly():
    with profiler.profile() as prof:
        with profiler.record_function("block"):
            with pytest.raises(gf.errors.ShapeError):
                gf.ones(2, 3) + gf.ones(4, 5)
            gf.ones(2) * 2
    counts = _counts(prof)
    assert counts[("block", "range")] == 1 and counts[("Mul", "forward")] == 1
    block = next(row for row in prof.key_averages() if row.name == "block")
    assert block.host_self <= block.host_total


def test_an_op_that_raises_outside_any_range_leaves_later_ops_at_the_top_level():
    # The raising op's frame must not stay open: later ops would nest under it and their host
    # time would be missing from the summary's host time in ops.
    with profiler.profile() as prof:
        with pytest.raises(gf.errors.ShapeError):
            gf.ones(2, 3) + gf.ones(4, 5)
        gf.ones(2) * 2
    mul = next(row for row in prof.key_averages() if row.name == "Mul")
    assert prof.summary().host_in_ops == pytest.approx(mul.host_total)


def test_a_backward_that_raises_leaves_later_ops_at_the_top_level():
    class Broken(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad_output):
            raise ArithmeticError("broken backward")

    x = gf.ones(2, requires_grad=True)
    with profiler.profile() as prof:
        y = Broken.apply(x).sum()
        with pytest.raises(ArithmeticError):
            y.backward()
        gf.ones(2) * 2
    top_level = sum(
        row.host_total for row in prof.key_averages() if row.name in ("Broken", "Sum", "SumBackward", "Mul")
    )
    assert prof.summary().host_in_ops == pytest.approx(top_level)


def test_other_threads_are_not_recorded():
    with profiler.profile() as prof:
        worker = threading.Thread(target=lambda: gf.ones(3) * 2)
        worker.start()
        worker.join()
        gf.ones(3) + 1
    assert _counts(prof) == {("Add", "forward"): 1}


def test_gradflow_kernel_launches_are_counted_exactly_and_charged_to_the_running_op():
    with profiler.profile(steps=2) as prof:
        with profiler.record_function("fused"):
            kernels.launch_hook("softmax", "gf_softmax_forward<float>")
            kernels.launch_hook("softmax", "gf_softmax_forward<float>")
    assert prof.summary().gradflow_kernel_launches == 2
    assert prof.summary().kernel_launches_per_step["gradflow_kernels_exact"] == 1
    assert prof.key_averages()[0].gradflow_kernel_launches == 2


def test_key_averages_refuses_an_unknown_sort_key_and_sorts_by_the_asked_one():
    with profiler.profile() as prof:
        for _ in range(3):
            gf.ones(2) * 2
        gf.ones(2) + 1
    assert prof.key_averages(sort_by="count")[0].name == "Mul"
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages(sort_by="speed")


def test_results_before_the_block_ends_are_refused():
    prof = profiler.profile()
    with pytest.raises(RuntimeError, match="has not finished"):
        prof.summary()


@pytest.mark.cuda
def test_cuda_ops_get_device_time_from_events_and_an_overhead_share():
    step = _training_setup("cuda")
    step()  # warm-up: CuPy compiles its kernels on first use
    with profiler.profile() as prof:
        for _ in range(2):
            step()
            prof.step()
    summary = prof.summary()
    assert summary.device_timing and summary.device_busy > 0
    assert 0.0 <= summary.host_overhead_share <= 1.0
    assert summary.estimated_cupy_launches > 0
    linear = next(row for row in prof.key_averages() if row.name == "Linear")
    assert linear.device_total > 0 and linear.device_mean > 0 and linear.devices == ["cuda:0"]
    assert "device busy" in prof.report() and "estimated" in prof.report()
