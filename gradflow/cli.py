"""The ``gradflow`` command: ``gradflow demo`` trains the quick-start model."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradflow", description="gradflow: autograd on NVIDIA GPUs and CPUs")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="train a small MLP on the best device and print the loss")
    demo.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    demo.add_argument("--steps", type=int, default=300, help="training steps (default: 300)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import gradflow

        print(gradflow.__version__)
        return 0
    if args.command == "demo":
        if args.steps < 1:
            parser.error("--steps must be at least 1")
        from . import demo
        from .errors import DeviceUnavailableError

        try:
            demo.run(steps=args.steps, device=args.device)
        except (DeviceUnavailableError, ValueError) as error:
            print(f"gradflow demo: {error}", file=sys.stderr)
            return 2
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
