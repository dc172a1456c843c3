"""`mnist-parity verify`: run the parity ladder's levels and print a pass/fail table per level and pair."""

import argparse
import fnmatch
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.markup import escape

from rich.console import Console
from rich.table import Table

from experiments.commands.checks import (
    check_out, parse_backends, require_at_least, require_positive_finite, training_sizes,
)
from experiments.data import load_dataset, split_train_validation, to_model_inputs
from experiments.data.tasks import binary_targets, task_labels
from experiments.environment import environment
from experiments.errors import UserError
from experiments.progress import TerminalDisplay
from experiments.results import atomic_write_text, folder_name, new_run_dir
from experiments.spec import ExperimentSpec, load_spec, plan_of
from experiments.spec.loading import require_trainable
from experiments.store import register_run, store_path
from experiments.unfinished import register_leftovers
from experiments.verify.attribution import attribute_cells
from experiments.verify.cases import ORACLE
from experiments.verify.ladder import compare_all, run_probes, summarize, trajectory_growth
from experiments.verify.level5 import run_level5
from experiments.verify.matrix import matrix_cells
from experiments.verify.rounding import REFERENCE_SUFFIX, explain_by_rounding, reference_cells, rounding_floors

MATRIX_BASE = "mlp-relu-adam"  # --matrix takes its data and seed from this preset unless given one

LEVEL_NAMES = {1: "forward", 2: "gradients", 3: "step", 4: "trajectory", 5: "statistical"}


def _provenance() -> dict:
    """When, by which command, and on what machine and install a verify document was made."""
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": ["mnist-parity", *sys.argv[1:]],
            "environment": environment()}


def parse_levels(text: str) -> list[int]:
    """"1-4", "5", "all", "2,3" -> sorted level numbers."""
    if text.strip() == "all":
        return [1, 2, 3, 4, 5]
    levels = set()
    if not text.strip():
        raise UserError(f"--levels: {text!r} names no level; use e.g. 1-4, 5, 2,3 or all")
    for part in text.split(","):
        low, _, high = part.partition("-")
        try:
            levels.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise UserError(f"--levels: {text!r}; use e.g. 1-4, 5, 2,3 or all") from None
    if not levels or min(levels) < 1 or max(levels) > 5:
        raise UserError(f"--levels: {text!r}; levels are 1 (forward) to 5 (statistical)")
    return sorted(levels)


def _level5_table(result: dict) -> Table:
    table = Table(title=f"level 5: test accuracy over seeds {result['seeds']} (points, 95% CI)")
    for column in ("backend", "mean", "95% CI", "per seed"):
        table.add_column(column)
    for row in result["backends"]:
        table.add_row(row["backend"], f"{row['mean']:.2f}", f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]",
                      " ".join(f"{100 * a:.2f}" for a in row["accuracies"]))
    pairs = Table(title=f"level 5: equivalence within ±{result['margin_points']} points (paired TOST, alpha 0.05)")
    for column in ("pair", "mean difference", "90% CI", "p (TOST)", "verdict"):
        pairs.add_column(column)
    for p in result["pairs"]:
        style = {"equivalent": "green", "different": "red"}.get(p["verdict"], "yellow")
        pairs.add_row(f"{p['first']} vs {p['second']}", f"{p['mean_difference']:+.3f}",
                      f"[{p['ci90_low']:+.3f}, {p['ci90_high']:+.3f}]", f"{p['p_tost']:.3g}", f"[{style}]{p['verdict']}[/{style}]")
    grid = Table.grid()
    grid.add_row(table)
    grid.add_row(pairs)
    return grid


def _probe_data(spec, dataset):
    """The training split as model inputs in float64 (the probes cast to the spec's dtype)."""
    x_train, y_train, _, _ = split_train_validation(dataset.x_train, dataset.y_train, spec.data.validation_fraction, spec.seed)
    labels = task_labels(y_train, spec.data.task)
    if spec.data.num_outputs == 1:
        x, _ = to_model_inputs(x_train, np.zeros(len(labels), dtype=np.int64), 2, "float64")
        return x, binary_targets(labels, "float64")
    return to_model_inputs(x_train, labels, spec.data.num_outputs, "float64")


def _compared(spec, results: dict[str, dict], floors: dict[str, float] | None = None, search=None) -> tuple[list, list[dict]]:
    """One cell's comparison rows (every backend against the oracle and every pair) and its summary lines;
    floors (float32): failing trajectory rows within reach of float32 rounding say so; search (native mode): a
    function of the rows that gives each failing row its cause (experiments.verify.attribution)."""
    rows = compare_all(results, spec.dtype, spec)
    if floors:
        explain_by_rounding(rows, floors)
    if search is not None and spec.implementation == "native" and not all(row.passed for row in rows):
        search(rows)
    return rows, summarize(rows, [layer.name for layer in plan_of(spec)])


def _level_documents(rows, lines, levels, failures) -> dict:
    out = {}
    for number in levels:
        name = LEVEL_NAMES[number]
        level_lines = [line for line in lines if line["level"] == name]
        out[str(number)] = {
            "name": name, "summary": level_lines, "rows": [r.to_dict() for r in rows if r.level == name],
            "failures": failures, "passed": not failures and bool(level_lines) and all(line["passed"] for line in level_lines),
        }
    return out


def _numeric_levels(spec, dataset, backends, levels, args, run_dir, console) -> dict:
    """Levels 1-4 on one batch (and args.steps steps), every backend against the oracle and each other."""
    x, y = _probe_data(spec, dataset)
    console.print(f"levels {levels} on {escape(spec.name)} in {spec.dtype}: probing {', '.join(['numpy (oracle)', *backends])}", highlight=False)
    (run_dir / "logs").mkdir(exist_ok=True)
    cell = folder_name(spec.name)  # cells name the probes' files: never the raw spec name
    cells = {cell: {"spec": spec.to_dict(), "step_cases": None}}
    reference = reference_cells(cells) if spec.dtype == "float32" and 4 in levels else {}
    results, failures = run_probes(cells, backends, levels, args.steps, x, y, args.threads, run_dir / "logs", reference)
    exact = results.pop(f"{cell}{REFERENCE_SUFFIX}", {}).get(ORACLE, {})
    rounded = results[cell].get(ORACLE, {})
    floors = rounding_floors(rounded, exact) if exact and rounded else {}
    def search(rows):
        console.print("native: swapping components back to the catalog to find each difference's cause", highlight=False)
        attribute_cells({cell: (spec, results[cell], rows)}, x, y, args.threads, run_dir / "logs", args.steps)

    rows, lines = _compared(spec, results[cell], floors, search)
    console.print(_ladder_table(lines, spec.dtype))
    growth = trajectory_growth(rows)
    if growth:
        console.print(_growth_table(growth, spec.dtype))
    for backend, reason in failures.items():
        console.print(f"FAILED: {backend}: {reason}", style="red", markup=False)
    document = _level_documents(rows, lines, levels, failures)
    if "4" in document:
        document["4"]["growth"] = growth
        if floors:
            document["4"]["rounding_floor"] = {"loss": floors.get("trajectory/loss"), "worst": max(floors.values())}
            console.print(f"float32 rounding floor (float32 oracle against its float64 run): loss curve "
                          f"{floors.get('trajectory/loss', float('nan')):.1e}, worst quantity {max(floors.values()):.1e}",
                          highlight=False)
    return document


def _growth_table(growth: dict[str, dict[int, float]], dtype: str) -> Table:
    steps = sorted({step for pair in growth.values() for step in pair})
    table = Table(title=f"trajectory ({dtype}): worst parameter error after each checkpoint step, and its growth")
    for column in ("pair", *(f"step {s}" for s in steps), "growth"):
        table.add_column(column)
    for pair, errors in growth.items():
        first, last = errors[steps[0]], errors[steps[-1]]
        factor = f"x{last / first:.3g}" if first > 0 else ("-" if last == 0 else "from 0")
        table.add_row(pair, *(f"{errors[s]:.1e}" if s in errors else "-" for s in steps), factor)
    return table


def _selected_cells(base: str, args: argparse.Namespace) -> dict[str, dict]:
    every = matrix_cells(base, list(args.overrides), args.dtype or "float64")
    cells = {cell: entry for cell, entry in every.items() if fnmatch.fnmatchcase(cell, args.cells)}
    if not cells:
        raise UserError(f"--cells: {args.cells!r} matches no cell; cells are <mlp|cnn>-<activation|optimizer>-<entry>, "
                        f"e.g. {', '.join(list(every)[:2])}, cnn-optimizer-nadam")
    return cells


def _matrix(cells, dataset, backends, levels, args, run_dir, console) -> dict:
    """Levels 1-4 for the cells of experiments.verify.matrix; one status line per cell."""
    dtype = args.dtype or "float64"
    first = ExperimentSpec.model_validate(next(iter(cells.values()))["spec"])
    x, y = _probe_data(first, dataset)
    console.print(f"matrix: {len(cells)} cells, levels {levels} in {dtype}, probing {', '.join(['numpy (oracle)', *backends])}",
                  highlight=False)
    (run_dir / "logs").mkdir(exist_ok=True)
    results, failures = run_probes(cells, backends, levels, args.steps, x, y, args.threads, run_dir / "logs")
    document = {}
    compared = {}
    for cell, entry in cells.items():
        spec = ExperimentSpec.model_validate(entry["spec"])
        compared[cell] = (spec, results[cell], compare_all(results[cell], spec.dtype, spec))
    native = {cell: job for cell, job in compared.items()
              if job[0].implementation == "native" and not all(row.passed for row in job[2])}
    if native:
        console.print(f"native: {len(native)} cells fail somewhere; swapping components back to the catalog to find "
                      f"each difference's cause", highlight=False)
        attribute_cells(native, x, y, args.threads, run_dir / "logs", args.steps)
    for cell, entry in cells.items():
        spec, _, rows = compared[cell]
        lines = summarize(rows, [layer.name for layer in plan_of(spec)])
        document[cell] = {key: entry[key] for key in ("model", "axis", "entry", "overrides")}
        document[cell]["levels"] = _level_documents(rows, lines, levels, failures)
        document[cell]["passed"] = all(level["passed"] for level in document[cell]["levels"].values())
    console.print(_matrix_table(document, levels, dtype))
    for backend, reason in failures.items():
        console.print(f"FAILED: {backend}: {reason}", style="red", markup=False)
    return document


def _matrix_table(document: dict, levels: list[int], dtype: str) -> Table:
    table = Table(title=f"parity matrix ({dtype}): worst normwise relative error over all pairs per level")
    for column in ("model", "axis", "entry", *(LEVEL_NAMES[n] for n in levels)):
        table.add_column(column, overflow="fold")
    for cell in document.values():
        figures = []
        for number in levels:
            level = cell["levels"][str(number)]
            worst = max((line["worst_error"] for line in level["summary"] if line["worst_error"] is not None), default=None)
            failing = [line for line in level["summary"] if not line["passed"]]
            text = "-" if worst is None else f"{worst:.1e}"
            if level["passed"]:
                figures.append(f"[green]pass[/green] {text}")
            else:
                where = failing[0]["first_failure"] if failing else "no result"
                figures.append(f"[red]FAIL[/red] {text} {escape(where)}")
        table.add_row(cell["model"], cell["axis"], escape(cell["entry"]), *figures)
    return table


def _ladder_table(lines: list[dict], dtype: str) -> Table:
    table = Table(title=f"parity ladder ({dtype}): normwise relative error, worst quantity per level and pair")
    native = any(line.get("cause") for line in lines)
    for column in ("level", "pair", "result", "worst error", "tolerance", "worst quantity", "first failure",
                   "cause (measured)" if native else "known cause"):
        table.add_column(column, overflow="fold")
    for line in lines:
        result = "[green]pass[/green]" if line["passed"] else "[red]FAIL[/red]"
        error = "-" if line["worst_error"] is None else f"{line['worst_error']:.2e}"
        table.add_row(line["level"], f"{line['first']} vs {line['second']}", result, error, f"{line['tolerance']:.0e}",
                      escape(line["worst_quantity"]), escape(line["first_failure"]), escape(line.get("cause") or line["hint"]))
    return table


def _matrix_command(args: argparse.Namespace, backends: list[str], console: Console) -> int:
    levels = parse_levels("1-4" if args.levels is None else args.levels)
    if 5 in levels:
        raise UserError(f"--levels: {args.levels!r}; --matrix runs levels 1 to 4 only")
    base = args.experiment or MATRIX_BASE
    spec = load_spec(base, list(args.overrides))
    selected = _selected_cells(base, args)
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    _check_out(args.out)
    run_dir = new_run_dir(args.out, "verify-matrix", spec.spec_hash())
    cells = _matrix(selected, dataset, backends, levels, args, run_dir, console)
    document = {**_provenance(), "base": base, "dtype": args.dtype or "float64", "dataset": dataset.record.to_dict(), "matrix": cells,
                "passed": all(cell["passed"] for cell in cells.values())}
    atomic_write_text(run_dir / "verify.json", json.dumps(document, indent=2, default=float) + "\n")
    register_run(run_dir, store_path(args.out))
    failed = [name for name, cell in cells.items() if not cell["passed"]]
    console.print(f"verify --matrix: {len(cells) - len(failed)} of {len(cells)} cells pass"
                  f"{'' if not failed else '; failing: ' + ', '.join(failed)}; {run_dir / 'verify.json'}", highlight=False)
    return 0 if document["passed"] else 1


def _check_out(out: Path) -> None:
    """--out can be written, its store is usable, and runs a killed command left unregistered are registered."""
    register_leftovers(out, check_out(out))


def verify_command(args: argparse.Namespace, console: Console) -> int:
    backends = parse_backends(args.backends)
    require_at_least("--steps", args.steps, 1)
    require_at_least("--threads", args.threads, 1)
    if args.matrix:
        return _matrix_command(args, backends, console)
    if args.cells != "*":
        raise UserError(f"--cells {args.cells!r}: only with --matrix (it picks matrix cells)")
    if args.experiment is None:
        raise UserError("verify: name a preset or a .toml spec (or use --matrix)")
    levels = parse_levels("5" if args.levels is None else args.levels)
    if 5 in levels:
        require_at_least("--seeds", args.seeds, 2, ": level 5 compares accuracy over seeds, and one seed has no interval")
        require_positive_finite("--margin", args.margin)
    overrides = list(args.overrides) + ([f'dtype="{args.dtype}"'] if args.dtype else [])
    spec = load_spec(args.experiment, overrides)
    require_trainable(spec)
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    train = training_sizes(spec, dataset)["train"]
    if any(level != 5 for level in levels) and spec.training.batch_size > train:
        raise UserError(f"training.batch_size: {spec.training.batch_size} is more than the {train:,} training samples; "
                        f"levels 1-4 probe whole batches, so use a batch size of at most {train:,}")
    _check_out(args.out)
    run_dir = new_run_dir(args.out, f"verify-{spec.name}", spec.spec_hash())
    document = {**_provenance(), "spec": spec.to_dict(), "spec_hash": spec.spec_hash(), "dataset": dataset.record.to_dict(),
                "levels": {}}
    numeric = [level for level in levels if level != 5]
    if numeric:
        document["levels"].update(_numeric_levels(spec, dataset, backends, numeric, args, run_dir, console))
    if 5 in levels:
        with TerminalDisplay() as display:
            result = run_level5(spec, dataset, backends, args.seeds, run_dir, args.threads, display, args.margin)
        document["levels"]["5"] = result
        console.print(_level5_table(result))
        for failure in result["failures"]:
            console.print(f"FAILED: {failure}", style="red", markup=False)
    document["passed"] = all(level["passed"] for level in document["levels"].values())
    atomic_write_text(run_dir / "verify.json", json.dumps(document, indent=2, default=float) + "\n")
    register_run(run_dir, store_path(args.out))
    console.print(f"verify: {'PASSED' if document['passed'] else 'FAILED'}; {run_dir / 'verify.json'}", highlight=False)
    return 0 if document["passed"] else 1
