"""The ``gradflow`` command: ``demo`` trains the digits models (the README's main job), ``info`` describes
this machine, ``bench`` compares the training throughput of its devices, ``run`` starts a distributed job."""

from __future__ import annotations

import argparse
import sys

from . import demo
from .bench.cli import add_parser as add_bench_parser
from .bench.cli import run as run_bench
from .distributed.launch import run as run_job
from .errors import DeviceUnavailableError, MissingDependencyError
from .info import add_parser as add_info_parser
from .info import run as run_info
from .version import __version__


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (what was wrong and where to read more), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``gradflow`` parser with its ``demo``, ``info`` and ``bench`` subcommands."""
    parser = _Parser(prog="gradflow", description="gradflow: autograd on NVIDIA GPUs and CPUs")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser(
        "demo",
        help="train an MLP and a CNN on handwritten digits on the best device",
        description="Train an MLP and a small CNN on scikit-learn's 8x8 digits (no download) on the best device, "
        "print test accuracy and samples/s, and plot the loss and accuracy curves.",
    )
    demo.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    demo.add_argument("--epochs", type=int, default=None, help="epochs per model (default: 20; 1 with --short)")
    demo.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: 32)")
    demo.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default: 2e-3)")
    demo.add_argument(
        "--plot",
        default="gradflow-digits.png",
        help="PNG of the curves, in an existing folder; .png is added to a name without a suffix "
        "(default: gradflow-digits.png)",
    )
    demo.add_argument("--no-plot", action="store_true", help="do not write the plot")
    demo.add_argument("--short", action="store_true", help="one epoch, for CI (also GRADFLOW_EXAMPLE_SHORT=1)")
    demo.add_argument("--seed", type=int, default=0, help="seed for the weights, the split and the shuffling")
    run = commands.add_parser(
        "run",
        help="start N processes of a training script under MPI (gradflow.distributed)",
        description="Start N processes of a script with the environment's mpiexec; each gets RANK, LOCAL_RANK, "
        "WORLD_SIZE and LOCAL_WORLD_SIZE, and an uncaught exception in any of them aborts the whole job.",
    )
    run.add_argument("--nproc", "--nproc-per-node", type=int, default=1, help="number of processes (default: 1)")
    run.add_argument("--hosts", default=None, help="comma-separated host names to spread the processes over")
    run.add_argument("script", help="the Python script to run")
    run.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    add_info_parser(commands)
    add_bench_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(__version__)
        return 0
    if args.command == "demo":
        options = {
            "device": args.device,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "plot_path": None if args.no_plot else args.plot,
            "seed": args.seed,
        }
        try:  # every option before any work: a bad one is one line, not a traceback after training
            demo.check_options(**options)
        except (DeviceUnavailableError, ValueError) as error:
            print(f"gradflow demo: error: {error} (see gradflow demo --help)", file=sys.stderr)
            return 2
        demo.run(**options, short=True if args.short else None)
        return 0
    if args.command == "info":
        return run_info(args)
    if args.command == "run":
        if args.nproc < 1:
            parser.error("--nproc must be at least 1")
        try:
            return run_job(args.nproc, [args.script, *args.script_args], hosts=args.hosts)
        except MissingDependencyError as error:
            print(error, file=sys.stderr)
            return 2
    if args.command == "bench":
        return run_bench(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
