"""Levels 1-4: run the probe in one process per backend, then compare every backend with the oracle and every pair."""

import itertools
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.protocol import ProbeJob
from experiments.worker import child_environment
from experiments.verify.cases import ORACLE
from experiments.verify.groups import group_scales, scale_group
from experiments.verify.hints import hint_for
from experiments.verify.initial import INIT_PREFIX, compare_draws
from experiments.verify.rounding import summary_cause
from experiments.verify.stats import compare
from experiments.verify.tolerances import tolerance

NEGLIGIBLE_NOTE = ("true value ~0 (negligible against its group, e.g. a bias whose output a batch norm re-centres): "
                   "error taken against the group's scale")
LEVEL_KEYS = {1: "forward", 2: "gradients", 3: "step", 4: "trajectory"}


@dataclass
class Row:
    """One compared quantity between two backends."""

    level: str
    first: str
    second: str
    quantity: str
    stats: dict
    tolerance: float
    passed: bool
    hint: str = ""
    cause: str = ""  # native mode: what the swap search found (experiments.verify.attribution)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class _Probe:
    """One probe process: a backend and the levels it records."""

    backend: str
    levels: list[int]
    part: str
    cells: dict[str, dict] | None = None  # None: the run's cells


def run_probes(cells: dict[str, dict], backends: list[str], levels: list[int], steps: int, x: np.ndarray, y: np.ndarray,
               threads: int, log_dir: Path, oracle_only: dict[str, dict] | None = None, oracle: bool = True,
               ) -> tuple[dict[str, dict[str, dict]], dict[str, str]]:
    """Per cell, each backend's recorded quantities (numpy oracle included), and the failure reason
    of any backend whose probe crashed.

    cells: {cell id: {"spec": spec dict, "step_cases": {name: optimizer table} or None for all}}.
    oracle_only: more cells whose trajectories (level 4) only the oracle runs, in a probe of their
    own (the float64 reference of experiments.verify.rounding); their results come back beside the cells'.
    oracle=False: the caller has the oracle's results already (only for levels that do not read the oracle's
    level-2 gradients, i.e. without level 3).
    One probe process per backend runs every cell. The oracle's levels 1-3 run first (level 3
    steps every backend from the oracle's gradients); then the oracle's trajectories and the
    backends' probes share the machine, `threads` processes at a time with one thread each (one
    process per core wastes nothing on thread synchronisation; two 2-thread processes on two
    cores made torch's float64 CNN 2.5x slower).
    """
    results: dict[str, dict[str, dict]] = {cell: {} for cell in {**cells, **(oracle_only or {})}}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix=".scratch-", dir=log_dir.parent) as scratch:  # in the run folder: a kill leaves nothing outside --out
        scratch = Path(scratch)
        np.savez(scratch / "data.npz", x=x, y=y)
        (scratch / "gradients").mkdir()  # level 3's input per cell, written by the oracle's probe
        early = [level for level in levels if level != 4]
        first = [_Probe(ORACLE, early, "ladder")] if early and oracle else []
        rest = [_Probe(ORACLE, [4], "trajectory")] if 4 in levels and oracle else []
        rest += [_Probe(ORACLE, [4], "reference", oracle_only)] if 4 in levels and oracle_only else []
        rest += [_Probe(b, levels, "ladder") for b in dict.fromkeys(backends) if b != ORACLE]

        def run(probe: _Probe, probe_threads: int) -> None:
            name = f"{probe.backend}-{probe.part}"
            out_dir = scratch / name
            out_dir.mkdir()
            probe_cells = cells if probe.cells is None else probe.cells
            ProbeJob(backend=probe.backend, cells=probe_cells, data_path=str(scratch / "data.npz"), levels=list(probe.levels),
                     steps=steps, threads=probe_threads, gradients_dir=str(scratch / "gradients")).write(scratch / f"{name}.json")
            env = child_environment(probe_threads)
            log = log_dir / f"{name}.log"
            with open(log, "w") as handle:
                code = subprocess.run([sys.executable, "-m", "experiments.verify.probe", str(scratch / f"{name}.json"), str(out_dir)],
                                      stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
            if code != 0:
                lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
                failures.setdefault(probe.backend, f"probe exited with code {code}: {lines[-1][:200] if lines else 'no output'} (see {log})")
                return
            for cell in probe_cells:
                with np.load(out_dir / f"{cell}.npz") as data:
                    results[cell].setdefault(probe.backend, {}).update({k: data[k] for k in data.files})

        for probe in first:
            run(probe, threads)
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(lambda probe: run(probe, 1), rest))
    for backend in failures:  # half a backend's record would be compared as if whole
        for cell in results.values():
            cell.pop(backend, None)
    return results, failures


def _group(key: str) -> tuple[str, str]:
    """("forward", "dense_0") from "forward/dense_0"; trajectory keys keep their sub-path."""
    level, _, rest = key.partition("/")
    return level, rest


def compare_pair(first: str, a: dict, second: str, b: dict, dtype: str, spec=None) -> list[Row]:
    """spec: the cell's ExperimentSpec, from which a failing row's hint finds the components acting on it
    (experiments.verify.hints); without it a failing step or trajectory row only gets the conditioning note."""
    rows = []
    scales = group_scales(b)
    for key in sorted(set(a) & set(b), key=_order_key):
        level, where = _group(key)
        if where.startswith(INIT_PREFIX):  # two initial draws: compared as distributions
            values, limit, passed = compare_draws(a[key], b[key])
            row = Row(level, first, second, where, values, limit, passed)
            row.hint = "" if row.passed else hint_for(row, spec)
            rows.append(row)
            continue
        stats = compare(a[key], b[key], scales[scale_group(key)])
        limit = tolerance(level, dtype)
        row = Row(level, first, second, where, stats.to_dict(), limit, stats.needed <= limit)
        row.hint = "" if row.passed else hint_for(row, spec)
        if stats.against_scale:
            row.hint = (row.hint + "; " if row.hint else "") + NEGLIGIBLE_NOTE
        rows.append(row)
    for key in sorted(set(a) ^ set(b)):
        level, where = _group(key)
        rows.append(Row(level, first, second, where, {}, tolerance(level, dtype), False, f"only {first if key in a else second} reports it"))
    return rows


def _order_key(key: str):
    level, where = _group(key)
    return (list(LEVEL_KEYS.values()).index(level), where)


def compare_all(results: dict[str, dict], dtype: str, spec=None) -> list[Row]:
    """Every backend against the oracle, then every pair of backends (spec: as in compare_pair)."""
    rows = []
    others = [b for b in results if b != ORACLE]
    if ORACLE in results:
        for backend in others:
            rows += compare_pair(backend, results[backend], ORACLE, results[ORACLE], dtype, spec)
    for first, second in itertools.combinations(others, 2):
        rows += compare_pair(first, results[first], second, results[second], dtype, spec)
    return rows


def summarize(rows: list[Row], plan_order: list[str]) -> list[dict]:
    """One line per level and pair: pass/fail, the worst quantity, and for the forward level the first failing layer."""
    lines = []
    keys = dict.fromkeys((r.level, r.first, r.second) for r in rows)
    for level, first, second in keys:
        group = [r for r in rows if (r.level, r.first, r.second) == (level, first, second)]
        worst = _worst(group)
        failing = [r for r in group if not r.passed]
        first_failure = ""
        if failing and level == "forward":
            first_failure = min(failing, key=lambda r: plan_order.index(r.quantity) if r.quantity in plan_order else 1e9).quantity
        elif failing:
            first_failure = failing[0].quantity
        lines.append({
            "level": level, "first": first, "second": second, "passed": not failing, "compared": len(group),
            "worst_quantity": worst.quantity, "worst_error": worst.stats.get("needed"), "tolerance": worst.tolerance,
            "first_failure": first_failure,
            "hint": summary_cause(failing) or next((r.hint for r in sorted(failing, key=lambda r: r.quantity != first_failure) if r.hint), ""),
            "cause": "; ".join(dict.fromkeys(part for r in failing if r.cause for part in r.cause.split("; "))),
            "failing": len(failing),
        })
    return lines


def _worst(group: list[Row]) -> Row:
    """The row a summary line names: the failing row furthest past its tolerance; in a passing level the largest
    error of the compared values (an initial-draw row, tested as a distribution with its own limit, only if the level
    has nothing else)."""
    failing = [r for r in group if not r.passed]
    pool = failing or [r for r in group if not r.quantity.startswith(INIT_PREFIX)] or group
    return max(pool, key=lambda r: r.stats.get("needed", float("inf")) / r.tolerance)


def trajectory_growth(rows: list[Row]) -> dict[str, dict[int, float]]:
    """How the trajectory difference grows: per pair, the worst parameter error at each checkpoint step."""
    growth: dict[str, dict[int, float]] = {}
    for row in rows:
        if row.level != "trajectory" or not row.quantity.startswith("at/") or "needed" not in row.stats:
            continue
        step = int(row.quantity.split("/")[1])
        pair = growth.setdefault(f"{row.first} vs {row.second}", {})
        pair[step] = max(pair.get(step, 0.0), row.stats["needed"])
    return {pair: dict(sorted(steps.items())) for pair, steps in growth.items()}
