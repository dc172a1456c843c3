"""The `mnist-parity` command: parses arguments and calls the library; bad input exits 2 with one line."""

import argparse
import logging
import os
import sys
from pathlib import Path

from rich.console import Console

from experiments.errors import UserError

DEFAULT_OUT = Path("runs")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str):
        raise UserError(f"{message} (see '{self.prog} --help')")


def one_line(text: str) -> str:
    """text with every control character (a newline in a path, say) written as its escape, so it stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


NATIVE = 'implementation="native"'
NATIVE_HELP = ("each framework builds every component from its own built-ins (torch.nn/optim, keras, flax/optax/jax.nn) "
               "where it has one; shorthand for --set implementation=\"native\"")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnist-parity", description="Train the same MNIST model on PyTorch, Keras and JAX/Flax and compare.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run one experiment on several backends side by side")
    run.add_argument("experiment", nargs="?", help="a preset name (see 'mnist-parity list presets') or a path to a .toml spec")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="train the backends of an earlier run that did not finish (pending, interrupted or failed), into its folder")
    run.add_argument("--backends", type=_csv, default=None, help="comma-separated backends (default: torch,keras,jax)")
    run.add_argument("--dataset", help="dataset name (see 'mnist-parity list datasets'); overrides data.dataset")
    run.add_argument("--data-dir", help="directory holding dataset files (also: env MNIST_PARITY_DATA)")
    run.add_argument("--no-download", action="store_true", help="never download; fail if the dataset is not found locally")
    run.add_argument("--epochs", type=int, help="overrides training.epochs")
    run.add_argument("--seed", type=int, help="overrides seed")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override any spec field, e.g. --set optimizer.learning_rate=0.01 (repeatable)")
    run.add_argument("--out", type=Path, help="parent folder of the new run directory (default: runs)")
    run.add_argument("--same-init", action="store_true",
                     help="start every backend from one NumPy draw of the initial weights (default: each framework draws its own)")
    run.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per backend (default: all cores)")
    run.add_argument("--native", action="store_true", help=NATIVE_HELP)

    verify = commands.add_parser("verify", help="prove framework parity level by level: forward, gradients, one step, trajectory, accuracy over seeds")
    verify.add_argument("experiment", nargs="?", help="a preset name or a path to a .toml spec (with --matrix: the base for data and seed)")
    verify.add_argument("--levels", help="levels to run: 1-4, 5, all, or a list like 2,3 (default: 5; with --matrix 1-4)")
    verify.add_argument("--matrix", action="store_true",
                        help="levels 1-4 for every activation (Adam) and every optimizer (ReLU) on a small MLP and CNN (float64 unless --dtype)")
    verify.add_argument("--cells", default="*", help="with --matrix: only the cells whose id matches this pattern, e.g. 'cnn-*' or '*-gelu*'")
    verify.add_argument("--dtype", choices=["float32", "float64"], help="overrides the spec's dtype")
    verify.add_argument("--steps", type=int, default=100, help="level 4: optimizer steps in the trajectory (default 100)")
    verify.add_argument("--seeds", type=int, default=5, help="level 5: number of seeds (default 5)")
    verify.add_argument("--margin", type=float, default=0.3, help="level 5: equivalence margin in accuracy points (default 0.3)")
    verify.add_argument("--backends", type=_csv, default=None, help="comma-separated backends (default: torch,keras,jax)")
    verify.add_argument("--dataset", dest="verify_dataset", help="dataset name; overrides data.dataset")
    verify.add_argument("--data-dir", help="directory holding dataset files")
    verify.add_argument("--no-download", action="store_true", help="never download")
    verify.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override any spec field")
    verify.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent folder of the new run directory (default: runs)")
    verify.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per backend")
    verify.add_argument("--native", action="store_true", help=NATIVE_HELP)

    sweep = commands.add_parser("sweep", help="run a grid of experiments (activation x optimizer x model x backend x seed), resumable")
    sweep.add_argument("sweep", help="a sweep name (see 'mnist-parity list sweeps') or a path to a sweep .toml file")
    sweep.add_argument("--workers", type=int,
                       help="cells trained at once, each in its own process (default 1; with --executor ray: as many as the cluster fits)")
    sweep.add_argument("--threads", type=int,
                       help="threads per cell (default: cores / workers; with --executor ray: 1), the CPUs each Ray task asks for")
    sweep.add_argument("--executor", choices=["local", "ray"], default="local",
                       help="where cells run: local (a pool on this machine, the default) or ray (tasks on a Ray cluster)")
    sweep.add_argument("--address", metavar="ADDRESS",
                       help="with --executor ray: a running cluster (host:port, ray://host:port or auto); "
                            "default: a local Ray instance started for the sweep and stopped after")
    sweep.add_argument("--retries", type=int,
                       help="with --executor ray: times a cell is retried after its worker process or node dies (default 2)")
    sweep.add_argument("--retry-failed", action="store_true", help="rerun cells that failed before (finished cells are always skipped)")
    sweep.add_argument("--dry-run", action="store_true", help="list the cells and their keys; train nothing")
    sweep.add_argument("--data-dir", help="directory holding dataset files")
    sweep.add_argument("--no-download", action="store_true", help="never download")
    sweep.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help="parent folder: the sweep goes to OUT/sweeps/NAME, the store is OUT/results.sqlite (default: runs)")
    sweep.add_argument("--native", action="store_true",
                       help="every cell with implementation = \"native\", as the sweep NAME-native (its own folder)")
    sweep.set_defaults(cpu_count=os.cpu_count() or 1)

    bench = commands.add_parser("bench-sweep", help="time one small sweep on the local executor and on Ray: wall time and per-cell overhead")
    bench.add_argument("sweep", nargs="?", help="a sweep name or .toml file (default: 4 one-epoch cells on mnist-subset)")
    bench.add_argument("--address", metavar="ADDRESS", help="a running Ray cluster (default: a local Ray instance)")
    bench.add_argument("--workers", type=int, default=1, help="cells at once on each executor (default 1: per-cell times without queueing)")
    bench.add_argument("--threads", type=int, default=1, help="threads (Ray: CPUs) per cell (default 1)")
    bench.add_argument("--data-dir", help="directory holding dataset files")
    bench.add_argument("--no-download", action="store_true", help="never download")
    bench.add_argument("--out", type=Path, help="where both runs go (default: a temporary folder, removed after)")

    timing = commands.add_parser("bench", help="time the harness's training step against each framework's tutorial-style loop "
                                 "(interleaved pairs, one process per framework); writes bench.json")
    timing.add_argument("presets", nargs="*", metavar="PRESET", help="presets or .toml specs (default: mlp-relu-adam)")
    timing.add_argument("--backends", type=_csv, default=None, help="comma-separated backends (default: torch,keras,jax)")
    timing.add_argument("--threads", type=int, default=2, help="threads per framework process (default 2)")
    timing.add_argument("--pairs", type=int, default=3, help="timed (harness, reference) pairs after one warm-up (default 3)")
    timing.add_argument("--steps", type=int, default=None,
                        help="batches per timed chunk, at most one epoch (default: one epoch of the training split)")
    timing.add_argument("--gemm-size", type=int, default=2048,
                        help="side of the square matmul timed for the GEMM rate in each framework process (default 2048)")
    timing.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field in every preset, e.g. --set training.batch_size=128 (repeatable)")
    timing.add_argument("--dataset", default="mnist-subset", help="dataset name (default: mnist-subset, shipped offline)")
    timing.add_argument("--data-dir", help="directory holding dataset files")
    timing.add_argument("--no-download", action="store_true", help="never download")
    timing.add_argument("--out", type=Path, help="folder for bench.json, the workers' logs and the results store they are registered in "
                        "(default: runs/bench-<UTC time>, registered in runs/results.sqlite)")

    report = commands.add_parser("report", help="tables, figures and a self-contained HTML page from stored runs, sweeps, verify and bench results (never retrains)")
    report.add_argument("paths", nargs="+", type=Path, metavar="FOLDER", help="run, sweep, verify or bench directories")
    report.add_argument("--out", type=Path, default=None, help="report directory (default: reports/<name derived from the inputs>)")

    defaults = commands.add_parser("defaults", help="each framework's own defaults next to the values the suite pins")
    defaults.add_argument("entries", nargs="*", help="only these catalog entries or layers, e.g. adam leaky_relu batch_norm")

    listing = commands.add_parser("list", help="list presets, datasets, backends and the catalog support matrix")
    listing.add_argument("what", nargs="?", default="all",
                         choices=["all", "presets", "sweeps", "datasets", "backends", "differences", "activations", "output_activations", "losses", "optimizers", "schedules", "initializers"])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mnist-parity` and `python -m experiments`."""
    console = Console(width=None if sys.stdout.isatty() else 160)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
        if args.command in ("run", "verify") and args.native:
            args.overrides.append(NATIVE)
        if args.command == "run":
            from experiments.commands.run import run_command

            return run_command(args, console)
        if args.command == "verify":
            from experiments.commands.verify import verify_command

            if args.verify_dataset:
                args.overrides.append(f'data.dataset="{args.verify_dataset}"')
            return verify_command(args, console)
        if args.command == "sweep":
            from experiments.commands.sweep import sweep_command

            return sweep_command(args, console)
        if args.command == "bench-sweep":
            from experiments.commands.bench_sweep import bench_sweep_command

            return bench_sweep_command(args, console)
        if args.command == "bench":
            from experiments.commands.bench import bench_command

            args.argv = list(sys.argv[1:] if argv is None else argv)
            return bench_command(args, console)
        if args.command == "report":
            from experiments.commands.report import report_command

            return report_command(args, console)
        if args.command == "defaults":
            from experiments.commands.defaults import defaults_command

            return defaults_command(console, args.entries)
        from experiments.commands.listing import list_command

        return list_command(args.what, console)
    except UserError as error:
        Console(stderr=True).print(f"mnist-parity: error: {one_line(str(error))}", highlight=False, markup=False, soft_wrap=True)
        return error.exit_code
    except KeyboardInterrupt as stop:
        Console(stderr=True).print("mnist-parity: interrupted", highlight=False)
        return getattr(stop, "exit_code", 130)
