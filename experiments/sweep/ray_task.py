"""The sweep cell as a Ray task: runs on a worker node and reads nothing of the driver's, writes nothing it keeps.

    train_shipped_cell(task, dataset, inbox) -> {"files": {relative path: bytes}, "summary": {...}, "node": str}

The dataset arrives through Ray's object store (the driver ray.put it once); the cell trains in a
private temporary folder on the worker, exactly as run_cell trains locally (experiments.sweep.task.train_cell,
each backend in its own process), with every path written into results.json pointing at where the
driver will publish it; the folder's files go back as bytes and the folder is removed. Progress
is posted to the driver's ProgressInbox actor: the cell's start and attempt (waited for, so a retry of a cell whose
node died at once is still seen), then each epoch (fire and forget).
"""

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from experiments.sweep.cell_files import read_tree
from experiments.sweep.task import cell_summary, train_cell

WORK_PREFIX = "mnist-parity-cell-"
NODE_CHARS = 12  # of the node id (hex), in a work folder's name
START_POST_TIMEOUT_S = 10.0  # a cell waits this long at most for its start to reach the driver's inbox
JOIN_S = 0.2  # how often the waiting main thread lets a cancel (KeyboardInterrupt) in


class ProgressInbox:
    """A Ray actor on the driver's node: tasks post (key, event) pairs, the driver takes them in batches."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def post(self, key: str, event: dict) -> None:
        self.events.append((key, event))

    def take(self) -> list[tuple[str, dict]]:
        events, self.events = self.events, []
        return events


def _poster(inbox, key: str, attempt: str):
    """post(event, wait=False): send an event to the inbox; wait=True blocks until it is there (up to a timeout)."""
    import ray

    def post(event: dict, wait: bool = False) -> None:
        if inbox is None:
            return
        ref = inbox.post.remote(key, {**event, "attempt": attempt})
        if wait:
            try:
                ray.get(ref, timeout=START_POST_TIMEOUT_S)
            except Exception:  # progress only: the cell trains all the same
                pass

    return post


def work_prefix(node: str) -> str:
    """The name every work folder of this node starts with: `mnist-parity-cell-<node>-`, then `<pid>-<key>-...`."""
    return f"{WORK_PREFIX}{node[:NODE_CHARS]}-"


def remove_orphaned_work(node: str) -> None:
    """Remove this node's work folders whose worker process was killed (`mnist-parity-cell-<node>-<pid>-...`, that pid
    gone): a killed process cannot clean up after itself, the next cell on the node does. Another node's folders are
    left alone even where nodes share a temp dir (a pid says nothing about a process of another machine)."""
    prefix = work_prefix(node)
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = folder.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _train_until_cancelled(task: dict, dataset, work: Path, final: str, on_event):
    """train_cell in a thread of its own. Ray's polite cancel raises KeyboardInterrupt in this (the main) thread only
    between bytecodes, and train_cell may sit for a whole epoch in a blocking read of its backend's output; here the
    main thread only waits, so on a cancel it kills the backend processes at once (their output ends, train_cell
    returns) and the cancel goes on, leaving the work folder to be removed."""
    import psutil

    outcome: dict = {}

    def train() -> None:
        try:
            outcome["result"] = train_cell(task, dataset, work, final, on_event)
        except BaseException as error:  # handed to the main thread
            outcome["error"] = error

    thread = threading.Thread(target=train, name=f"cell-{task['cell']['key']}", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(JOIN_S)
    except KeyboardInterrupt:
        for child in psutil.Process().children(recursive=True):
            child.kill()
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def train_shipped_cell(task: dict, dataset, inbox) -> dict:
    """Train one cell on this worker and return its files and summary (see the module docstring)."""
    import ray  # present on every worker: this runs inside one

    key = task["cell"]["key"]
    started = time.perf_counter()
    node = ray.get_runtime_context().get_node_id()
    post = _poster(inbox, key, f"{node[:8]}-{os.getpid()}-{time.monotonic_ns()}")
    print(f"mnist-parity: sweep {task['sweep']} cell {key} on node {node} (cwd {os.getcwd()})", file=sys.stderr, flush=True)
    post({"event": "cell-started", "node": node}, wait=True)  # delivered before training: a retry is always seen
    final = str(Path(task["cells_dir"]) / key)  # the driver's path, a name only: never opened here
    remove_orphaned_work(node)
    work = Path(tempfile.mkdtemp(prefix=f"{work_prefix(node)}{os.getpid()}-{key}-"))
    try:
        training = time.perf_counter()
        result = _train_until_cancelled(task, dataset, work, final, lambda backend, event: post(event))
        trained = time.perf_counter() - training
        files = read_tree(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"files": files, "summary": cell_summary(key, result, time.perf_counter() - started, trained), "node": node}
