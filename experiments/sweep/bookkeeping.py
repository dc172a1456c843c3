"""What every sweep executor shares: the lock, sweep.json, which cells are left to run, and counting what finished."""

import fcntl
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from experiments.errors import UserError
from experiments.results import atomic_write_text
from experiments.store import register_run
from experiments.sweep.cells import Cell
from experiments.sweep.definition import SweepDefinition
from experiments.sweep.task import PARTIAL_PREFIX, cell_status, move_aside

OnChange = Callable[["SweepState", str, dict | None], None]


@dataclass
class SweepState:
    """Counts the progress display shows (timings: one-off costs an executor measured, e.g. Ray's start-up)."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    running: set = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)


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


def _already_running(directory: Path, name: str) -> UserError:
    return UserError(f"sweep {name} is already running in another process ({directory}); "
                     "wait for it to finish or stop it, then rerun to resume")


@contextmanager
def sweep_lock(directory: Path, name: str) -> Iterator[None]:
    """Hold the sweep's lock file for the block; a second run of the same sweep is refused with a UserError."""
    (directory / "cells").mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the process ends, however it ends
        except BlockingIOError:
            raise _already_running(directory, name) from None
        yield


def check_not_running(directory: Path, name: str) -> None:
    """The UserError sweep_lock would raise, found without writing anything (no folder or lock file is created), so
    a sweep that is already running is refused before, say, a Ray cluster is started for nothing."""
    try:
        lock = open(directory / ".lock", "rb")  # read-only: an existing lock file, never created or emptied here
    except OSError:
        return  # no lock file: nothing runs there (sweep_lock reports anything else when it makes its own)
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _already_running(directory, name) from None
        fcntl.flock(lock, fcntl.LOCK_UN)


def pending_cells(sweep: SweepDefinition, cells: list[Cell], directory: Path, *, retry_failed: bool, store: Path | None,
                  on_change: OnChange) -> tuple[SweepState, list[Cell]]:
    """Under the lock: clear partial cells, write sweep.json, count published cells (registering them again, which is
    idempotent), move damaged ones aside, and return the state and the cells left to run ("start" is reported)."""
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
    return state, pending


def failed_summary(cell: Cell, reason: str) -> dict:
    """The summary of a cell whose task itself failed (nothing was published for it, so a rerun runs it again)."""
    return {"key": cell.key, "status": "failed", "reason": reason}


def cell_finished(state: SweepState, cell: Cell, summary: dict, on_change: OnChange) -> None:
    """Count a finished cell (ok or failed) and report "cell-finished"."""
    state.running.discard(cell.key)
    state.done += 1
    if summary["status"] != "ok":
        state.failed += 1
        state.failures.append(f"{cell.key} {cell.factors}: {summary['reason']}")
    on_change(state, "cell-finished", summary)
