"""Levels 1-4: run the probe in one process per backend, then compare every backend with the oracle and every pair."""

import itertools
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.spec import ExperimentSpec
from experiments.verify.hints import hint_for
from experiments.verify.stats import compare
from experiments.verify.tolerances import tolerance

ORACLE = "numpy"
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

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def run_probes(spec: ExperimentSpec, backends: list[str], levels: list[int], steps: int, x: np.ndarray, y: np.ndarray,
               threads: int, log_dir: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """Each backend's recorded quantities (numpy oracle included), and the failure reason of any that crashed."""
    results, failures = {}, {}
    with tempfile.TemporaryDirectory(prefix="mnist-parity-verify-") as scratch:
        data_path = Path(scratch) / "data.npz"
        np.savez(data_path, x=x, y=y)
        for backend in dict.fromkeys([ORACLE, *backends]):
            job_path, out_path = Path(scratch) / f"{backend}.json", Path(scratch) / f"{backend}.npz"
            job = {"backend": backend, "spec": spec.to_dict(), "data_path": str(data_path), "levels": levels,
                   "steps": steps, "threads": threads}
            job_path.write_text(json.dumps(job))
            log = log_dir / f"{backend}.log"
            with open(log, "w") as handle:
                code = subprocess.run([sys.executable, "-m", "experiments.verify.probe", str(job_path), str(out_path)],
                                      stdout=handle, stderr=subprocess.STDOUT).returncode
            if code != 0:
                lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
                failures[backend] = f"probe exited with code {code}: {lines[-1][:200] if lines else 'no output'} (see {log})"
                continue
            with np.load(out_path) as data:
                results[backend] = {k: data[k] for k in data.files}
    return results, failures


def _group(key: str) -> tuple[str, str]:
    """("forward", "dense_0") from "forward/dense_0"; trajectory keys keep their sub-path."""
    level, _, rest = key.partition("/")
    return level, rest


def compare_pair(first: str, a: dict, second: str, b: dict, dtype: str) -> list[Row]:
    rows = []
    for key in sorted(set(a) & set(b), key=_order_key):
        level, where = _group(key)
        stats = compare(a[key], b[key])
        limit = tolerance(level, dtype)
        passed = stats.needed <= limit
        rows.append(Row(level, first, second, where, stats.to_dict(), limit, passed, "" if passed else hint_for(level, where, (first, second))))
    for key in sorted(set(a) ^ set(b)):
        level, where = _group(key)
        rows.append(Row(level, first, second, where, {}, tolerance(level, dtype), False, f"only {first if key in a else second} reports it"))
    return rows


def _order_key(key: str):
    level, where = _group(key)
    return (list(LEVEL_KEYS.values()).index(level), where)


def compare_all(results: dict[str, dict], dtype: str) -> list[Row]:
    """Every backend against the oracle, then every pair of backends."""
    rows = []
    others = [b for b in results if b != ORACLE]
    if ORACLE in results:
        for backend in others:
            rows += compare_pair(backend, results[backend], ORACLE, results[ORACLE], dtype)
    for first, second in itertools.combinations(others, 2):
        rows += compare_pair(first, results[first], second, results[second], dtype)
    return rows


def summarize(rows: list[Row], plan_order: list[str]) -> list[dict]:
    """One line per level and pair: pass/fail, the worst quantity, and for the forward level the first failing layer."""
    lines = []
    keys = dict.fromkeys((r.level, r.first, r.second) for r in rows)
    for level, first, second in keys:
        group = [r for r in rows if (r.level, r.first, r.second) == (level, first, second)]
        worst = max(group, key=lambda r: r.stats.get("needed", float("inf")))
        failing = [r for r in group if not r.passed]
        first_failure = ""
        if failing and level == "forward":
            first_failure = min(failing, key=lambda r: plan_order.index(r.quantity) if r.quantity in plan_order else 1e9).quantity
        elif failing:
            first_failure = failing[0].quantity
        lines.append({
            "level": level, "first": first, "second": second, "passed": not failing, "compared": len(group),
            "worst_quantity": worst.quantity, "worst_error": worst.stats.get("needed"), "tolerance": worst.tolerance,
            "first_failure": first_failure, "hint": next((r.hint for r in failing if r.hint), ""),
        })
    return lines
