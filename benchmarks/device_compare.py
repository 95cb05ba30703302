"""Device comparison suite: gradflow.bench.compare on the mlp, cnn and transformer, with torch as baseline.

Each model runs on the CPU and (when present) CUDA at several batch sizes, gradflow and torch
on the same devices in the same run; the JSON (every figure, the ratios, the machine) goes to
benchmarks/results/device_compare_<machine>.json and a table per model is printed.

Run:  PYTHONPATH=. python benchmarks/device_compare.py [--short] [--machine-name NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rich.console import Console  # noqa: E402

import gradflow  # noqa: E402
from gradflow.bench import compare  # noqa: E402
from gradflow.bench.models import MODELS, workload  # noqa: E402

FULL = {"batch_sizes": (16, 64, 256, 1024), "steps": 20, "warmup": 3}
SHORT = {"batch_sizes": (16, 128), "steps": 3, "warmup": 1}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="two batch sizes, 3 steps: a quick check")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all three)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--machine-name", default=platform.node() or "unknown")
    parser.add_argument("--plot", action="store_true", help="also write one PNG per model beside the JSON")
    args = parser.parse_args(argv)
    settings = SHORT if args.short else FULL
    devices = ("cpu", "cuda") if gradflow.cuda.is_available() else ("cpu",)
    console = Console() if sys.stdout.isatty() else Console(width=200)  # files get the whole table
    report = {"settings": {**settings, "devices": devices}, "models": {}}
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        chosen = workload(name)
        gradflow.manual_seed(0)
        result = compare(chosen.model_fn, chosen.input_fn, devices=devices, baseline="torch", **settings)
        result.model = name
        console.print(result.table())
        report["models"][name] = result.to_dict()
        if args.plot:
            result.plot(os.path.join(args.out, f"device_compare_{name}_{args.machine_name}.png"))
    path = os.path.join(args.out, f"device_compare_{args.machine_name}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, allow_nan=False)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
