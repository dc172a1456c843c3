"""Run a sweep's cells as Ray tasks: the driver ships each dataset once, every cell's files come back as data, and the
driver publishes and registers them exactly as the local executor does (same lock, partial folders, store).

Faults: a cell whose worker process or node dies is retried by Ray up to `retries` times, then reported failed with
Ray's reason and not published, so a rerun trains it again; the other cells go on, as they do when publishing one
cell here fails. A stop (Ctrl-C, SIGTERM) cancels the cells in flight (Ray's polite cancel first, which stops a
cell's backend processes at once and lets it remove its work folder; a kill after CANCEL_GRACE_S) and keeps every
cell that finished published, those that finished during the cancel included. Call inside ray_cluster.connect().
"""

import shutil
import time
from pathlib import Path

from experiments.sweep.bookkeeping import (OnChange, SweepState, cell_finished, failed_summary, pending_cells, sweep_dir,
                                           sweep_lock, write_sweep_document)
from experiments.sweep.cell_files import write_tree
from experiments.sweep.cells import Cell
from experiments.sweep.definition import SweepDefinition
from experiments.sweep.ray_progress import ProgressRelay
from experiments.sweep.ray_task import ProgressInbox, train_shipped_cell
from experiments.sweep.task import cell_dataset, cell_task, new_partial, publish_cell

DEFAULT_RETRIES = 2  # per cell, after a worker process or node dies; an error inside the cell is never retried
POLL_S = 0.5  # how often the driver collects progress while it waits for cells
PROGRESS_TIMEOUT_S = 10.0  # the progress inbox lives on the driver's node; past this it counts as lost
CANCEL_GRACE_S = 10.0  # after a stop: time for cancelled cells to clean up before their workers are killed


def run_sweep_on_ray(
    sweep: SweepDefinition, cells: list[Cell], out: Path, *, workers: int | None, threads: int, data_dir: str | None,
    download: bool, retries: int, retry_failed: bool, store: Path | None, on_change: OnChange,
) -> SweepState:
    """Run every cell not yet published on the connected cluster, each task asking for `threads` CPUs, at most
    `workers` in flight (None: as many as the cluster takes). on_change sees what the local executor reports, plus
    "cell-restarted" when Ray retries a cell."""
    directory = sweep_dir(out, sweep.name)
    with sweep_lock(directory, sweep.name):
        state, pending = pending_cells(sweep, cells, directory, retry_failed=retry_failed, store=store, on_change=on_change)
        if pending:
            task, inbox = _remote_parts(threads, retries)
            driver = _Driver(sweep, directory / "cells", state, on_change, threads=threads, retries=retries, store=store,
                             task=task, inbox=inbox)
            driver.run(pending, workers or len(pending), _ship_datasets(pending, data_dir, download, state))
        write_sweep_document(directory, sweep, cells)
        return state


def _ship_datasets(pending: list[Cell], data_dir: str | None, download: bool, state: SweepState) -> dict:
    """Each dataset the cells need, loaded once here and put in the object store: {name: ObjectRef}."""
    import ray

    started = time.perf_counter()
    refs, size = {}, 0
    for name in dict.fromkeys(cell.spec["data"]["dataset"] for cell in pending):
        dataset = cell_dataset(name, data_dir, download)
        size += sum(a.nbytes for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test))
        refs[name] = ray.put(dataset)
    state.timings.update(ship_s=time.perf_counter() - started, ship_bytes=size)
    return refs


def _failure_reason(error: Exception, retries: int) -> str:
    """One line: the cell's own exception, or what Ray says happened to its worker after the retries."""
    from ray.exceptions import RayTaskError

    if isinstance(error, RayTaskError) and error.cause is not None:
        cause = error.cause
        text = f"{type(cause).__name__}: {cause}"
    else:
        text = f"Ray {type(error).__name__} (after {retries} retries): {error}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:400] if lines else type(error).__name__


def _remote_parts(threads: int, retries: int) -> tuple:
    """The cell task (asking for `threads` CPUs, retried `retries` times when its worker dies) and the progress inbox."""
    import ray

    task = ray.remote(train_shipped_cell).options(num_cpus=threads, max_retries=retries, retry_exceptions=False)
    inbox = ray.remote(num_cpus=0)(ProgressInbox).options(**_on_this_node()).remote()
    return task, inbox


class _Driver:
    """Submits the cells (task.remote), relays progress (from inbox; None: none), publishes what comes back."""

    def __init__(self, sweep, cells_dir: Path, state: SweepState, on_change: OnChange, *, threads, retries, store, task,
                 inbox):
        self.sweep, self.cells_dir, self.state, self.on_change, self.store = sweep, cells_dir, state, on_change, store
        self.threads, self.retries, self.task, self.inbox = threads, retries, task, inbox
        self.in_flight: dict = {}  # ObjectRef -> (cell, submitted at)

    def run(self, pending: list[Cell], limit: int, datasets: dict) -> None:
        import ray

        relay = ProgressRelay(self.state, self.on_change, {cell.key: cell for cell in pending})
        queue = list(pending)
        try:
            while queue or self.in_flight:
                while queue and len(self.in_flight) < limit:
                    cell = queue.pop(0)
                    shipped = cell_task(self.sweep.name, cell, self.cells_dir, self.threads)
                    ref = self.task.remote(shipped, datasets[cell.spec["data"]["dataset"]], self.inbox)
                    self.in_flight[ref] = (cell, time.perf_counter())
                ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=POLL_S)
                relay.forward(self._take_progress())
                for ref in ready:
                    self._finish(ref, relay)
        except BaseException:
            self._stop(relay)
            raise

    def _take_progress(self) -> list:
        """The events posted since the last call; none once the inbox is lost (progress then moves by whole cells)."""
        import ray
        from ray.exceptions import RayError

        if self.inbox is None:
            return []
        try:
            return ray.get(self.inbox.take.remote(), timeout=PROGRESS_TIMEOUT_S)
        except RayError:
            self.inbox = None
            return []

    def _finish(self, ref, relay: ProgressRelay, stopping: bool = False) -> None:
        """Publish (or report failed) one cell whose task ended. The cell leaves in_flight only once that is done, so
        a stop while it is being published leaves it to _stop, which publishes it again (publishing is idempotent).
        stopping: a cell cancelled by the stop is dropped, neither published nor counted (a rerun trains it)."""
        import ray
        from ray.exceptions import TaskCancelledError

        cell, submitted = self.in_flight[ref]
        try:
            returned = ray.get(ref)
        except TaskCancelledError as error:
            if stopping:
                del self.in_flight[ref]
                return
            summary = failed_summary(cell, _failure_reason(error, self.retries))
        except Exception as error:  # RayTaskError (the cell raised) or a worker or node lost beyond the retries
            summary = failed_summary(cell, _failure_reason(error, self.retries))
        else:
            summary = publish_returned(self.cells_dir, cell, returned, self.store, submitted)
        del self.in_flight[ref]
        relay.finished(cell.key)
        cell_finished(self.state, cell, summary, self.on_change)

    def _stop(self, relay: ProgressRelay) -> None:
        """After a stop: publish the cells already back, cancel the others (politely, then by force), and publish
        those that finished all the same during the grace period (a cell cancelled is dropped: a rerun trains it)."""
        import ray

        if not self.in_flight:
            return
        ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        for ref in ready:
            self._finish(ref, relay)
        refs = list(self.in_flight)
        for ref in refs:
            _cancel(ref, force=False)
        done, still = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in still:
            _cancel(ref, force=True)
        for ref in done:
            self._finish(ref, relay, stopping=True)


def publish_returned(cells_dir: Path, cell: Cell, returned: dict, store: Path | None, submitted: float) -> dict:
    """Publish and register the files a cell's task returned, as the local executor does, and return its summary. A
    failure here (a disk full, a store that cannot be written, a file name that would leave the cell's folder) costs
    this cell only: a failed summary, as the local executor reports a crash in the parent's part of a cell."""
    publishing = time.perf_counter()
    try:
        partial = new_partial(cells_dir, cell.key)
        try:
            write_tree(returned["files"], partial)
            publish_cell(partial, cells_dir / cell.key, None if store is None else str(store))
        finally:
            shutil.rmtree(partial, ignore_errors=True)  # a stop or a failure half way; once published it is gone
    except Exception as error:
        return failed_summary(cell, f"publishing on the driver: {type(error).__name__}: {error}")
    published = time.perf_counter()
    # seconds: the cell's own time (its task on the worker, then publishing here), as the local executor counts it;
    # round_trip_seconds: submitted -> published, queueing behind other cells included
    return {**returned["summary"], "seconds": returned["summary"]["seconds"] + published - publishing,
            "round_trip_seconds": published - submitted, "node": returned["node"]}


def _cancel(ref, force: bool) -> None:
    import ray

    try:
        ray.cancel(ref, force=force)
    except Exception:  # already finished, or its worker is gone: nothing left to stop
        pass


def _on_this_node() -> dict:
    """Actor options pinning the progress inbox to the driver's node (a worker node may die mid-sweep). Pinned hard:
    Ray 2.60 placed a soft-pinned zero-CPU actor on another node when the driver's node had no idle worker."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        node = ray.get_runtime_context().get_node_id()
    except Exception:  # Ray Client: the driver is no node of the cluster; anywhere will do
        return {}
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}
