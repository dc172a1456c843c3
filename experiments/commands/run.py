"""`mnist-parity run`: validate everything, train on each backend, save results as each backend ends, print the table.

Crash safety: results.json is rewritten atomically before the first backend starts (every backend "pending") and
after each one ends, so a stop at any moment keeps the finished backends. Ctrl-C or SIGTERM marks the backend in
training "interrupted", registers what finished and exits 130 or 143; after SIGKILL the saved file is registered
by the next command that opens the store (experiments.unfinished). `run --resume RUN_DIR` trains the backends
that did not finish.
"""

import argparse
import shutil
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from experiments.cli import DEFAULT_OUT, NATIVE
from experiments.commands.checks import check_out, check_output_folder, parse_backends, require_at_least, training_sizes
from experiments.data import load_dataset
from experiments.errors import UserError
from experiments.interrupt import Interrupted, stop_on_signals
from experiments.outcome import BackendOutcome
from experiments.progress import TerminalDisplay, load_warning, summary_caption, summary_table
from experiments.results import RESULTS_FILE, SAME_INIT, new_run_dir, summary_frame, write_results
from experiments.runner import SCRATCH, RunResult, run_experiment
from experiments.load import LoadSource, ProcLoad
from experiments.spec import ExperimentSpec, load_spec, plan_of
from experiments.spec.loading import require_trainable, validate_spec
from experiments.store.documents import read_run_document
from experiments.store import StoreError, register_run, registration_failed_message, store_path
from experiments.support import missing_support
from experiments.unfinished import RunInUse, RunLock, register_leftovers



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
    plan = plan_of(spec)
    missing = {backend: missing_support(backend, spec, plan) for backend in backends}
    return {b: BackendOutcome(b, status="failed", reason="unsupported: " + ", ".join(m)) for b, m in missing.items() if m}


class _Saver:
    """Writes results.json and history.csv after every change, with the outcomes in the order the user asked."""

    def __init__(self, run_dir: Path, order: list[str], kept: dict[str, BackendOutcome], command: list[str], extra: dict,
                 kept_loads: dict[str, dict] | None = None):
        self.run_dir, self.order, self.kept, self.command, self.extra = run_dir, order, kept, command, extra
        self.kept_loads = kept_loads or {}  # a resumed run's loads of the backends it keeps
        self.last: RunResult | None = None

    def __call__(self, result: RunResult) -> None:
        merged = {**self.kept, **{o.backend: o for o in result.outcomes}}
        loads = {**self.kept_loads, **result.loads}
        self.last = RunResult(result.spec, result.dataset, result.sizes, [merged[b] for b in self.order], result.same_init,
                              {b: loads[b] for b in self.order if b in loads})
        write_results(self.last, self.run_dir, self.command, self.extra)


def _register(run_dir: Path, store: Path, lock: RunLock) -> bool:
    """Register the run; when the store refuses, say that results.json is kept and how to register it later."""
    try:
        register_run(run_dir, store)
    except StoreError as error:
        Console(stderr=True).print(registration_failed_message(run_dir, store, error) + " (the next run, verify or sweep with this --out "
                      "also registers it once the store is usable)", style="red", markup=False, highlight=False, soft_wrap=True)
        lock.release()
        return False
    lock.registered()
    return True


def _stopped(stop: Interrupted, saver: "_Saver", run_dir: Path, store: Path, lock: RunLock) -> int:
    """After Ctrl-C or SIGTERM: save the last state (the signal may have cut a write short), register it, say what was
    kept and how to finish; returns 130 or 143."""
    if saver.last is None:
        lock.release()
        Console(stderr=True).print(f"mnist-parity: {stop} before any backend started; nothing to keep in {run_dir}; start the run again",
                      style="yellow", markup=False, highlight=False, soft_wrap=True)
        return stop.exit_code
    for outcome in saver.last.outcomes:
        if outcome.status == "running":
            outcome.status, outcome.reason = "interrupted", str(stop)
    saver(saver.last)
    registered = _register(run_dir, store, lock)
    finished = [o.backend for o in saver.last.outcomes if o.status in ("ok", "failed")]
    Console(stderr=True).print(f"mnist-parity: {stop}; kept {', '.join(finished) or 'no finished backend'} in {run_dir}"
                  f"{' (registered)' if registered else ''}; `mnist-parity run --resume {run_dir}` trains the rest",
                  style="yellow", markup=False, highlight=False, soft_wrap=True)
    return stop.exit_code


def _train(spec, dataset, backends, order, kept, run_dir, lock, args, console, command, extra, same_init,
           kept_loads: dict[str, dict] | None = None, load_source: Callable[[str], LoadSource] = ProcLoad) -> int:
    """Train `backends` into run_dir (kept: outcomes already final, kept_loads: their measured loads), saving after
    each; returns the exit code. Everything, the cleanup after a stop included, runs with the stop signals caught: a
    second Ctrl-C cannot cut the saving short. load_source: as experiments.runner.run_experiment's."""
    store = store_path(run_dir.parent)
    saver = _Saver(run_dir, order, kept, command, extra, kept_loads)
    with stop_on_signals():
        try:
            with TerminalDisplay() as display:
                run_experiment(spec, dataset, backends, run_dir, args.threads, display, same_init, on_progress=saver,
                               load_source=load_source)
        except Interrupted as stop:
            return _stopped(stop, saver, run_dir, store, lock)
        registered = _register(run_dir, store, lock)
    result = saver.last
    console.print(summary_table(summary_frame(result), f"{escape(spec.name)} on {dataset.name}"))
    console.print(summary_caption(result, args.threads), highlight=False, markup=False, soft_wrap=True)
    warning = load_warning(result)
    if warning:
        console.print(warning, style="yellow", highlight=False, markup=False, soft_wrap=True)
    console.print(f"results: {run_dir / RESULTS_FILE}{f' (registered in {store})' if registered else ''}", highlight=False)
    return 0 if registered and all(o.status == "ok" for o in result.outcomes) else 1


def _announce(spec, dataset, sizes, backends, console) -> None:
    if dataset.record.note:
        console.print(Panel(dataset.record.note, title="dataset", style="bold yellow"), highlight=False)
    console.print(
        f"[bold]{escape(spec.name)}[/bold] on {dataset.name} ({sizes['train']:,} train / {sizes['validation']:,} validation / "
        f"{sizes['test']:,} test), {spec.training.epochs} epochs, {spec.dtype}; backends: {', '.join(backends)}",
        highlight=False,
    )


def run_command(args: argparse.Namespace, console: Console, load_source: Callable[[str], LoadSource] = ProcLoad) -> int:
    """Returns 0 when every backend finished, 1 when any failed, 130/143 when stopped (2 comes from UserError
    before anything is written). load_source: where each backend's load is read from (experiments.load.ProcLoad,
    /proc; a stand-in in tests)."""
    require_at_least("--threads", args.threads, 1)
    if args.resume is not None:
        return _resume(args, console, load_source)
    if args.experiment is None:
        raise UserError("run: name a preset or a .toml spec, or give --resume RUN_DIR")
    out = DEFAULT_OUT if args.out is None else args.out
    backends = parse_backends(args.backends)
    spec = load_spec(args.experiment, _overrides(args))
    require_trainable(spec)
    store = check_out(out)
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    sizes = training_sizes(spec, dataset)
    skipped = _unsupported(backends, spec)
    register_leftovers(out, store)
    _announce(spec, dataset, sizes, backends, console)
    run_dir = new_run_dir(out, spec.name, spec.spec_hash())
    runnable = [b for b in backends if b not in skipped]
    return _train(spec, dataset, runnable, backends, skipped, run_dir, RunLock(run_dir), args, console,
                  ["mnist-parity", *sys.argv[1:]], {}, args.same_init, load_source=load_source)


def _read_unfinished(run_dir: Path) -> tuple[dict, ExperimentSpec, dict[str, BackendOutcome]]:
    """The results.json of a run to resume, checked as the store checks it, its spec validated as a spec file's is;
    UserError when there is none, it is a sweep cell's, or it is damaged."""
    if not (run_dir / RESULTS_FILE).is_file():
        raise UserError(f"--resume {run_dir}: no {RESULTS_FILE} there; give a run folder made by mnist-parity run")
    record = read_run_document(run_dir)
    if record.kind != "run":
        raise UserError(f"--resume {run_dir}: a sweep cell; rerun the sweep instead (it resumes by itself)")
    document = record.data
    spec = validate_spec(document["spec"], str(record.path))
    require_trainable(spec)
    if not isinstance(document.get("dataset"), dict) or not isinstance(document.get("resumed", []), list):
        raise UserError(f"--resume {run_dir}: {RESULTS_FILE} has no dataset record (or a damaged 'resumed' list); it cannot be resumed")
    fields = set(BackendOutcome.__dataclass_fields__)
    outcomes = {name: BackendOutcome(**{k: v for k, v in outcome.items() if k in fields}) for name, outcome in document["backends"].items()}
    return document, spec, outcomes


def _resume(args: argparse.Namespace, console: Console, load_source: Callable[[str], LoadSource] = ProcLoad) -> int:
    """Train the backends of RUN_DIR that did not finish (pending, interrupted or failed), into the same folder."""
    given = [option for option, value in (("--epochs", args.epochs), ("--seed", args.seed), ("--dataset", args.dataset),
                                          ("--backends", args.backends), ("--out", args.out)) if value is not None]
    given += ["--set" if args.overrides != [NATIVE] else "--native"] * bool(args.overrides) + ["--same-init"] * args.same_init + [repr(args.experiment)] * (args.experiment is not None)
    if given:
        raise UserError(f"--resume: {', '.join(given)} cannot be combined with it; a resumed run keeps its spec, data, "
                        "backends and folder")
    run_dir = Path(args.resume).resolve()
    document, spec, outcomes = _read_unfinished(run_dir)
    todo = [name for name, outcome in outcomes.items() if outcome.status != "ok"]
    if not todo:
        raise UserError(f"--resume {run_dir}: every backend finished ok; nothing to resume")
    check_output_folder(run_dir)
    store = check_out(run_dir.parent)
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    if document["dataset"].get("sha256") != dataset.record.sha256:
        raise UserError(f"--resume {run_dir}: the dataset found now ({dataset.name}, {dataset.record.source}) is not the "
                        "one the run started with (checksums differ); give --data-dir where the original files are")
    sizes = training_sizes(spec, dataset)
    skipped = _unsupported(todo, spec)
    try:
        lock = RunLock(run_dir)
    except RunInUse:
        raise UserError(f"--resume {run_dir}: the run is still in progress in another process") from None
    shutil.rmtree(run_dir / SCRATCH, ignore_errors=True)
    register_leftovers(run_dir.parent, store)  # other dead runs beside it (this one is locked by us)
    kept = {name: outcome for name, outcome in outcomes.items() if outcome.status == "ok"} | skipped
    _announce(spec, dataset, sizes, todo, console)
    console.print(f"resuming {run_dir}: kept {', '.join(kept) or 'nothing'}; training {', '.join(todo)}", highlight=False)
    resumed = [*document.get("resumed", []), {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                              "command": ["mnist-parity", *sys.argv[1:]], "backends": todo}]
    extra = {"created": document.get("created"), "resumed": resumed}
    kept_loads = {name: document["backends"][name]["load"] for name in kept
                  if isinstance(document["backends"].get(name, {}).get("load"), dict)}
    return _train(spec, dataset, [b for b in todo if b not in skipped], list(outcomes), kept, run_dir, lock, args, console,
                  document.get("command", []), extra, document.get("initialisation") == SAME_INIT, kept_loads, load_source)
