"""Run one experiment on several backends, each in its own process, on identical data and batches."""

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from experiments.data import Dataset, split_train_validation
from experiments.data.tasks import task_labels
from experiments.outcome import BackendOutcome
from experiments.protocol import Job, parse_event
from experiments.spec import ExperimentSpec, build_plan
from experiments.threads import worker_environment


class Display(Protocol):
    """Receives live progress; see experiments.progress for the terminal implementation."""

    def backend_started(self, backend: str, epochs: int) -> None: ...
    def event(self, backend: str, event: dict) -> None: ...
    def backend_finished(self, outcome: BackendOutcome) -> None: ...


@dataclass(frozen=True)
class RunResult:
    """All backends' outcomes for one spec and dataset."""

    spec: ExperimentSpec
    dataset: Dataset
    sizes: dict[str, int]
    outcomes: list[BackendOutcome]
    same_init: bool = False


def write_split(spec: ExperimentSpec, dataset: Dataset, path: Path) -> dict[str, int]:
    """Split train/validation from spec.seed and save the uint8 arrays every worker will read."""
    x_train, y_train, x_val, y_val = split_train_validation(
        dataset.x_train, dataset.y_train, spec.data.validation_fraction, spec.seed
    )
    task = spec.data.task
    np.savez(
        path, x_train=x_train, y_train=task_labels(y_train, task), x_val=x_val, y_val=task_labels(y_val, task),
        x_test=dataset.x_test, y_test=task_labels(dataset.y_test, task), num_outputs=spec.data.num_outputs,
    )
    return {"train": len(x_train), "validation": len(x_val), "test": len(dataset.x_test)}


def run_backend(job: Job, job_path: Path, log_path: Path, display: Display) -> BackendOutcome:
    """Start the worker, stream its events to the display, and turn any crash into a failed outcome."""
    outcome = BackendOutcome(job.backend, log=str(log_path))
    job.write(job_path)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "experiments.worker", str(job_path)],
            stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1, env=worker_environment(job.threads),
        )
        try:
            for line in process.stdout:
                event = parse_event(line)
                if event is not None:
                    outcome.apply(event)
                    display.event(job.backend, event)
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
    if outcome.status not in ("ok", "failed"):
        outcome.status = "failed"
        outcome.reason = f"worker exited with code {code} before finishing; see {log_path}"
        last = [ln for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        if last:
            outcome.reason += f" (last line: {last[-1].strip()[:200]})"
    return outcome


def write_initial_weights(spec: ExperimentSpec, path: Path) -> None:
    """One float64 draw of every parameter from the spec's initialisers (seeded by spec.seed), canonical layout."""
    from backends.numpy.trainer import initial_weights  # NumPy only

    np.savez(path, **initial_weights(build_plan(spec.model, (28, 28, 1), spec.data.num_outputs), spec.seed))


def run_experiment(
    spec: ExperimentSpec, dataset: Dataset, backends: list[str], run_dir: Path, threads: int, display: Display,
    same_init: bool = False,
) -> RunResult:
    """Train spec on every backend in turn (sequentially, so each gets the whole machine and fair timings).

    same_init: every backend starts from one NumPy draw of the initial weights instead of
    drawing from the same distributions with its own random stream.
    """
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="mnist-parity-") as scratch:
        data_path = Path(scratch) / "split.npz"
        sizes = write_split(spec, dataset, data_path)
        init_path = Path(scratch) / "initial_weights.npz" if same_init else None
        if init_path is not None:
            write_initial_weights(spec, init_path)
        for backend in backends:
            display.backend_started(backend, spec.training.epochs)
            job = Job(backend, spec.to_dict(), str(data_path), threads, str(init_path) if init_path else None)
            outcome = run_backend(job, Path(scratch) / f"{backend}.job.json", logs / f"{backend}.log", display)
            display.backend_finished(outcome)
            outcomes.append(outcome)
    return RunResult(spec, dataset, sizes, outcomes, same_init)
