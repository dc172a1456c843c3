"""`mnist-parity bench-sweep`: one small sweep on the local executor, then on Ray; prints wall time and per-cell overhead.

A cell's overhead is its time as the driver sees it (submitted -> published and registered) less its training time
(run_experiment and writing results, measured where it trained). Locally that is the pool, the partial folder and the
store; on Ray it adds scheduling, shipping the task and its result, and the worker process. Ray's start-up (or
connection) and putting the datasets in the object store are one-off costs, printed apart. Both runs go to separate
folders of a fresh --out (an existing non-empty one is refused), so nothing is skipped as finished; their histories
are compared (clock fields aside) to show the same work.
"""

import argparse
import csv
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from experiments.commands.sweep import prepare_out
from experiments.errors import UserError
from experiments.sweep import SweepDefinition, expand_cells, load_sweep
from experiments.sweep.ray_cluster import check_address
from experiments.sweep.task import CLOCK_FIELDS

BENCH_SWEEP = SweepDefinition(
    name="bench-sweep", description="4 one-epoch cells of a 32-unit MLP on the embedded 5,000-digit subset",
    base="mlp-relu-adam", backends=["numpy", "torch"], seeds=[0, 1],
    set={"model.hidden": [{"units": 32, "activation": "relu"}], "training.epochs": 1, "data.dataset": "mnist-subset"},
)


class _Recorder:
    """on_change for a timed run: keeps each finished cell's summary, shows nothing."""

    def __init__(self):
        self.summaries: dict[str, dict] = {}

    def __call__(self, state, what: str, payload: dict | None) -> None:
        if what == "cell-finished":
            self.summaries[payload["key"]] = payload


def _history(path: Path) -> list[dict]:
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return [{k: v for k, v in row.items() if k not in CLOCK_FIELDS} for row in rows]


def _timed(run) -> tuple[float, _Recorder, object]:
    recorder = _Recorder()
    started = time.perf_counter()
    state = run(recorder)
    return time.perf_counter() - started, recorder, state


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def bench_sweep_command(args: argparse.Namespace, console: Console) -> int:
    """Returns 0 when both runs finished every cell with the same histories, 1 otherwise."""
    for option in ("workers", "threads"):
        if getattr(args, option) < 1:
            raise UserError(f"--{option}: {getattr(args, option)}; must be at least 1")
    check_address(args.address)
    if args.out is not None:
        _check_fresh(Path(args.out))
    sweep = load_sweep(args.sweep) if args.sweep else BENCH_SWEEP
    cells = expand_cells(sweep)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mnist-parity-bench-"))
    try:
        return _bench(args, console, sweep, cells, root)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


def _check_fresh(out: Path) -> None:
    """--out must be missing or empty: both runs must train every cell (a finished cell would be skipped, timing
    nothing), so an existing run is refused rather than reused or deleted."""
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {out}: not empty; bench-sweep times fresh runs of every cell, so give a new or empty "
                        "folder (or leave --out out: a temporary folder, removed after)")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder; give a new or empty folder")


def _bench(args, console: Console, sweep, cells, root: Path) -> int:
    from experiments.sweep.local import run_sweep
    from experiments.sweep.ray_cluster import connect
    from experiments.sweep.ray_executor import DEFAULT_RETRIES, run_sweep_on_ray

    common = dict(workers=args.workers, threads=args.threads, data_dir=args.data_dir, download=not args.no_download,
                  retry_failed=False)
    outs = {"local": root / "local", "ray": root / "ray"}
    console.print(f"bench-sweep: {sweep.name}, {len(cells)} cells, {args.workers} at a time, {args.threads} thread(s) each; "
                  f"local executor first, then Ray ({args.address or 'a local instance'})", highlight=False)
    store = prepare_out(outs["local"], cells, args.data_dir, not args.no_download)
    local_wall, local, _ = _timed(lambda on_change: run_sweep(sweep, cells, outs["local"], store=store, on_change=on_change,
                                                              **common))
    with connect(args.address, cpus_per_cell=args.threads) as cluster:
        store = prepare_out(outs["ray"], cells, args.data_dir, not args.no_download)
        ray_wall, ray, state = _timed(lambda on_change: run_sweep_on_ray(
            sweep, cells, outs["ray"], retries=DEFAULT_RETRIES, store=store, on_change=on_change, **common))
    same = sum(_same_history(outs, sweep.name, cell.key) for cell in cells)
    _print_cells(console, cells, local, ray)
    _print_totals(console, len(cells), local_wall, local, ray_wall, ray, cluster, state.timings)
    console.print(f"histories identical (clock columns aside) on both executors: {same} of {len(cells)} cells", highlight=False)
    ok = all(s.get("status") == "ok" for s in (*local.summaries.values(), *ray.summaries.values()))
    return 0 if ok and same == len(cells) and len(local.summaries) == len(ray.summaries) == len(cells) else 1


def _same_history(outs: dict, name: str, key: str) -> bool:
    paths = [out / "sweeps" / name / "cells" / key / "history.csv" for out in outs.values()]
    return all(p.is_file() for p in paths) and _history(paths[0]) == _history(paths[1])


def _overhead(summary: dict) -> float:
    """Driver-side time (submitted -> published; locally the pool thread's time) less the training time."""
    return summary.get("round_trip_seconds", summary["seconds"]) - summary["train_seconds"]


def _print_cells(console: Console, cells, local: _Recorder, ray: _Recorder) -> None:
    table = Table(title="per cell (seconds)", title_justify="left")
    for column in ("cell", "local train", "local overhead", "Ray train", "Ray overhead"):
        table.add_column(column, justify="left" if column == "cell" else "right")
    for cell in cells:
        row = [", ".join(f"{k.split('.')[-1]}={v}" for k, v in cell.factors.items())]
        for recorder in (local, ray):
            summary = recorder.summaries.get(cell.key, {})
            if "train_seconds" in summary:
                row += [f"{summary['train_seconds']:.2f}", f"{_overhead(summary):.2f}"]
            else:
                row += ["failed", summary.get("reason", "not run")[:40]]
        table.add_row(*row)
    console.print(table)


def _print_totals(console: Console, count: int, local_wall: float, local: _Recorder, ray_wall: float, ray: _Recorder,
                  cluster: dict, timings: dict) -> None:
    table = Table(title="per executor", title_justify="left")
    for column in ("executor", "wall s", "wall - training s", "mean train s/cell", "mean overhead s/cell",
                   "median overhead s/cell", "overhead / train"):
        table.add_column(column, justify="left" if column == "executor" else "right")
    for name, wall, recorder in (("local", local_wall, local), ("ray", ray_wall, ray)):
        done = [s for s in recorder.summaries.values() if "train_seconds" in s]
        train, overhead = _mean([s["train_seconds"] for s in done]), _mean([_overhead(s) for s in done])
        median = statistics.median([_overhead(s) for s in done]) if done else float("nan")
        spent = wall - sum(s["train_seconds"] for s in done)
        table.add_row(name, f"{wall:.2f}", f"{spent:.2f}", f"{train:.2f}", f"{overhead:.3f}", f"{median:.3f}",
                      f"{overhead / train:.2f}")
    console.print(table)
    console.print(f"Ray one-off: start or connect {cluster['connect_s']:.2f} s ({cluster['cluster_cpus']} CPUs); "
                  f"datasets into the object store {timings.get('ship_s', 0):.3f} s "
                  f"({timings.get('ship_bytes', 0) / 1e6:.1f} MB); not in the wall times above", highlight=False)
