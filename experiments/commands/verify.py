"""`mnist-parity verify`: run the parity ladder's levels and print a pass/fail table per level and pair."""

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from backends import DEFAULT_BACKENDS
from experiments.commands.run import _backends
from experiments.data import load_dataset
from experiments.errors import UserError
from experiments.progress import TerminalDisplay
from experiments.results import atomic_write_text, new_run_dir
from experiments.spec import load_spec
from experiments.spec.loading import require_trainable
from experiments.verify.level5 import run_level5

LEVEL_NAMES = {1: "forward", 2: "gradients", 3: "step", 4: "trajectory", 5: "statistical"}


def parse_levels(text: str) -> list[int]:
    """"1-4", "5", "all", "2,3" -> sorted level numbers."""
    if text == "all":
        return [1, 2, 3, 4, 5]
    levels = set()
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


def verify_command(args: argparse.Namespace, console: Console) -> int:
    levels = parse_levels(args.levels)
    backends = _backends(args.backends) if args.backends else list(DEFAULT_BACKENDS)
    if args.seeds < 1:
        raise UserError(f"--seeds: {args.seeds}; must be at least 1")
    overrides = list(args.overrides) + ([f'dtype="{args.dtype}"'] if args.dtype else [])
    spec = load_spec(args.experiment, overrides)
    require_trainable(spec)
    unsupported = [level for level in levels if level != 5]
    if unsupported:
        raise UserError(f"--levels: level(s) {unsupported} are not available yet in this version; use --levels 5")
    dataset = load_dataset(spec.data.dataset, args.data_dir, download=not args.no_download)
    run_dir = new_run_dir(args.out, f"verify-{spec.name}", spec.spec_hash())
    document = {"spec": spec.to_dict(), "dataset": dataset.record.to_dict(), "levels": {}}
    if 5 in levels:
        with TerminalDisplay() as display:
            result = run_level5(spec, dataset, backends, args.seeds, run_dir, args.threads, display, args.margin)
        document["levels"]["5"] = result
        console.print(_level5_table(result))
        for failure in result["failures"]:
            console.print(f"FAILED: {failure}", style="red", markup=False)
    document["passed"] = all(level["passed"] for level in document["levels"].values())
    atomic_write_text(run_dir / "verify.json", json.dumps(document, indent=2, default=float) + "\n")
    console.print(f"verify: {'PASSED' if document['passed'] else 'FAILED'}; {run_dir / 'verify.json'}", highlight=False)
    return 0 if document["passed"] else 1
