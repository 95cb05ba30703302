"""``gradflow bench``: compare devices on a built-in model from the command line (built on ``compare``)."""

from __future__ import annotations

import argparse
import sys

from ..device import _parse
from .models import MODELS, workload
from .runner import compare

DEFAULT_BATCH_SIZES = (16, 64, 256)


def _positive_ints(text: str) -> tuple[int, ...]:
    values = []
    for part in text.split(","):
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"batch sizes must be integers, got {part.strip()!r} in {text!r}"
            ) from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"batch sizes must be at least 1, got {value} in {text!r}")
        values.append(value)
    return tuple(values)


def _devices(text: str) -> tuple[str, ...]:
    devices = tuple(part.strip() for part in text.split(",") if part.strip())
    if not devices:
        raise argparse.ArgumentTypeError("give at least one device, e.g. cpu,cuda")
    for spec in devices:
        try:
            _parse(spec)  # only the spelling: a valid but missing device (cuda here) becomes an 'unavailable' row
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return devices


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench`` on the ``gradflow`` command's subparsers."""
    parser = subparsers.add_parser(
        "bench",
        help="compare training throughput of your devices (and torch) on a built-in model",
        description="Run real training steps (forward + cross-entropy, backward, Adam step) of a built-in model on "
        "each device and batch size; report median and IQR of each phase (CUDA events on GPUs, the host clock on "
        "the CPU), samples/s, counted FLOP/s, peak memory, the speed-up over the CPU and the crossover batch size. "
        "A device that is missing here is reported as unavailable with the reason. float16 runs on GPUs only: "
        "CPU cells are reported unavailable (no fast half-precision matmul there).",
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="mlp",
        help="mlp (784-1024-1024-10), cnn (2 conv on "
        "1x28x28) or transformer (2-layer encoder, seq 64, d_model 128) (default: mlp)",
    )
    parser.add_argument(
        "--devices",
        type=_devices,
        default=("cpu", "cuda"),
        help="comma-separated devices: cpu, cuda, cuda:N, auto (default: cpu,cuda)",
    )
    parser.add_argument(
        "--batch-sizes",
        type=_positive_ints,
        default=DEFAULT_BATCH_SIZES,
        help="comma-separated positive batch sizes (default: 16,64,256)",
    )
    parser.add_argument("--steps", type=_at_least(1), default=10, help="timed steps per cell, >= 1 (default: 10)")
    parser.add_argument("--warmup", type=_at_least(0), default=2, help="untimed steps before them (default: 2)")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="default: float32")
    parser.add_argument(
        "--baseline",
        choices=("torch",),
        default=None,
        help="also run the same model and step in PyTorch on each device and report the ratios",
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure and the machine description as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write a PNG of samples/s against batch size")
    parser.add_argument(
        "--profile", action="store_true", help="also print gradflow.profiler's report of one training step per device"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args) -> int:
    """Run ``gradflow bench`` with parsed ``args``; print the table; write --json / --plot. Returns the exit code."""
    from rich.console import Console
    from rich.markup import escape

    chosen = workload(args.model, args.dtype)
    result = compare(
        chosen.model_fn,
        chosen.input_fn,
        devices=args.devices,
        batch_sizes=args.batch_sizes,
        steps=args.steps,
        warmup=args.warmup,
        dtype=args.dtype,
        baseline=args.baseline,
        progress=not args.no_progress,
        profile=args.profile,
    )
    result.model = args.model
    console = Console() if sys.stdout.isatty() else Console(width=200)  # files get the whole table
    for device, report in result.profiles.items():
        console.rule(escape(f"profile of one {args.model} training step on {device}"))
        print(report)
    console.print(result.table())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        result.plot(args.plot)
        print(f"wrote {args.plot}")
    if not any(cell.ok for cell in result.cells):
        print("gradflow bench: no device could run a single cell (see the table's notes)", file=sys.stderr)
        return 1
    return 0
