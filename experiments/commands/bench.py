"""`mnist-parity bench`: the harness's training step against each framework's tutorial-style loop, timed in
interleaved pairs in one process per framework (experiments.bench.worker); prints the table, writes bench.json.

Every input is checked before anything is written (bad input: one line, exit 2). Each framework runs in its own
worker process, one after another (so each has the machine to itself); a worker that fails or crashes is reported as
that backend's result and the others still run. The machine's load from other processes is measured during each
backend's timed pairs (experiments.load.LoadMeter). bench.json is registered in a results store inside the output
folder: `<--out>/results.sqlite` with --out (nothing is written outside --out), `runs/results.sqlite` for the default
`runs/bench-<time>` (the store of `run`'s default folder); it is checked before anything runs. Exit 0 when every
backend finished (a reference skipped because the plan has something a tutorial-style model cannot express is not a
failure) and the bench was registered, 1 otherwise.
"""

import argparse
import shutil
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console

from experiments.batching import steps_per_epoch
from experiments.bench.job import BenchJob
from experiments.bench.results import BENCH_FILE, BackendBench, print_table, write_bench
from experiments.cli import DEFAULT_OUT
from experiments.commands.checks import check_output_folder, parse_backends, require_at_least, training_sizes
from experiments.data import load_dataset, split_train_validation
from experiments.data.tasks import task_labels
from experiments.errors import UserError
from experiments.load import LoadMeter, LoadSource, ProcLoad
from experiments.spec import load_spec, plan_of
from experiments.spec.loading import require_trainable
from experiments.store import StoreError, check_store, register_bench, registration_failed_message, store_path
from experiments.support import missing_support
from experiments.worker import stream_worker

DEFAULT_PRESETS = ["mlp-relu-adam"]
DEFAULT_DATASET = "mnist-subset"
SCRATCH = ".scratch"


def _specs(args: argparse.Namespace) -> list:
    overrides = list(args.overrides) + [f'data.dataset="{args.dataset}"']
    specs = []
    for preset in dict.fromkeys(args.presets or DEFAULT_PRESETS):
        spec = load_spec(preset, overrides)
        require_trainable(spec)
        specs.append(spec)
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise UserError(f"bench: two specs named {next(n for n in names if names.count(n) > 1)!r}; give each preset once")
    return specs


def _write_training_split(spec, dataset, path: Path) -> None:
    """The run's training split (validation held out by spec.seed, as `run` does), uint8 images and task labels."""
    x, y, _, _ = split_train_validation(dataset.x_train, dataset.y_train, spec.data.validation_fraction, spec.seed)
    np.savez(path, x=x, y=task_labels(y, spec.data.task))


def run_worker(job: BenchJob, job_path: Path, log_path: Path, console: Console,
               load_source: Callable[[str], LoadSource] = ProcLoad) -> BackendBench:
    """Start the worker, apply its events, and turn any crash into a failed result; the load is measured from the end
    of the warm-up to the end of the last timed pair (load_source: as experiments.runner.run_experiment's)."""
    bench = BackendBench(job.backend, log=str(log_path))
    job.write(job_path)
    meter = LoadMeter(job.threads, load_source(str(job_path)), marked="the timed pairs")

    def on_event(event: dict) -> None:
        if event["event"] in ("warmup", "pair"):
            meter.mark()
        bench.apply(event)
        if event["event"] == "pair":
            console.print(f"  {job.backend}: pair {event['index'] + 1} of {job.pairs}", highlight=False)

    with meter:
        code = stream_worker("experiments.bench.worker", job_path, log_path, job.threads, on_event)
    bench.load = meter.summary()
    if bench.status not in ("ok", "failed"):
        bench.status, bench.reason = "failed", f"worker exited with code {code} before finishing"
    return bench


def bench_command(args: argparse.Namespace, console: Console, load_source: Callable[[str], LoadSource] = ProcLoad) -> int:
    require_at_least("--threads", args.threads, 1)
    require_at_least("--pairs", args.pairs, 1)
    require_at_least("--steps", args.steps, 1)
    require_at_least("--gemm-size", args.gemm_size, 1)
    backends = parse_backends(args.backends)
    specs = _specs(args)
    dataset = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
    steps = {}
    for spec in specs:
        per_epoch = steps_per_epoch(training_sizes(spec, dataset)["train"], spec.training.batch_size, spec.training.drop_last)
        if args.steps is not None and args.steps > per_epoch:
            raise UserError(f"--steps: {args.steps}; {spec.name} has {per_epoch} batches per epoch on {dataset.name}, "
                            f"and a timed chunk is at most one epoch")
        steps[spec.name] = args.steps or per_epoch
    out = args.out if args.out is not None else DEFAULT_OUT / f"bench-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    check_output_folder(out)
    store = store_path(out if args.out is not None else DEFAULT_OUT)
    check_store(store)
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    scratch = out / SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    results: dict[str, dict[str, BackendBench]] = {}
    try:
        for spec in specs:
            plan = plan_of(spec)
            data_path = scratch / f"{spec.name}.npz"
            _write_training_split(spec, dataset, data_path)
            results[spec.name] = {}
            for backend in backends:
                missing = missing_support(backend, spec, plan)
                if missing:
                    results[spec.name][backend] = BackendBench(backend, "failed", "unsupported: " + ", ".join(missing))
                    continue
                console.print(f"{spec.name} on {backend}: {steps[spec.name]} batches of {spec.training.batch_size} per "
                              f"timed chunk, 1 warm-up + {args.pairs} pair(s), {args.threads} thread(s)", highlight=False)
                job = BenchJob(backend, spec.to_dict(), str(data_path), args.threads, args.pairs, steps[spec.name], args.gemm_size)
                results[spec.name][backend] = run_worker(job, scratch / f"{spec.name}-{backend}.job.json",
                                                         out / "logs" / f"{spec.name}-{backend}.log", console, load_source)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(console, results, args.threads, args.gemm_size)
    settings = {"command": ["mnist-parity", *getattr(args, "argv", sys.argv[1:])],
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dataset": dataset.name,
                "threads": args.threads, "pairs": args.pairs, "steps": steps, "gemm_size": args.gemm_size,
                "presets": [spec.name for spec in specs], "backends": backends,
                "specs": {spec.name: spec.to_dict() for spec in specs}}
    write_bench(out / BENCH_FILE, results, settings)
    try:
        register_bench(out, store)
    except StoreError as error:
        Console(stderr=True).print(registration_failed_message(out, store, error), style="red", markup=False,
                                   highlight=False, soft_wrap=True)
        return 1
    console.print(f"bench: {out / BENCH_FILE} (registered in {store})", highlight=False)
    return 0 if all(b.status == "ok" and not b.reference_failed for r in results.values() for b in r.values()) else 1
