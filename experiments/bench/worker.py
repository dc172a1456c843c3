"""Bench worker: `python -m experiments.bench.worker JOB.json` times one framework in its own process.

In this one process: the harness's Trainer (backends.<name>.trainer) and the framework's tutorial-style reference loop
(backends.<name>.reference, imported here only) train on the same training split, the same batches (the first
job.steps batches of the run's first epoch), batch size, optimizer values, dtype and threads. After one untimed
warm-up chunk of each (compilation), the pairs run harness then reference, job.pairs times; a square matmul
(gemm_gflops) is timed before the pairs and after them. Everything is reported as JSON-lines events on the original
stdout (experiments.protocol.emit); what the framework prints goes to stderr (the log). Every outcome ends in one
"finished" or "failed" event.
"""

import importlib
import statistics
import sys
import time
import traceback

import numpy as np

from experiments.batching import steps_per_epoch, training_epochs
from experiments.bench.flops import forward_flops, training_flops
from experiments.bench.job import GEMM_REPEATS, BenchJob, NotExpressible
from experiments.protocol import emit
from experiments.spec import ExperimentSpec, plan_of
from experiments.worker import _event_stream, die_with_parent


def _timed(run) -> float:
    tick = time.perf_counter()
    run()
    return time.perf_counter() - tick


def _reason(error: BaseException) -> str:
    return (f"{type(error).__name__}: {error}".splitlines() or [type(error).__name__])[0][:300]


def run_job(job: BenchJob, events) -> int:
    try:
        from backends import load_trainer
        from experiments.data import to_model_inputs

        spec = ExperimentSpec.model_validate(job.spec)
        plan = plan_of(spec)
        with np.load(job.data_path) as arrays:
            x, y = to_model_inputs(arrays["x"], arrays["y"], spec.data.num_outputs, spec.dtype)
        batches = next(training_epochs(spec, len(x)))[0][: job.steps]
        samples = int(sum(len(batch) for batch in batches))
        trainer = load_trainer(job.backend)(spec, plan, job.threads)  # applies the framework's process-wide settings
        trainer.load_training_data(x, y)
        per_epoch = steps_per_epoch(len(x), spec.training.batch_size, spec.training.drop_last)
        reference_module = importlib.import_module(f"backends.{job.backend}.reference")
        emit(events, "started", versions=trainer.versions(), settings=trainer.settings(), steps=len(batches),
             samples=samples, forward_flops=forward_flops(plan), train_flops=training_flops(plan))
        gemm = [reference_module.gemm_gflops(job.gemm_size, spec.dtype) for _ in range(GEMM_REPEATS)]

        def harness():
            trainer.train_epoch(batches, trainer.learning_rates(trainer.steps_done, len(batches), per_epoch))

        reference, chunk = None, None
        try:
            reference = reference_module.reference_trainer(spec, plan, job.threads, x, y)
            chunk = reference.prepare(batches)
            emit(events, "reference", description=reference.description)
        except NotExpressible as skip:
            reference = None
            emit(events, "reference-skipped", reason=str(skip))
        except Exception as error:  # the harness is still timed; the reference's failure is reported
            traceback.print_exc(file=sys.stderr)
            reference = None
            emit(events, "reference-failed", reason=_reason(error))
        harness_warmup = _timed(harness)
        reference_warmup = None
        if reference is not None:
            try:
                reference_warmup = _timed(lambda: reference.train(chunk))
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                reference = None
                emit(events, "reference-failed", reason=_reason(error))
        emit(events, "warmup", harness_s=harness_warmup, reference_s=reference_warmup)
        for index in range(job.pairs):
            harness_s = _timed(harness)
            reference_s = _timed(lambda: reference.train(chunk)) if reference is not None else None
            emit(events, "pair", index=index, harness_s=harness_s, reference_s=reference_s)
        gemm += [reference_module.gemm_gflops(job.gemm_size, spec.dtype) for _ in range(GEMM_REPEATS)]
        emit(events, "finished", gemm_gflops=statistics.median(gemm), gemm_samples=gemm, gemm_size=job.gemm_size)
        return 0
    except Exception as error:  # the parent reports any failure as this backend's result
        traceback.print_exc(file=sys.stderr)
        emit(events, "failed", reason=_reason(error))
        return 1


def main(argv: list[str]) -> int:
    die_with_parent()
    events = _event_stream()
    return run_job(BenchJob.read(argv[0]), events)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
