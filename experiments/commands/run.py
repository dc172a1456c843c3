"""`mnist-parity run`: validate everything, train on each backend, write results, print the table."""

import argparse
import sys

from rich.console import Console
from rich.panel import Panel

from backends import BACKENDS, DEFAULT_BACKENDS
from experiments.data import load_dataset
from experiments.errors import UserError
from experiments.outcome import BackendOutcome
from experiments.progress import TerminalDisplay, summary_table
from experiments.results import new_run_dir, summary_frame, write_results
from experiments.runner import RunResult, run_experiment
from experiments.spec import build_plan, load_spec
from experiments.spec.loading import require_trainable
from experiments.store import check_store, register_run, store_path
from experiments.support import missing_support


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


def _backends(requested: list[str] | None) -> list[str]:
    backends = list(requested or DEFAULT_BACKENDS)
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown or not backends:
        raise UserError(f"--backends: unknown backend {', '.join(map(repr, unknown)) or '(none)'}; allowed: {', '.join(BACKENDS)}")
    return list(dict.fromkeys(backends))


def run_command(args: argparse.Namespace, console: Console) -> int:
    """Returns 0 when every backend finished, 1 when any failed (2 comes from UserError before training)."""
    backends = _backends(args.backends)
    if args.threads < 1:
        raise UserError(f"--threads: {args.threads}; must be at least 1")
    spec = load_spec(args.experiment, _overrides(args))
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    if dataset.record.note:
        console.print(Panel(dataset.record.note, title="dataset", style="bold yellow"), highlight=False)
    require_trainable(spec)
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    runnable = [b for b in backends if not missing_support(b, spec, plan)]

    check_store(store_path(args.out))
    run_dir = new_run_dir(args.out, spec.name, spec.spec_hash())
    console.print(
        f"[bold]{spec.name}[/bold] on {dataset.name} ({len(dataset.x_train):,} train / {len(dataset.x_test):,} test), "
        f"{spec.training.epochs} epochs, {spec.dtype}; backends: {', '.join(backends)}", highlight=False,
    )
    with TerminalDisplay() as display:
        result = run_experiment(spec, dataset, runnable, run_dir, args.threads, display, args.same_init)
    skipped = [
        BackendOutcome(b, status="failed", reason="unsupported: " + ", ".join(missing_support(b, spec, plan)))
        for b in backends if b not in runnable
    ]
    order = {name: i for i, name in enumerate(backends)}
    outcomes = sorted(result.outcomes + skipped, key=lambda o: order[o.backend])
    result = RunResult(result.spec, result.dataset, result.sizes, outcomes, result.same_init)
    path = write_results(result, run_dir, ["mnist-parity", *sys.argv[1:]])
    store = store_path(args.out)
    register_run(run_dir, store)
    console.print(summary_table(summary_frame(result), f"{spec.name} on {dataset.name}"))
    console.print(f"results: {path} (registered in {store})", highlight=False)
    return 0 if all(o.status == "ok" for o in outcomes) else 1
