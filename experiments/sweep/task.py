"""One sweep cell as a task: plain data in, plain data out, run here (local executor) or on a Ray worker.

    run_cell({"sweep": name, "cell": Cell.to_dict(), "cells_dir": str, "data_dir": str | None,
              "download": bool, "threads": int, "store": str | None}) -> {"key", "status", ...}

(cell_task builds that dict, for both executors.)

The cell trains in a worker process (experiments.runner) into `cells/.partial-<key>-<pid>`, which
is renamed to `cells/<key>` only once its results.json is written: a cell directory exists
complete or not at all, so a killed sweep loses only the cells in flight. The Ray executor uses the
same pieces split apart: train_cell on the worker (into a private folder), new_partial and
publish_cell on the driver (experiments.sweep.ray_executor).
"""

import json
import os
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

from experiments.data import load_dataset
from experiments.results import write_results
from experiments.runner import run_experiment
from experiments.spec import ExperimentSpec
from experiments.store import register_run

PARTIAL_PREFIX = ".partial-"
DAMAGED_PREFIX = ".damaged-"
RESULTS_FILE = "results.json"
# the fields of a cell's metrics and history (results.json, history.csv) read from a clock, never equal twice; the
# rest is the same on every run of the cell, on either executor
CLOCK_FIELDS = frozenset({"train_time_s", "samples_per_s", "steady_samples_per_s", "epoch_time_s", "elapsed_s"})


def cell_task(sweep: str, cell, cells_dir: Path, threads: int, *, data_dir: str | None = None, download: bool = False,
              store: Path | None = None) -> dict:
    """The task of one cell (see the module docstring), for either executor. A Ray task leaves the data and store
    options out: the driver loads the data and registers the cell, the worker never reads either."""
    return {"sweep": sweep, "cell": cell.to_dict(), "cells_dir": str(cells_dir), "data_dir": data_dir,
            "download": download, "threads": threads, "store": None if store is None else str(store)}


def cell_status(cell_dir: Path) -> str | None:
    """"ok" or "failed" for a published cell, None for one that is missing or unreadable."""
    try:
        backends = json.loads((Path(cell_dir) / RESULTS_FILE).read_text(encoding="utf-8"))["backends"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return "ok" if backends and all(b.get("status") == "ok" for b in backends.values()) else "failed"


def move_aside(cell_dir: Path) -> Path:
    """Rename a damaged cell folder (no readable results.json) to `.damaged-<key>-<time>`: kept for
    inspection, out of the way of a fresh result, never deleted."""
    target = cell_dir.with_name(f"{DAMAGED_PREFIX}{cell_dir.name}-{time.time_ns()}")
    os.rename(cell_dir, target)
    return target


def _publish(partial: Path, final: Path) -> None:
    """Rename the finished cell into place; an existing complete cell wins, a damaged one is moved aside."""
    try:
        os.rename(partial, final)
        return
    except OSError:
        if cell_status(final) is not None:
            shutil.rmtree(partial, ignore_errors=True)
            return
    move_aside(final)
    os.rename(partial, final)


def _relocate(outcomes, partial: Path, final: Path) -> None:
    """Point the outcomes' log paths (and reasons quoting them) at the published folder."""
    for outcome in outcomes:
        outcome.log = outcome.log.replace(str(partial), str(final))
        outcome.reason = outcome.reason.replace(str(partial), str(final))


class _Forward:
    """The runner's Display, forwarding each event to an optional callback."""

    def __init__(self, on_event: Callable[[str, dict], None] | None):
        self.on_event = on_event

    def backend_started(self, backend: str, epochs: int) -> None:
        pass

    def event(self, backend: str, event: dict) -> None:
        if self.on_event is not None:
            self.on_event(backend, event)

    def backend_finished(self, outcome) -> None:
        pass


@lru_cache(maxsize=4)
def cell_dataset(name: str, data_dir: str | None, download: bool):
    """A cell's dataset, loaded once per process (the sweep command loads each one up front to fail early)."""
    return load_dataset(name, data_dir, download=download)


def train_cell(task: dict, dataset, run_dir: Path, final: str, on_event: Callable[[str, dict], None] | None = None):
    """Train the cell into run_dir and write its results.json, history.csv and logs there, every path in them
    pointing at `final` (where the cell will be published: on another machine, only a name). Returns the RunResult."""
    cell = task["cell"]
    spec = ExperimentSpec.model_validate(cell["spec"])
    result = run_experiment(spec, dataset, [cell["backend"]], run_dir, task["threads"], _Forward(on_event))
    _relocate(result.outcomes, run_dir, final)
    extra = {"sweep": {"name": task["sweep"], "key": cell["key"], "factors": cell["factors"], "overrides": cell["overrides"]}}
    write_results(result, run_dir, ["mnist-parity", "sweep", task["sweep"]], extra)
    return result


def new_partial(cells_dir: Path, key: str) -> Path:
    """A fresh `cells/.partial-<key>-<pid>-<ns>` folder to fill before publishing."""
    partial = Path(cells_dir) / f"{PARTIAL_PREFIX}{key}-{os.getpid()}-{time.monotonic_ns()}"
    partial.mkdir(parents=True)
    return partial


def publish_cell(partial: Path, final: Path, store: str | None) -> None:
    """Rename a complete cell folder into place, then register it in the store (idempotent)."""
    try:
        _publish(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if store:
        register_run(final, Path(store))


def cell_summary(key: str, result, seconds: float, train_seconds: float) -> dict:
    """The plain summary a cell returns: status, reason, test accuracy, its whole time and its training time."""
    outcome = result.outcomes[0]
    return {"key": key, "status": outcome.status, "reason": outcome.reason,
            "test_accuracy": outcome.metrics.get("test_accuracy"), "seconds": seconds, "train_seconds": train_seconds}


def run_cell(task: dict, on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Train one cell and publish its run directory; returns a plain summary (status "ok" or "failed")."""
    cell = task["cell"]
    spec = ExperimentSpec.model_validate(cell["spec"])
    final = Path(task["cells_dir"]) / cell["key"]
    started = time.perf_counter()
    dataset = cell_dataset(spec.data.dataset, task.get("data_dir"), bool(task.get("download", False)))
    partial = new_partial(Path(task["cells_dir"]), cell["key"])
    training = time.perf_counter()
    try:
        result = train_cell(task, dataset, partial, str(final), on_event)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    trained = time.perf_counter() - training
    publish_cell(partial, final, task.get("store"))
    return cell_summary(cell["key"], result, time.perf_counter() - started, trained)
