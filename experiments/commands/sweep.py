"""`mnist-parity sweep`: expand a sweep file into cells, run the unfinished ones, register them, print a summary."""

import argparse

from rich.console import Console

from experiments.commands.checks import check_out, training_sizes
from experiments.errors import UserError
from experiments.spec import ExperimentSpec
from experiments.sweep import expand_cells, load_sweep
from experiments.sweep.display import SweepDisplay
from experiments.sweep.local import run_sweep, sweep_dir
from experiments.sweep.task import cell_dataset
from experiments.unfinished import register_leftovers


def sweep_command(args: argparse.Namespace, console: Console) -> int:
    """Returns 0 when every cell finished ok, 1 when any failed; bad input raises UserError before any cell runs."""
    if args.workers < 1:
        raise UserError(f"--workers: {args.workers}; must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads: {args.threads}; must be at least 1")
    sweep = load_sweep(args.sweep)
    if getattr(args, "native", False):  # its own name, so native cells never mix with the catalog sweep's
        sweep = sweep.model_copy(update={"name": f"{sweep.name}-native", "set": {**sweep.set, "implementation": "native"}})
    cells = expand_cells(sweep)
    if args.dry_run:
        for cell in cells:
            console.print(f"{cell.key}  " + ", ".join(f"{k}={v}" for k, v in cell.factors.items()), highlight=False, markup=False)
        console.print(f"{len(cells)} cells", highlight=False)
        return 0
    threads = args.threads or max(1, (args.cpu_count or 1) // args.workers)
    store = check_out(args.out)
    for cell in cells:  # a missing dataset or a split no cell could train on fails here, not in every cell
        spec = ExperimentSpec.model_validate(cell.spec)
        try:
            training_sizes(spec, cell_dataset(spec.data.dataset, args.data_dir, not args.no_download))
        except UserError as error:
            factors = ", ".join(f"{k}={v}" for k, v in cell.factors.items())
            raise UserError(f"sweep cell {cell.key} ({factors}): {error}") from None
    register_leftovers(args.out, store)
    directory = sweep_dir(args.out, sweep.name)
    console.print(f"sweep [bold]{sweep.name}[/bold]: {len(cells)} cells into {directory}, {args.workers} at a time, "
                  f"{threads} thread(s) each", highlight=False)
    with SweepDisplay() as display:
        state = run_sweep(sweep, cells, args.out, workers=args.workers, threads=threads, data_dir=args.data_dir,
                          download=not args.no_download, retry_failed=args.retry_failed, store=store, on_change=display)
    for failure in state.failures:
        console.print(f"FAILED: {failure}", style="red", markup=False)
    console.print(f"sweep {sweep.name}: {state.total - state.failed} of {state.total} cells ok "
                  f"({state.skipped} finished earlier); {directory}; store {store}", highlight=False)
    return 0 if state.failed == 0 else 1
