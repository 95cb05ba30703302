"""gradflow's CUDA kernels against the memory ceiling and against torch, on one GPU, in one run.

Sections, each guarded (a failure records ``{"error": ...}`` and the run goes on):

1. ``copy``: device-to-device copy of a 1 GiB buffer, bytes read + written per second:
   the ceiling every memory-bound kernel is held against.
2. ``adam``: ``gradflow.optim.Adam.step()`` (one launch of the fused kernel) over 64M
   float32 parameters in 100 tensors, at 28 bytes per parameter (read p, g, m, v; write
   p, m, v), against ``torch.optim.Adam(fused=True)`` and ``(foreach=True)``, each through
   its ``optimizer.step()``. Targets: >= 80% of copy bandwidth, faster than torch.
3. ``rowwise``: softmax, cross-entropy and layer norm (forward and backward separately),
   and GELU, at (4096 x 4096) and (65536 x 1024) float32: bandwidth from the
   minimal bytes each kernel must move, against torch's kernels.
   Targets: >= 70% of copy bandwidth, no slower than torch.
4. ``mlp``: one training step of an MLP 784-1024-1024-10 at batch 128 with Adam, gradflow
   against torch, both eager on the GPU (``mlp_gpu.py``). Target: <= 1.5x torch.

Timing: CUDA events around a batch of calls, the median over batches of the per-call
time, after warm-up. Before each batch a one-thread kernel spins on the GPU clock so
the host can queue the whole batch: the events then time the GPU's work, not Python's
launch overhead (batches where the host still fell behind are counted in
``host_bound_batches``). Inputs rotate among several buffers so the 50 MB L2 of an
H100 does not serve them. Every number goes to JSON with the device it ran on.

The timer, environment record and results table live in ``kernels_gpu_common.py``.

Run:  PYTHONPATH=. python3 benchmarks/kernels_gpu.py [--json out.json] [--quick] [--sections copy,adam]
      PYTHONPATH=. python3 benchmarks/kernels_gpu.py --env-only out.json   (the environment record only)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # gradflow from the source tree; helpers and mlp_gpu beside this file

from kernels_gpu_common import (  # noqa: E402 - found through the path set just above
    ADAM_BYTES_PER_PARAM,
    ADAM_PARAMS,
    ADAM_TENSORS,
    COPY_BYTES,
    ROTATE,
    ROW_SHAPES,
    SECTIONS,
    TARGETS,
    GpuTimer,
    _error,
    _free,
    _guard,
    bandwidth,
    environment,
    format_table,
    headlines,
    write_json,
)


def section_copy(cupy, timer: GpuTimer) -> dict:
    """The copy ceiling: cudaMemcpy device-to-device and CuPy's elementwise copy; the faster counts."""
    src = cupy.ones(COPY_BYTES // 4, dtype=cupy.float32)
    dst = cupy.empty_like(src)
    moved = 2 * COPY_BYTES  # every byte read once and written once
    out = {"buffer_bytes": COPY_BYTES, "bytes_per_call": moved}
    out["memcpy"] = _guard(timer.measure, lambda i: dst.data.copy_from_device_async(src.data, COPY_BYTES), 4, 9)
    out["copyto"] = _guard(timer.measure, lambda i: cupy.copyto(dst, src), 4, 9)
    rates = [bandwidth(moved, out[k].get("median_ms")) for k in ("memcpy", "copyto") if "median_ms" in out[k]]
    if not rates:
        raise RuntimeError("neither copy could be timed; see memcpy and copyto")
    for key in ("memcpy", "copyto"):
        if "median_ms" in out[key]:
            out[key]["gb_per_s"] = bandwidth(moved, out[key]["median_ms"])
    out["gb_per_s"] = max(rates)
    src = dst = None  # release the 2 GiB before the next section
    _free(cupy)
    return out


def adam_sizes(total: int = ADAM_PARAMS, count: int = ADAM_TENSORS) -> list[int]:
    """``count`` tensor sizes summing to ``total``, uneven (none a multiple of a block size by design)."""
    weights = np.random.default_rng(0).uniform(0.25, 1.75, count)
    sizes = np.floor(weights / weights.sum() * total).astype(np.int64) | 1  # odd sizes
    sizes[-1] += total - sizes.sum()
    return [int(s) for s in sizes]


def section_adam(cupy, timer: GpuTimer, copy_gbps: float | None) -> dict:
    """Fused Adam over 64M float32 parameters: gradflow's Adam.step (one kernel launch), torch fused/foreach."""
    import gradflow

    sizes = adam_sizes()
    moved = ADAM_BYTES_PER_PARAM * sum(sizes)
    gradflow.manual_seed(0)
    params = [gradflow.randn(n, device="cuda") for n in sizes]
    for param in params:
        param.grad = gradflow.randn(param.numel(), device="cuda")
    optimizer = gradflow.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    out = {"params": sum(sizes), "tensors": len(sizes), "bytes_per_call": moved}
    out["gradflow_fused"] = _guard(timer.measure, lambda i: optimizer.step(), 10, 11)
    params = optimizer = None  # release 1 GiB before torch allocates its copy
    _free(cupy)
    torch_results = _guard(_torch_adam, timer, sizes)
    out.update({"torch_fused": torch_results} if "error" in torch_results else torch_results)
    for key in ("gradflow_fused", "torch_fused", "torch_foreach"):
        entry = out.get(key, {})
        if "median_ms" in entry:
            entry["gb_per_s"] = bandwidth(moved, entry["median_ms"])
            entry["fraction_of_copy"] = entry["gb_per_s"] / copy_gbps if copy_gbps else None
    mine, theirs = out["gradflow_fused"].get("median_ms"), out.get("torch_fused", {}).get("median_ms")
    out["speedup_vs_torch_fused"] = theirs / mine if mine and theirs else None
    return out


def _torch_adam(timer: GpuTimer, sizes: list[int]) -> dict:
    try:
        import torch

        if not torch.cuda.is_available():
            return {"torch_fused": {"error": "torch has no CUDA here"}}
    except Exception as exc:
        return {"torch_fused": _error(exc)}
    params = [torch.randn(n, device="cuda") for n in sizes]
    for param in params:
        param.grad = torch.randn(param.numel(), device="cuda")
    out = {}
    for key, options in (("torch_fused", {"fused": True}), ("torch_foreach", {"foreach": True})):
        optimizer = torch.optim.Adam(params, lr=1e-3, **options)
        out[key] = _guard(timer.measure, lambda i, o=optimizer: o.step(), 10, 11, 3, "torch")
        del optimizer
        torch.cuda.empty_cache()
    return out


def _to_torch(array):
    """A torch view of a CuPy array (DLPack, no copy)."""
    import torch

    try:
        return torch.from_dlpack(array)
    except Exception:  # older pairings: the CUDA array interface
        return torch.as_tensor(array, device="cuda")


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _rowwise_cases(cupy, be, rows: int, cols: int) -> dict:
    """name -> (minimal bytes, gradflow factory, torch factory or None, xp stand-in factory or None).

    A factory prepares what its op needs (outputs of the forward, torch views) and
    returns ``fn(i)`` working on rotated buffer ``i % ROTATE``.
    """
    gen = cupy.random.RandomState(1)
    xs = [gen.standard_normal((rows, cols), dtype=cupy.float32) for _ in range(ROTATE)]
    gs = [gen.standard_normal((rows, cols), dtype=cupy.float32) for _ in range(ROTATE)]
    target = gen.randint(0, cols, rows).astype(cupy.int64)
    row_grad = cupy.full(rows, 1.0 / rows, dtype=cupy.float32)
    weight = gen.standard_normal(cols, dtype=cupy.float32)
    bias = gen.standard_normal(cols, dtype=cupy.float32)
    e, r, c4 = rows * cols * 4, ROTATE, cols * 4

    def torch_views(*arrays):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("torch has no CUDA here")
        return torch, torch.nn.functional, [[_to_torch(a) for a in group] for group in arrays]

    def sm_fwd():
        return lambda i: be.softmax_forward(xs[i % r], False)

    def sm_bwd():
        outs = [be.softmax_forward(x, False) for x in xs]
        return lambda i: be.softmax_backward(gs[i % r], outs[i % r], False)

    def sm_fwd_torch():
        torch, _, (tx,) = torch_views(xs)
        return lambda i: torch.softmax(tx[i % r], -1)

    def sm_bwd_torch():
        torch, _, (tx, tg) = torch_views(xs, gs)
        outs = [torch.softmax(x, -1) for x in tx]
        return lambda i: torch._softmax_backward_data(tg[i % r], outs[i % r], -1, torch.float32)

    def sm_fwd_xp():
        def fn(i):
            z = cupy.exp(xs[i % r] - xs[i % r].max(axis=-1, keepdims=True))
            return z / z.sum(axis=-1, keepdims=True)

        return fn

    def ce_fwd():
        return lambda i: be.cross_entropy_forward(xs[i % r], target, None, -100, 0.0)

    def ce_bwd():
        lses = [be.cross_entropy_forward(x, target, None, -100, 0.0)[1] for x in xs]
        return lambda i: be.cross_entropy_backward(row_grad, xs[i % r], target, None, lses[i % r], -100, 0.0)

    def ce_fwd_torch():
        _, functional, (tx, (tt,)) = torch_views(xs, [target])
        return lambda i: functional.cross_entropy(tx[i % r], tt, reduction="none")

    def ce_bwd_torch():
        torch, functional, (tx, (tt, tg)) = torch_views(xs, [target, row_grad])
        leaves = [x.detach().requires_grad_() for x in tx]
        losses = [functional.cross_entropy(x, tt, reduction="none") for x in leaves]
        return lambda i: torch.autograd.grad(losses[i % r], leaves[i % r], tg, retain_graph=True)

    def ce_fwd_xp():
        def fn(i):
            x = xs[i % r]
            top = x.max(axis=-1, keepdims=True)
            lse = cupy.log(cupy.exp(x - top).sum(axis=-1)) + top[:, 0]
            return lse - x[cupy.arange(rows), target]

        return fn

    def ln_fwd():
        return lambda i: be.layer_norm_forward(xs[i % r], weight, bias, 1e-5)

    def ln_bwd():
        saved = [be.layer_norm_forward(x, weight, bias, 1e-5) for x in xs]
        return lambda i: be.layer_norm_backward(gs[i % r], xs[i % r], *saved[i % r][1:3], weight, True, True)

    def ln_fwd_torch():
        _, functional, (tx, (tw, tb)) = torch_views(xs, [weight, bias])
        return lambda i: functional.layer_norm(tx[i % r], (cols,), tw, tb, 1e-5)

    def ln_bwd_torch():
        torch, _, (tx, tg, (tw, tb)) = torch_views(xs, gs, [weight, bias])
        aten = torch.ops.aten
        saved = [aten.native_layer_norm(x, [cols], tw, tb, 1e-5) for x in tx]
        mask = [True, True, True]
        return lambda i: aten.native_layer_norm_backward(
            tg[i % r], tx[i % r], [cols], saved[i % r][1], saved[i % r][2], tw, tb, mask
        )

    def ln_fwd_xp():
        def fn(i):
            x = xs[i % r]
            mean = x.mean(axis=-1, keepdims=True)
            return (x - mean) / cupy.sqrt(x.var(axis=-1, keepdims=True) + 1e-5) * weight + bias

        return fn

    def gelu_fwd():
        return lambda i: be.activation_forward(xs[i % r], "gelu")

    def gelu_bwd():
        return lambda i: be.activation_backward(gs[i % r], xs[i % r], "gelu")

    def gelu_fwd_torch():
        _, functional, (tx,) = torch_views(xs)
        return lambda i: functional.gelu(tx[i % r])

    def gelu_bwd_torch():
        torch, _, (tx, tg) = torch_views(xs, gs)
        return lambda i: torch.ops.aten.gelu_backward(tg[i % r], tx[i % r])

    rows8 = rows * 8
    return {
        "softmax_fwd": (2 * e, sm_fwd, sm_fwd_torch, sm_fwd_xp),
        "softmax_bwd": (3 * e, sm_bwd, sm_bwd_torch, None),
        # logits read; target (int64) read; loss and logsumexp written
        "cross_entropy_fwd": (e + rows * 16, ce_fwd, ce_fwd_torch, ce_fwd_xp),
        # logits, target, logsumexp and the row gradient read; logits' gradient written
        "cross_entropy_bwd": (2 * e + rows * 16, ce_bwd, ce_bwd_torch, None),
        # x, weight, bias read; y, mean, rstd written
        "layer_norm_fwd": (2 * e + 2 * c4 + rows8, ln_fwd, ln_fwd_torch, ln_fwd_xp),
        # grad, x, mean, rstd, weight read; dx, dweight, dbias written
        "layer_norm_bwd": (3 * e + rows8 + 3 * c4, ln_bwd, ln_bwd_torch, None),
        # x read, y written
        "gelu_fwd": (2 * e, gelu_fwd, gelu_fwd_torch, None),
        # grad and x read, grad_x written
        "gelu_bwd": (3 * e, gelu_bwd, gelu_bwd_torch, None),
    }


def _max_abs_diff(cupy, ours, theirs) -> float | None:
    """Largest difference between gradflow's first output and torch's, a sanity check on what was timed."""
    a, b = _first(ours), cupy.asarray(_first(theirs).detach())
    if a.shape != b.shape:
        return None
    return float(cupy.abs(a.astype(cupy.float64) - b.astype(cupy.float64)).max())


def section_rowwise(cupy, timer: GpuTimer, copy_gbps: float | None) -> dict:
    """Softmax, cross-entropy, layer norm and bias + GELU kernels at both shapes, against torch."""
    import gradflow
    from gradflow.backends import backend_for

    be = backend_for(gradflow.device("cuda"))
    out = {}
    for rows, cols in ROW_SHAPES:
        calls = min(40, max(4, int(20 * 4096 * 4096 / (rows * cols))))
        for name, (moved, mine, torch_factory, xp_factory) in _rowwise_cases(cupy, be, rows, cols).items():
            entry = out[f"{name} {rows}x{cols}"] = {"bytes_per_call": moved}
            fns = {}
            for key, factory, events in (("gradflow", mine, "cupy"), ("torch", torch_factory, "torch")):
                try:
                    fns[key] = factory()
                    entry[key] = timer.measure(fns[key], calls, 11, 3, events)
                except Exception as exc:
                    entry[key] = _error(exc)
            if xp_factory is not None:
                entry["gradflow_xp_stand_in"] = _guard(lambda f=xp_factory, n=calls: timer.measure(f(), n, 5, 2))
            for key in ("gradflow", "torch", "gradflow_xp_stand_in"):
                if "median_ms" in entry.get(key, {}):
                    entry[key]["gb_per_s"] = bandwidth(moved, entry[key]["median_ms"])
                    entry[key]["fraction_of_copy"] = entry[key]["gb_per_s"] / copy_gbps if copy_gbps else None
            mine_ms, theirs_ms = entry["gradflow"].get("median_ms"), entry["torch"].get("median_ms")
            entry["ratio_vs_torch"] = mine_ms / theirs_ms if mine_ms and theirs_ms else None
            if len(fns) == 2:
                entry["max_abs_diff_vs_torch"] = _guard(_max_abs_diff, cupy, fns["gradflow"](0), fns["torch"](0))
            del fns
        _free(cupy)
    return out


def _section_mlp(quick: bool) -> dict:
    from mlp_gpu import section_mlp  # beside this file; imported here so a failure stays in this section

    return section_mlp(steps=10 if quick else 40, warmup=3 if quick else 8)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/)")
    parser.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not a measurement")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--env-only", metavar="PATH", default=None, help="write the environment record and exit")
    parser.add_argument("--summarize", metavar="PATH", default=None, help="print the table of a results JSON and exit")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.summarize:
        with open(args.summarize) as handle:
            print(format_table(json.load(handle)))  # headlines recomputed: a cut-short run has none stored
        return 0
    env = environment()
    if args.env_only:
        write_json(env, args.env_only)
        print(json.dumps(env, indent=2, default=str))
        return 0
    record = {"suite": "kernels_gpu", "date": date.today().isoformat(), "environment": env, "sections": {}}
    record["config"] = {"quick": args.quick, "sections": args.sections, "rotate": ROTATE, "targets": TARGETS}
    import gradflow

    reason = gradflow.cuda.unavailable_reason()
    if args.json is None:
        gpu = env.get("gpu", "nogpu").replace(" ", "-")
        args.json = os.path.join(HERE, "results", f"kernels_gpu-{gpu}-{record['date']}.json")
    if reason is not None:
        print(f"no CUDA: {reason}; nothing to measure")
        record["error"] = f"no CUDA: {reason}"
        write_json(record, args.json)
        return 0
    import cupy

    timer = GpuTimer(cupy, quick=args.quick)
    record["config"]["spin_error"] = timer.spin_error

    runners = {
        "copy": lambda: section_copy(cupy, timer),
        "adam": lambda: section_adam(cupy, timer, record["sections"].get("copy", {}).get("gb_per_s")),
        "rowwise": lambda: section_rowwise(cupy, timer, record["sections"].get("copy", {}).get("gb_per_s")),
        "mlp": lambda: _section_mlp(args.quick),
    }
    for name in args.sections:
        started = time.perf_counter()
        print(f"[kernels_gpu] {name} ...", flush=True)
        record["sections"][name] = _guard(runners[name])
        record["sections"][name]["seconds"] = round(time.perf_counter() - started, 2)
        _free(cupy)
        write_json(record, args.json)  # after every section: a timeout keeps what was measured
    record["headlines"] = headlines(record)
    write_json(record, args.json)
    print(format_table(record))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
