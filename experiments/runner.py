"""Run one experiment on several backends, each in its own process, on identical data and batches; the machine's
load from other processes is measured while each one trains (experiments.load.LoadMeter)."""

import shutil
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from experiments.data import Dataset, split_train_validation
from experiments.data.tasks import task_labels
from experiments.load import LoadMeter, LoadSource, ProcLoad
from experiments.outcome import BackendOutcome
from experiments.protocol import Job
from experiments.spec import ExperimentSpec, plan_of
from experiments.spec.weights import initial_weights
from experiments.worker import stream_worker


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
    loads: dict[str, dict] = field(default_factory=dict)  # backend -> LoadMeter.summary(), for the backends measured


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


def run_backend(job: Job, job_path: Path, log_path: Path, display: Display, outcome: BackendOutcome | None = None,
                meter: LoadMeter | None = None) -> BackendOutcome:
    """Start the worker, stream its events to the display, and turn any crash into a failed outcome.

    The worker runs in a session of its own, so a Ctrl-C in the terminal reaches this process alone; when this
    process is stopped (Interrupted, KeyboardInterrupt) the worker is killed and the exception goes on, the
    outcome keeping the epochs it reported. The worker also dies with this process (experiments.worker).
    meter: measures the machine's load while the worker runs, marked at the end of every epoch.
    """
    outcome = outcome or BackendOutcome(job.backend)
    outcome.log = str(log_path)
    job.write(job_path)

    def on_event(event: dict) -> None:
        if meter is not None and event["event"] == "epoch":
            meter.mark()
        outcome.apply(event)
        display.event(job.backend, event)

    with meter if meter is not None else nullcontext():
        code = stream_worker("experiments.worker", job_path, log_path, job.threads, on_event)
    if outcome.status not in ("ok", "failed"):
        outcome.status = "failed"
        outcome.reason = f"worker exited with code {code} before finishing; see {log_path}"
        last = [ln for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        if last:
            outcome.reason += f" (last line: {last[-1].strip()[:200]})"
    return outcome


def write_initial_weights(spec: ExperimentSpec, path: Path) -> None:
    """One float64 draw of every parameter from the spec's initialisers (seeded by spec.seed), canonical layout."""
    np.savez(path, **initial_weights(plan_of(spec), spec.seed))


SCRATCH = ".scratch"  # inside the run folder: a killed run leaves nothing outside --out


def run_experiment(
    spec: ExperimentSpec, dataset: Dataset, backends: list[str], run_dir: Path, threads: int, display: Display,
    same_init: bool = False, on_progress: Callable[[RunResult], None] | None = None,
    load_source: Callable[[str], LoadSource] = ProcLoad,
) -> RunResult:
    """Train spec on every backend in turn (sequentially, so each gets the whole machine and fair timings).

    same_init: every backend starts from one NumPy draw of the initial weights instead of
    drawing from the same distributions with its own random stream.
    on_progress: called with the result so far (backends still to train "pending", the one training "running")
    before the first backend starts and after each one ends, so the caller can save finished work as it comes.
    When the run is stopped (Interrupted, KeyboardInterrupt), the backend in training is marked "interrupted",
    on_progress sees that last state, and the exception goes on.
    load_source: given a worker's job file path, the LoadSource a LoadMeter reads while that worker trains (default
    ProcLoad, from /proc); each backend's LoadMeter.summary() goes into the result's loads (its steady epochs: from
    the end of epoch 1 to the end of the last; a one-epoch run: the worker's whole run).
    """
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    scratch = run_dir / SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)  # left by a killed run
    scratch.mkdir()
    outcomes = {backend: BackendOutcome(backend) for backend in backends}
    loads: dict[str, dict] = {}
    try:
        data_path = scratch / "split.npz"
        sizes = write_split(spec, dataset, data_path)
        init_path = scratch / "initial_weights.npz" if same_init else None
        if init_path is not None:
            write_initial_weights(spec, init_path)

        def progress() -> RunResult:
            result = RunResult(spec, dataset, sizes, list(outcomes.values()), same_init, dict(loads))
            if on_progress is not None:
                on_progress(result)
            return result

        result = progress()
        for backend in backends:
            display.backend_started(backend, spec.training.epochs)
            job = Job(backend, spec.to_dict(), str(data_path), threads, str(init_path) if init_path else None)
            outcome = outcomes[backend]
            outcome.status = "running"
            progress()
            job_path = scratch / f"{backend}.job.json"
            meter = LoadMeter(threads, load_source(str(job_path)), marked="epochs 2 to the last")
            try:
                run_backend(job, job_path, logs / f"{backend}.log", display, outcome, meter)
            except KeyboardInterrupt as stop:
                outcome.status, outcome.reason = "interrupted", str(stop) or "interrupted"
                raise
            finally:
                load = meter.summary()
                if load is not None:
                    loads[backend] = load
                if outcome.status == "interrupted":
                    progress()
            display.backend_finished(outcome)
            result = progress()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result
