"""`mnist-parity run`: validate everything, train on each backend, save results as each backend ends, print the table.

Crash safety: results.json is rewritten atomically before the first backend starts (every backend "pending") and
after each one ends, so a stop at any moment keeps the finished backends. Ctrl-C or SIGTERM marks the backend in
training "interrupted", registers what finished and exits 130 or 143; after SIGKILL the saved file is registered
by the next command that opens the store (experiments.unfinished). `run --resume RUN_DIR` trains the backends
that did not finish.
"""

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from experiments.commands.checks import check_output_folder, parse_backends, require_at_least, training_sizes
from experiments.data import load_dataset
from experiments.errors import UserError
from experiments.interrupt import Interrupted, stop_on_signals
from experiments.outcome import BackendOutcome
from experiments.progress import TerminalDisplay, summary_table
from experiments.results import RESULTS_FILE, SAME_INIT, new_run_dir, summary_frame, write_results
from experiments.runner import RunResult, run_experiment
from experiments.spec import ExperimentSpec, build_plan, load_spec
from experiments.spec.loading import require_trainable
from experiments.store import StoreError, check_store, register_run, registration_failed_message, store_path
from experiments.support import missing_support
from experiments.unfinished import RunInUse, RunLock, register_leftovers

SPEC_OPTIONS = ("epochs", "seed", "dataset", "overrides", "same_init")  # fixed by the run being resumed


def _overrides(args: argparse.Namespace) -> list[str]:
    """--epochs/--seed/--dataset become ordinary overrides, so they are validated like any field."""
    extra = list(args.overrides)
    if args.epochs is not None:
        extra.append(f"training.epochs={args.epochs}")
    if args.seed is not None:
        extra.append(f"seed={args.seed}")
    if args.dataset is not None:
        extra.append(f"data.dataset={args.dataset!r}".replace("'", '"'))
    return extra


def _unsupported(backends: list[str], spec: ExperimentSpec) -> dict[str, BackendOutcome]:
    """A failed outcome for each backend that cannot realise some entry of the spec (it is never started)."""
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    missing = {backend: missing_support(backend, spec, plan) for backend in backends}
    return {b: BackendOutcome(b, status="failed", reason="unsupported: " + ", ".join(m)) for b, m in missing.items() if m}


class _Saver:
    """Writes results.json and history.csv after every change, with the outcomes in the order the user asked."""

    def __init__(self, run_dir: Path, order: list[str], kept: dict[str, BackendOutcome], command: list[str], extra: dict):
        self.run_dir, self.order, self.kept, self.command, self.extra = run_dir, order, kept, command, extra
        self.last: RunResult | None = None

    def __call__(self, result: RunResult) -> None:
        merged = {**self.kept, **{o.backend: o for o in result.outcomes}}
        self.last = RunResult(result.spec, result.dataset, result.sizes, [merged[b] for b in self.order], result.same_init)
        write_results(self.last, self.run_dir, self.command, self.extra)


def _register(run_dir: Path, store: Path, lock: RunLock, console: Console) -> bool:
    """Register the run; when the store refuses, say that results.json is kept and how to register it later."""
    try:
        register_run(run_dir, store)
    except StoreError as error:
        console.print(registration_failed_message(run_dir, store, error) + " (the next run, verify or sweep with this --out "
                      "also registers it once the store is usable)", style="red", markup=False, highlight=False, soft_wrap=True)
        lock.release()
        return False
    lock.registered()
    return True


def _train(spec, dataset, backends, order, kept, run_dir, args, console, command, extra, same_init) -> int:
    """Train `backends` into run_dir (kept: outcomes already final), saving after each; returns the exit code."""
    store = store_path(run_dir.parent)
    lock = RunLock(run_dir)
    saver = _Saver(run_dir, order, kept, command, extra)
    try:
        with stop_on_signals(), TerminalDisplay() as display:
            run_experiment(spec, dataset, backends, run_dir, args.threads, display, same_init, on_progress=saver)
    except Interrupted as stop:
        if saver.last is not None:  # saved again: the signal may have cut the last write short
            for outcome in saver.last.outcomes:
                if outcome.status == "running":
                    outcome.status, outcome.reason = "interrupted", str(stop)
            write_results(saver.last, run_dir, command, extra)
        registered = saver.last is not None and _register(run_dir, store, lock, console)
        finished = [o.backend for o in (saver.last.outcomes if saver.last else []) if o.status in ("ok", "failed")]
        console.print(f"mnist-parity: {stop}; kept {', '.join(finished) or 'no finished backend'} in {run_dir}"
                      f"{' (registered)' if registered else ''}; `mnist-parity run --resume {run_dir}` trains the rest",
                      style="yellow", markup=False, highlight=False, soft_wrap=True)
        return stop.exit_code
    result = saver.last
    registered = _register(run_dir, store, lock, console)
    console.print(summary_table(summary_frame(result), f"{spec.name} on {dataset.name}"))
    console.print(f"results: {run_dir / RESULTS_FILE}{f' (registered in {store})' if registered else ''}", highlight=False)
    return 0 if registered and all(o.status == "ok" for o in result.outcomes) else 1


def _announce(spec, dataset, sizes, backends, console) -> None:
    if dataset.record.note:
        console.print(Panel(dataset.record.note, title="dataset", style="bold yellow"), highlight=False)
    console.print(
        f"[bold]{spec.name}[/bold] on {dataset.name} ({sizes['train']:,} train / {sizes['validation']:,} validation / "
        f"{sizes['test']:,} test), {spec.training.epochs} epochs, {spec.dtype}; backends: {', '.join(backends)}",
        highlight=False,
    )


def run_command(args: argparse.Namespace, console: Console) -> int:
    """Returns 0 when every backend finished, 1 when any failed, 130/143 when stopped (2 comes from UserError
    before anything is written)."""
    require_at_least("--threads", args.threads, 1)
    if args.resume is not None:
        return _resume(args, console)
    if args.experiment is None:
        raise UserError("run: name a preset or a .toml spec, or give --resume RUN_DIR")
    backends = parse_backends(args.backends)
    spec = load_spec(args.experiment, _overrides(args))
    require_trainable(spec)
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    sizes = training_sizes(spec, dataset)
    check_output_folder(args.out)
    store = store_path(args.out)
    check_store(store)
    skipped = _unsupported(backends, spec)
    register_leftovers(args.out, store)
    _announce(spec, dataset, sizes, backends, console)
    run_dir = new_run_dir(args.out, spec.name, spec.spec_hash())
    runnable = [b for b in backends if b not in skipped]
    return _train(spec, dataset, runnable, backends, skipped, run_dir, args, console, ["mnist-parity", *sys.argv[1:]], {},
                  args.same_init)


def _read_unfinished(run_dir: Path) -> dict:
    """The results.json of a run to resume; UserError when there is none or it is not a run's."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"--resume {run_dir}: no {RESULTS_FILE} there; give a run folder made by mnist-parity run")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        spec = ExperimentSpec.model_validate(document["spec"])
        outcomes = {name: BackendOutcome(**outcome) for name, outcome in document["backends"].items()}
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"--resume {run_dir}: {RESULTS_FILE} is not a readable run record ({type(error).__name__}); "
                        "it cannot be resumed") from None
    if "sweep" in document:
        raise UserError(f"--resume {run_dir}: a sweep cell; rerun the sweep instead (it resumes by itself)")
    return {"document": document, "spec": spec, "outcomes": outcomes}


def _resume(args: argparse.Namespace, console: Console) -> int:
    """Train the backends of RUN_DIR that did not finish (pending, interrupted or failed), into the same folder."""
    given = [f"--{name.replace('_', '-')}" for name in SPEC_OPTIONS if getattr(args, name) not in (None, False, [])]
    if args.experiment is not None or args.backends is not None or given:
        extra = ", ".join(([args.experiment] if args.experiment else []) + (["--backends"] if args.backends is not None else []) + given)
        raise UserError(f"--resume: {extra} cannot be combined with it; a resumed run keeps its spec, data and backends")
    run_dir = Path(args.resume)
    saved = _read_unfinished(run_dir)
    document, spec, outcomes = saved["document"], saved["spec"], saved["outcomes"]
    todo = [name for name, outcome in outcomes.items() if outcome.status != "ok"]
    if not todo:
        raise UserError(f"--resume {run_dir}: every backend finished ok; nothing to resume")
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    recorded = document.get("dataset", {}).get("sha256")
    if recorded != dataset.record.sha256:
        raise UserError(f"--resume {run_dir}: the dataset found now ({dataset.name}, {dataset.record.source}) is not the "
                        "one the run started with (checksums differ); give --data-dir where the original files are")
    sizes = training_sizes(spec, dataset)
    check_output_folder(run_dir)
    check_store(store_path(run_dir.parent))
    register_leftovers(run_dir.parent, store_path(run_dir.parent))
    try:
        RunLock(run_dir).release()
    except RunInUse:
        raise UserError(f"--resume {run_dir}: the run is still in progress in another process") from None
    kept = {name: outcome for name, outcome in outcomes.items() if outcome.status == "ok"}
    _announce(spec, dataset, sizes, todo, console)
    console.print(f"resuming {run_dir}: kept {', '.join(kept) or 'nothing'}; training {', '.join(todo)}", highlight=False)
    resumed = [*document.get("resumed", []), {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                              "command": ["mnist-parity", *sys.argv[1:]], "backends": todo}]
    extra = {"created": document.get("created"), "resumed": resumed}
    return _train(spec, dataset, todo, list(outcomes), kept, run_dir, args, console, document.get("command", []), extra,
                  document.get("initialisation") == SAME_INIT)
