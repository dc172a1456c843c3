"""`mnist-parity sweep`: expand a sweep file into cells, run the unfinished ones (here or on Ray), register them,
print a summary."""

import argparse
from typing import Callable

from rich.console import Console

from experiments.commands.checks import check_out, training_sizes
from experiments.errors import UserError
from experiments.spec import ExperimentSpec
from experiments.sweep import expand_cells, load_sweep
from experiments.sweep.display import SweepDisplay
from experiments.sweep.local import run_sweep, sweep_dir
from experiments.sweep.task import cell_dataset
from experiments.unfinished import register_leftovers


def check_run_options(args: argparse.Namespace) -> None:
    """UserError (one line, exit 2) for option values no executor can use, before anything is read or written."""
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: {args.workers}; must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads: {args.threads}; must be at least 1")
    if args.executor != "ray":
        for option, value in (("--address", args.address), ("--retries", args.retries)):
            if value is not None:
                raise UserError(f"{option} applies to --executor ray only")
        return
    from experiments.sweep.ray_cluster import check_address

    check_address(args.address)
    if args.retries is not None and args.retries < 0:
        raise UserError(f"--retries: {args.retries}; must be 0 or more")


def load_cells(args: argparse.Namespace):
    """The sweep (renamed NAME-native with --native) and its cells, validated."""
    sweep = load_sweep(args.sweep)
    if getattr(args, "native", False):  # its own name, so native cells never mix with the catalog sweep's
        sweep = sweep.model_copy(update={"name": f"{sweep.name}-native", "set": {**sweep.set, "implementation": "native"}})
    return sweep, expand_cells(sweep)


def check_inputs(out, cells, data_dir: str | None, download: bool):
    """Read-only checks, before anything is written or started: OUT and its store can be written, every dataset loads
    (once; a missing one fails here, not in every cell) and gives each cell a split it can train on. Returns the
    store path."""
    store = check_out(out)
    for cell in cells:
        spec = ExperimentSpec.model_validate(cell.spec)
        try:
            training_sizes(spec, cell_dataset(spec.data.dataset, data_dir, download))
        except UserError as error:
            factors = ", ".join(f"{k}={v}" for k, v in cell.factors.items())
            raise UserError(f"sweep cell {cell.key} ({factors}): {error}") from None
    return store


def prepare_out(out, cells, data_dir: str | None, download: bool):
    """check_inputs, then register the leftovers of killed runs in OUT; returns the store path."""
    store = check_inputs(out, cells, data_dir, download)
    register_leftovers(out, store)
    return store


def sweep_command(args: argparse.Namespace, console: Console) -> int:
    """Returns 0 when every cell finished ok, 1 when any failed; bad input raises UserError before any cell runs."""
    check_run_options(args)
    sweep, cells = load_cells(args)
    if args.dry_run:
        for cell in cells:
            console.print(f"{cell.key}  " + ", ".join(f"{k}={v}" for k, v in cell.factors.items()), highlight=False, markup=False)
        console.print(f"{len(cells)} cells", highlight=False)
        return 0
    if args.executor == "ray":
        return _sweep_on_ray(args, console, sweep, cells)
    workers = args.workers or 1
    threads = args.threads or max(1, (args.cpu_count or 1) // workers)
    store = prepare_out(args.out, cells, args.data_dir, not args.no_download)
    plan = f"{workers} at a time, {threads} thread(s) each"
    return _run_and_report(console, sweep, cells, args.out, store, plan, lambda display: run_sweep(
        sweep, cells, args.out, workers=workers, threads=threads, data_dir=args.data_dir, download=not args.no_download,
        retry_failed=args.retry_failed, store=store, on_change=display))


def _sweep_on_ray(args: argparse.Namespace, console: Console, sweep, cells) -> int:
    """Every read-only check first, then connect (bad input or a failed connection: one line, exit 2, nothing
    written, no Ray started for nothing); Ctrl-C or SIGTERM stops cleanly."""
    from experiments.interrupt import stop_on_signals
    from experiments.sweep.bookkeeping import check_not_running
    from experiments.sweep.ray_cluster import check_local_threads, connect
    from experiments.sweep.ray_executor import DEFAULT_RETRIES, run_sweep_on_ray

    threads = args.threads or 1
    retries = DEFAULT_RETRIES if args.retries is None else args.retries
    if args.address is None:
        check_local_threads(threads, args.cpu_count)
    store = check_inputs(args.out, cells, args.data_dir, not args.no_download)
    check_not_running(sweep_dir(args.out, sweep.name), sweep.name)
    with connect(args.address, cpus_per_cell=threads) as cluster:
        register_leftovers(args.out, store)
        at_once = f"at most {args.workers}" if args.workers else "as many as fit"
        plan = (f"on Ray ({args.address or 'a local instance'}, {cluster['cluster_cpus']} CPUs), {at_once} at a time, "
                f"{threads} CPU(s) each, {retries} retries")
        with stop_on_signals():
            return _run_and_report(console, sweep, cells, args.out, store, plan, lambda display: run_sweep_on_ray(
                sweep, cells, args.out, workers=args.workers, threads=threads, data_dir=args.data_dir,
                download=not args.no_download, retries=retries, retry_failed=args.retry_failed, store=store,
                on_change=display))


def _run_and_report(console: Console, sweep, cells, out, store, plan: str, run: Callable) -> int:
    directory = sweep_dir(out, sweep.name)
    console.print(f"sweep [bold]{sweep.name}[/bold]: {len(cells)} cells into {directory}, {plan}", highlight=False)
    with SweepDisplay() as display:
        state = run(display)
    for failure in state.failures:
        console.print(f"FAILED: {failure}", style="red", markup=False)
    console.print(f"sweep {sweep.name}: {state.total - state.failed} of {state.total} cells ok "
                  f"({state.skipped} finished earlier); {directory}; store {store}", highlight=False)
    return 0 if state.failed == 0 else 1
