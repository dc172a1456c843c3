"""Backend worker process: `python -m experiments.worker JOB.json` trains one backend and reports events.

Events go to the original stdout as JSON lines; everything else the framework prints (C++
logs included) is redirected to stderr, which the runner keeps in the run's log file.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from experiments.protocol import Job, emit, parse_event
from experiments.threads import worker_environment
from experiments.spec import ExperimentSpec, plan_of
from experiments.training import SplitData, train


def _event_stream():
    """A private copy of stdout for events; fd 1 itself is pointed at stderr."""
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


def _load_split(path: str, dtype: str, num_outputs: int) -> SplitData:
    """Model inputs in dtype: one-hot targets for 10 outputs, (N, 1) 0/1 targets for one."""
    from experiments.data import to_model_inputs
    from experiments.data.tasks import binary_targets

    arrays = np.load(path)
    parts = {}
    for part in ("train", "val", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if num_outputs == 1:
            parts[f"x_{part}"], _ = to_model_inputs(x, np.zeros(len(y), dtype=np.int64), 2, dtype)
            parts[f"y_{part}"] = binary_targets(y, dtype)
        else:
            parts[f"x_{part}"], parts[f"y_{part}"] = to_model_inputs(x, y, num_outputs, dtype)
    return SplitData(**parts)


def run_job(job: Job, events) -> int:
    """Train the job's backend; every outcome, failure included, ends in one final event."""
    try:
        from backends import load_trainer

        spec = ExperimentSpec.model_validate(job.spec)
        num_outputs = spec.data.num_outputs
        plan = plan_of(spec)
        data = _load_split(job.data_path, spec.dtype, num_outputs)
        tick = time.perf_counter()
        trainer = load_trainer(job.backend)(spec, plan, job.threads)
        if job.init_path is not None:
            with np.load(job.init_path) as initial:
                trainer.set_weights({name: initial[name].astype(spec.dtype) for name in initial.files})
        emit(
            events, "started", versions=trainer.versions(),
            settings={**trainer.settings(), "implementation": spec.implementation, "native_fallbacks": trainer.native_fallbacks},
            parameter_count=trainer.parameter_count(), build_time_s=time.perf_counter() - tick,
        )
        result = train(trainer, spec, data, lambda record: emit(events, "epoch", **asdict(record)))
        emit(events, "finished", **result.metrics())
        return 0
    except Exception as error:  # the runner reports any failure as this backend's result
        traceback.print_exc(file=sys.stderr)
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        emit(events, "failed", reason=reason)
        return 1


PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_VARIABLE = "MNIST_PARITY_PARENT_PID"


def child_environment(threads: int) -> dict[str, str]:
    """The environment to start a worker or probe with: the thread settings, and this process's pid, which the child
    checks to know its parent is still alive (die_with_parent)."""
    return {**worker_environment(threads), PARENT_VARIABLE: str(os.getpid())}


def stream_worker(module: str, job_path: Path, log_path: Path, threads: int, on_event: Callable[[dict], None]) -> int:
    """Run `python -m module job_path` in a session of its own (a Ctrl-C in the terminal reaches the caller alone),
    stderr to log_path, passing each event it prints to on_event; returns its exit code. When the caller is stopped
    (Interrupted, KeyboardInterrupt) the worker is killed and the exception goes on."""
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, "-m", module, str(job_path)], stdout=subprocess.PIPE, stderr=log,
                                   text=True, bufsize=1, env=child_environment(threads), start_new_session=True)
        try:
            for line in process.stdout:
                event = parse_event(line)
                if event is not None:
                    on_event(event)
            return process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise


def die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the process that started it dies, however it dies (SIGKILL
    included), so no orphan keeps training; elsewhere a no-op (the orphan then dies at its next event write)."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = os.environ.get(PARENT_VARIABLE)
    if parent is not None and str(os.getppid()) != parent:  # the parent died before the request took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()
    events = _event_stream()
    return run_job(Job.read(argv[0]), events)


if __name__ == "__main__":
    sys.exit(main())
