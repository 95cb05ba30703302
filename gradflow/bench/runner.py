"""``compare``: time real training steps of one model on several devices and batch sizes.

Each cell (framework, device, batch size) builds a fresh model and optimizer, runs ``warmup``
untimed steps, then ``steps`` timed ones, each split into three phases:

- forward: the model and the loss;
- backward: ``loss.backward()``;
- optimizer: ``optimizer.step()`` then ``optimizer.zero_grad()`` (zero_grad is included here).

On CUDA the phases are timed with CUDA events (one synchronisation per step), on the CPU with
``time.perf_counter``. After the timed steps one more, untimed, step runs inside
``gradflow.utils.memory.peak_memory`` to measure the peak memory the step allocates above what
was live before it (activations, gradients, temporaries; not the parameters or the optimizer
state): NumPy buffers through ``tracemalloc`` on the CPU, the CuPy pool's allocations on a GPU.
That step is kept out of the timing because tracing slows every allocation.
"""

from __future__ import annotations

import statistics

from .. import dtypes
from ..device import device as as_device
from ..errors import ArgumentValueError
from ..nn.functional import cross_entropy
from ..optim import Adam
from ..profiler import profile
from ..utils.memory import peak_memory
from .flops import training_step_flops
from .result import BenchResult, Cell
from .timing import gradflow_timer, torch_timer

__all__ = ["compare"]

PHASES = ("forward", "backward", "optimizer")
HALF_ON_CPU = (
    "float16 is not benchmarked on the CPU: NumPy and torch have no fast half-precision matmul there; use float32"
)


def _default_loss(output, target):
    return cross_entropy(output, target)


def _default_optimizer(params):
    return Adam(params, lr=1e-3)


def _summary(seconds: list[float]) -> dict:
    """Median, quartiles and extremes in milliseconds."""
    ms = sorted(value * 1e3 for value in seconds)
    if len(ms) >= 2:
        q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    else:
        q1 = q3 = ms[0]
    return {"median_ms": statistics.median(ms), "q1_ms": q1, "q3_ms": q3, "min_ms": ms[0], "max_ms": ms[-1]}


def _is_out_of_memory(error: BaseException) -> bool:
    # gradflow's and CuPy's errors subclass MemoryError; torch.cuda.OutOfMemoryError is a RuntimeError
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"


def _time_steps(step, timer, warmup: int, steps: int) -> dict:
    for _ in range(warmup):
        step(timer)
    samples = [step(timer) for _ in range(steps)]
    phases = {name: _summary([sample[i] for sample in samples]) for i, name in enumerate(PHASES)}
    phases["total"] = _summary([sum(sample) for sample in samples])
    return phases


def _prepare(lib, model_fn, input_fn, optimizer_fn, device, batch_size, dtype):
    """A fresh model on ``device`` in ``dtype`` (named in ``lib``: gradflow.dtypes or torch), its optimizer, and one
    batch: ``(model, optimizer, inputs as a tuple of model arguments, targets)``."""
    model = model_fn().to(device=device, dtype=getattr(lib, dtype))
    optimizer = optimizer_fn(list(model.parameters()))
    inputs, targets = input_fn(batch_size, device)
    return model, optimizer, (inputs if isinstance(inputs, tuple) else (inputs,)), targets


def _phased_step(model, optimizer, loss_fn, inputs, targets):
    """``step(timer)``: one training step, the timer marking the end of each of ``PHASES``."""

    def step(timer):
        timer.start()
        loss = loss_fn(model(*inputs), targets)
        timer.mark()
        loss.backward()
        timer.mark()
        optimizer.step()
        optimizer.zero_grad()
        timer.mark()
        return timer.phases()

    return step


def _gradflow_cell(model_fn, input_fn, loss_fn, optimizer_fn, device, batch_size, dtype, warmup, steps, flops):
    model, optimizer, inputs, targets = _prepare(dtypes, model_fn, input_fn, optimizer_fn, device, batch_size, dtype)
    step = _phased_step(model, optimizer, loss_fn, inputs, targets)
    phases = _time_steps(step, gradflow_timer(device), warmup, steps)
    with peak_memory(device) as usage:
        step(gradflow_timer(device))
    if flops is None:
        flops = training_step_flops(model, *inputs)
    measure = "tracemalloc (NumPy buffers)" if device.type == "cpu" else "CuPy memory pool allocations"
    return phases, usage.peak_bytes, measure, flops


def _torch_cell(model_fn, input_fn, loss_fn, optimizer_fn, device_name, batch_size, dtype, warmup, steps):
    import torch

    device = torch.device(device_name)
    optimizer_fn = optimizer_fn or (lambda params: torch.optim.Adam(params, lr=1e-3))
    model, optimizer, inputs, targets = _prepare(torch, model_fn, input_fn, optimizer_fn, device, batch_size, dtype)
    step = _phased_step(model, optimizer, loss_fn or torch.nn.functional.cross_entropy, inputs, targets)
    phases = _time_steps(step, torch_timer(device), warmup, steps)
    if device.type != "cuda":
        return phases, None, "not measured (torch's CPU allocator is invisible to tracemalloc)"
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step(torch_timer(device))
    torch.cuda.synchronize(device)
    return phases, torch.cuda.max_memory_allocated(device) - before, "torch.cuda.max_memory_allocated"


def _torch_unavailable(device_name: str) -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed: pip install torch"
    if device_name.startswith("cuda") and not torch.cuda.is_available():
        return f"this torch build ({torch.__version__}) cannot use CUDA here"
    return None


def _resolve(spec: str):
    """(Device, None) or (None, the reason it cannot be used)."""
    try:
        return as_device(spec), None
    except (ValueError, RuntimeError, TypeError) as error:  # unknown string, DeviceUnavailableError
        return None, str(error)


def compare(
    model_fn,
    input_fn,
    loss_fn=None,
    devices=("cpu", "cuda"),
    batch_sizes=(16, 64, 256, 1024),
    steps: int = 20,
    warmup: int = 3,
    optimizer=None,
    dtype: str = "float32",
    baseline: str | None = None,
    flops_fn=None,
    progress: bool = True,
    profile: bool = False,
    baseline_fns=None,
) -> BenchResult:
    """Time training steps of ``model_fn()`` on each device and batch size; return a ``BenchResult``.

    ``model_fn()`` builds a fresh gradflow ``nn.Module`` (on the CPU; it is moved with ``.to``),
    ``input_fn(batch_size, device)`` returns ``(inputs, targets)`` on that device (``inputs`` may
    be a tuple of model arguments), ``loss_fn(output, target)`` a scalar (default cross-entropy),
    ``optimizer(params)`` an Optimizer (default Adam, lr 1e-3). ``flops_fn(batch_size)`` overrides
    the counted FLOPs of one step. A device that cannot be used, and a cell that runs out of
    memory, are recorded with the reason; the other cells still run.

    ``baseline="torch"`` runs the same step in PyTorch on the same devices; the torch model and
    inputs come from ``baseline_fns=(torch_model_fn, torch_input_fn[, torch_loss_fn[, torch_optimizer_fn]])``
    (a custom ``loss_fn`` or ``optimizer`` needs its torch twin there), or, for
    the built-in workloads, from ``model_fn``'s and ``input_fn``'s ``torch_*`` twins.

    >>> import gradflow as gf
    >>> result = gf.bench.compare(lambda: gf.nn.Linear(8, 3),
    ...     lambda n, device: (gf.randn(n, 8, device=device), gf.randint(0, 3, (n,), device=device)),
    ...     devices=("cpu",), batch_sizes=(4,), steps=2, warmup=1, progress=False)
    >>> result.cell("gradflow", "cpu", 4)["status"]
    'ok'
    """
    _check_arguments(batch_sizes, steps, warmup, dtype, baseline)
    torch_fns = _torch_fns(model_fn, input_fn, baseline, baseline_fns, loss_fn is not None, optimizer is not None)
    loss_fn = loss_fn or _default_loss
    optimizer_fn = optimizer or _default_optimizer
    frameworks = ["gradflow"] + (["torch"] if baseline else [])
    cells: list[Cell] = []
    profiles: dict[str, str] = {}
    flops_by_batch: dict[int, int] = {}
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal (and in notebooks), none in logs, where each redraw would be a line.
    cells_total = len(frameworks) * len(devices) * len(batch_sizes)
    bar = tqdm(total=cells_total, disable=None if progress else True, unit="cell")
    for spec in devices:
        device, reason = _resolve(spec)
        name = str(device) if device is not None else str(spec)
        for framework in frameworks:
            for batch_size in batch_sizes:
                bar.set_description(f"{framework} {name} batch {batch_size}")
                cell = Cell(framework, name, batch_size)
                cells.append(cell)
                bar.update(1)
                why = reason or (HALF_ON_CPU if dtype == "float16" and device.type == "cpu" else None)
                if why is None and framework == "torch":
                    why = _torch_unavailable(name)
                if why is not None:
                    cell.unavailable(why)
                    continue
                try:
                    if framework == "gradflow":
                        flops = flops_fn(batch_size) if flops_fn else flops_by_batch.get(batch_size)
                        phases, peak, measure, flops = _gradflow_cell(
                            model_fn, input_fn, loss_fn, optimizer_fn, device, batch_size, dtype, warmup, steps, flops
                        )
                        flops_by_batch[batch_size] = flops
                    else:
                        phases, peak, measure = _torch_cell(*torch_fns, name, batch_size, dtype, warmup, steps)
                        flops = flops_by_batch.get(batch_size)
                except Exception as error:
                    if not _is_out_of_memory(error):
                        raise
                    cell.out_of_memory(f"{type(error).__name__}: {error}")
                    continue
                finally:
                    _release(device)
                cell.measured(phases, peak, measure, flops)
        if profile and device is not None and not (dtype == "float16" and device.type == "cpu"):
            profiles[name] = _profile_one_step(model_fn, input_fn, loss_fn, optimizer_fn, device, batch_sizes[0], dtype)
    bar.close()
    return BenchResult(cells, dtype=dtype, steps=steps, warmup=warmup, profiles=profiles)


def _check_arguments(batch_sizes, steps, warmup, dtype, baseline) -> None:
    if not batch_sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise ArgumentValueError(f"compare: batch_sizes must be positive integers, got {tuple(batch_sizes)!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ArgumentValueError(f"compare: steps must be an integer >= 1, got {steps!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ArgumentValueError(f"compare: warmup must be an integer >= 0, got {warmup!r}")
    if dtype not in ("float32", "float16", "float64", "bfloat16"):
        raise ArgumentValueError(f"compare: dtype must be 'float32', 'float16', 'bfloat16' or 'float64', got {dtype!r}")
    if baseline not in (None, "torch"):
        raise ArgumentValueError(f"compare: baseline must be None or 'torch', got {baseline!r}")


def _torch_fns(model_fn, input_fn, baseline, baseline_fns, custom_loss: bool, custom_optimizer: bool):
    """(torch_model_fn, torch_input_fn, torch_loss_fn or None, torch_optimizer_fn or None) for the baseline.

    A custom ``loss_fn`` or ``optimizer`` needs its torch twin: timing gradflow's step against a
    different torch step (cross-entropy, Adam) would give a ratio of two different things.
    """
    if baseline is None:
        return None
    fns = tuple(baseline_fns) if baseline_fns is not None else ()
    fns = fns + (None,) * (4 - len(fns))
    for custom, index, what in ((custom_loss, 2, "loss_fn"), (custom_optimizer, 3, "optimizer")):
        if custom and fns[index] is None:
            raise ArgumentValueError(
                f"compare: a custom {what}= with baseline='torch' needs its torch twin, or the ratio would compare "
                "different steps: pass baseline_fns=(torch_model_fn, torch_input_fn, torch_loss_fn, torch_optimizer_fn)"
            )
    if baseline_fns is not None:
        return fns
    torch_model_fn = getattr(getattr(model_fn, "__self__", None), "torch_model_fn", None)
    torch_input_fn = getattr(getattr(input_fn, "__self__", None), "torch_input_fn", None)
    if torch_model_fn is None or torch_input_fn is None:
        raise ArgumentValueError(
            "compare: baseline='torch' needs the torch version of the model: pass "
            "baseline_fns=(torch_model_fn, torch_input_fn) (or use a built-in gradflow.bench.models.workload)"
        )
    return torch_model_fn, torch_input_fn, fns[2], fns[3]


def _release(device) -> None:
    """Return a GPU cell's memory to the driver, so one cell's pool does not crowd the next."""
    if device is None or device.type != "cuda":
        return
    import cupy

    device.backend.synchronize()
    cupy.get_default_memory_pool().free_all_blocks()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _profile_one_step(model_fn, input_fn, loss_fn, optimizer_fn, device, batch_size, dtype) -> str:
    """gradflow.profiler's report of one training step (after one warm-up step) on ``device``."""
    model, optimizer, inputs, targets = _prepare(dtypes, model_fn, input_fn, optimizer_fn, device, batch_size, dtype)

    def step():
        loss_fn(model(*inputs), targets).backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # the first step allocates the optimizer state: keep it out of the report
    with profile(steps=1) as recorded:
        step()
        device.backend.synchronize()
    return recorded.report()
