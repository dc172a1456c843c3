"""Run a sweep's cells on this machine: skip finished cells, run the rest in a pool, write sweep.json."""

import fcntl
import json
import shutil
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from experiments.errors import UserError
from experiments.results import atomic_write_text
from experiments.store import register_run
from experiments.sweep.cells import Cell
from experiments.sweep.definition import SweepDefinition
from experiments.sweep.task import PARTIAL_PREFIX, cell_status, move_aside, run_cell


@dataclass
class SweepState:
    """Counts the progress display shows."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    running: set = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)


def sweep_dir(out: Path, name: str) -> Path:
    return Path(out) / "sweeps" / name


def write_sweep_document(directory: Path, sweep: SweepDefinition, cells: list[Cell]) -> None:
    """sweep.json: the definition (grid as {key: {label: value}}) and every cell (key, backend, factors), rewritten at
    each start and end."""
    document = {
        "name": sweep.name, "description": sweep.description, "base": sweep.base, "backends": sweep.backends,
        "seeds": sweep.seeds, "set": sweep.set, "grid": sweep.grid,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cells": [{"key": c.key, "backend": c.backend, "factors": c.factors} for c in cells],
    }
    atomic_write_text(directory / "sweep.json", json.dumps(document, indent=2) + "\n")


def remove_partials(cells_dir: Path) -> None:
    """Delete the half-trained cells a killed run left behind."""
    for path in cells_dir.glob(f"{PARTIAL_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def run_sweep(
    sweep: SweepDefinition, cells: list[Cell], out: Path, *, workers: int, threads: int, data_dir: str | None,
    download: bool, retry_failed: bool, store: Path | None, on_change: Callable[[SweepState, str, dict | None], None],
) -> SweepState:
    """Run every cell not yet published (failed ones too with retry_failed), `workers` at a time.

    on_change(state, what, payload) reports "start", "cell-started", "epoch" (from the pool's
    threads) and "cell-finished"; the display decides what to show.
    """
    directory = sweep_dir(out, sweep.name)
    cells_dir = directory / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the process ends, however it ends
        except BlockingIOError:
            raise UserError(f"sweep {sweep.name} is already running in another process ({directory}); "
                            "wait for it to finish or stop it, then rerun to resume") from None
        return _run_locked(sweep, cells, directory, workers=workers, threads=threads, data_dir=data_dir,
                           download=download, retry_failed=retry_failed, store=store, on_change=on_change)


def _run_locked(sweep, cells, directory, *, workers, threads, data_dir, download, retry_failed, store, on_change) -> SweepState:
    cells_dir = directory / "cells"
    remove_partials(cells_dir)  # safe: the lock says no other process is training into them
    write_sweep_document(directory, sweep, cells)
    state = SweepState(total=len(cells))
    pending = []
    for cell in cells:
        status = cell_status(cells_dir / cell.key)
        if status == "ok" or (status == "failed" and not retry_failed):
            state.done += 1
            state.skipped += 1
            state.failed += status == "failed"
            if store is not None:
                register_run(cells_dir / cell.key, store)  # idempotent: catches a cell killed between publish and register
        else:
            if status == "failed":
                shutil.rmtree(cells_dir / cell.key)
            elif (cells_dir / cell.key).exists():  # no readable results.json: damaged by hand or by the disk
                state.damaged.append(str(move_aside(cells_dir / cell.key)))
            pending.append(cell)
    on_change(state, "start", {"pending": [c.to_dict() for c in pending]})

    def task(cell: Cell) -> dict:
        return {"sweep": sweep.name, "cell": cell.to_dict(), "cells_dir": str(cells_dir), "data_dir": data_dir,
                "download": download, "threads": threads, "store": None if store is None else str(store)}

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
                    state.running.discard(cell.key)
                    state.done += 1
                    try:
                        summary = future.result()
                    except Exception as error:  # a crash in the parent's part of a cell costs that cell only
                        summary = {"key": cell.key, "status": "failed", "reason": f"{type(error).__name__}: {error}"}
                    if summary["status"] != "ok":
                        state.failed += 1
                        state.failures.append(f"{cell.key} {cell.factors}: {summary['reason']}")
                    on_change(state, "cell-finished", summary)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    write_sweep_document(directory, sweep, cells)
    return state
