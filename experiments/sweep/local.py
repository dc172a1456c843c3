"""Run a sweep's cells on this machine: skip finished cells, run the rest in a pool, write sweep.json."""

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from experiments.sweep.bookkeeping import (OnChange, SweepState, cell_finished, failed_summary, pending_cells, sweep_dir,
                                           sweep_lock, write_sweep_document)
from experiments.sweep.cells import Cell
from experiments.sweep.definition import SweepDefinition
from experiments.sweep.task import cell_task, run_cell

__all__ = ["SweepState", "run_sweep", "sweep_dir", "write_sweep_document"]  # the last three live in bookkeeping


def run_sweep(
    sweep: SweepDefinition, cells: list[Cell], out: Path, *, workers: int, threads: int, data_dir: str | None,
    download: bool, retry_failed: bool, store: Path | None, on_change: OnChange,
) -> SweepState:
    """Run every cell not yet published (failed ones too with retry_failed), `workers` at a time.

    on_change(state, what, payload) reports "start", "cell-started", "epoch" (from the pool's
    threads) and "cell-finished"; the display decides what to show.
    """
    directory = sweep_dir(out, sweep.name)
    with sweep_lock(directory, sweep.name):
        state, pending = pending_cells(sweep, cells, directory, retry_failed=retry_failed, store=store, on_change=on_change)
        _run_pool(sweep, pending, directory / "cells", state, workers=workers, threads=threads, data_dir=data_dir,
                  download=download, store=store, on_change=on_change)
        write_sweep_document(directory, sweep, cells)
        return state


def _run_pool(sweep, pending, cells_dir, state, *, workers, threads, data_dir, download, store, on_change) -> None:
    def task(cell: Cell) -> dict:
        return cell_task(sweep.name, cell, cells_dir, threads, data_dir=data_dir, download=download, store=store)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {}
        queue = list(pending)
        try:
            while queue or futures:
                while queue and len(futures) < max(1, workers):
                    cell = queue.pop(0)
                    state.running.add(cell.key)
                    on_change(state, "cell-started", cell.to_dict())
                    forward = (lambda key: lambda backend, event: on_change(state, "epoch", {"key": key, **event}))(cell.key)
                    futures[pool.submit(run_cell, task(cell), forward)] = cell
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    cell = futures.pop(future)
                    try:
                        summary = future.result()
                    except Exception as error:  # a crash in the parent's part of a cell costs that cell only
                        summary = failed_summary(cell, f"{type(error).__name__}: {error}")
                    cell_finished(state, cell, summary, on_change)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
