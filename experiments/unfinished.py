"""Runs that have not been registered yet: a marker file in the run folder, locked while its run is alive.

`run` creates `<run>/.unregistered` and holds an exclusive lock on it until the run is registered in the store,
then removes it. A run killed outright (SIGKILL, a power cut) leaves the marker unlocked: the next command that
opens the store (run, verify, sweep) finds it, marks the backend that was training as interrupted, and registers
what the run had saved. The lock, released by the kernel when its process dies however it dies, tells a dead run
from one still training beside the new command.
"""

import fcntl
import json
import shutil
from pathlib import Path

from experiments.errors import UserError
from experiments.results import RESULTS_FILE, atomic_write_text
from experiments.runner import SCRATCH
from experiments.store import register_run
from experiments.store.documents import read_run_document

MARKER = ".unregistered"
KILLED = "the run was killed while this backend trained (found and registered by a later command)"


class RunLock:
    """The marker of one unregistered run, locked by this process; `registered()` removes it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / MARKER
        self._handle = open(self.path, "a")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise RunInUse(run_dir) from None

    def registered(self) -> None:
        """The run is in the store: remove the marker, release the lock."""
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class RunInUse(Exception):
    """Another live process holds this run's lock."""


def _mark_killed(run_dir: Path) -> None:
    """A backend still "running" in the saved results.json of a dead run was killed: say so (the document is checked
    first, as the store checks it, so a damaged one raises UserError)."""
    path = Path(run_dir) / RESULTS_FILE
    document = read_run_document(run_dir).data
    changed = False
    for outcome in document["backends"].values():
        if outcome["status"] == "running":
            outcome["status"], outcome["reason"] = "interrupted", KILLED
            changed = True
    if changed:
        atomic_write_text(path, json.dumps(document, indent=2) + "\n")


def register_leftovers(out: Path, store: Path) -> list[Path]:
    """Register every run directly under out whose run died before registering (its marker unlocked), and remove the
    scratch folder it left. A damaged leftover is left as it is, marker included, for a person to look at."""
    found = []
    for marker in sorted(Path(out).glob(f"*/{MARKER}")):
        run_dir = marker.parent
        try:
            lock = RunLock(run_dir)
        except (RunInUse, OSError):
            continue  # alive in another process, or not ours to touch
        try:
            shutil.rmtree(run_dir / SCRATCH, ignore_errors=True)
            if (run_dir / RESULTS_FILE).is_file():
                _mark_killed(run_dir)
                register_run(run_dir, store)
                found.append(run_dir)
            lock.registered()
        except (UserError, OSError):
            pass
        finally:
            lock.release()
    return found
