"""Find what makes a native backend differ, by measurement: swap one component back to the catalog and rerun.

For every backend with failing rows against the oracle at levels 1-3, each component that can act at those levels
(each activation entry of the model, batch norm, pooling, dropout and the loss for the forward and gradient
levels; the initializer for a backend's own initial draw, forward/init/...; the optimizer and clipping for the
step) becomes a cell of its own with that component kept on the catalog (spec.catalog_components). A failing row
that passes in a swapped cell has that component as its cause,
named by the differences catalog (experiments.catalog.differences) when an entry of the backend's framework
covers the component, the entry and the level, else "new difference: <component>". Rows no single swap fixes are
tried with pairs of swaps; what no swap explains is "unexplained". A row between two native backends takes the
causes of its two sides against the oracle. A trajectory row is searched the same way at level 4, starting from
every component its backend's levels 1-3 named (several differences add up over a trajectory).
"""

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.catalog.differences import differences_for
from experiments.spec import ExperimentSpec
from experiments.verify.cases import LEVEL3_OPTIMIZERS, ORACLE
from experiments.verify.hints import components_at, entry_of
from experiments.verify.ladder import Row, compare_pair, run_probes

UNEXPLAINED = "unexplained"
LEVEL_NUMBERS = {"forward": 1, "gradients": 2, "step": 3}
MAX_PAIRS = 15  # pairs of swaps tried when no single swap explains a row


def cause_name(framework: str, components: tuple[str, ...], spec: ExperimentSpec, row: Row) -> str:
    """The differences ids of these swapped components for this row's level, or "new difference: ..." for any the
    catalog of differences does not know."""
    names = []
    for component in components:
        kind = component.partition(":")[0]
        entry = entry_of(component, spec, row.level, row.quantity)
        known = [d.id for d in differences_for(framework, kind, entry) if row.level in d.levels]
        names.append(", ".join(known) if known else f"new difference: {component}")
    return " + ".join(names)


def _swap_cells(cell: str, spec: ExperimentSpec, swaps: list[tuple[str, ...]], step_cases: dict | None) -> dict[str, dict]:
    cells = {}
    for swap in swaps:
        swapped = spec.model_copy(update={"catalog_components": [*spec.catalog_components, *swap]})
        cells[f"{cell}~{'+'.join(swap).replace(':', '-')}"] = {"spec": swapped.to_dict(), "step_cases": step_cases}
    return cells


@dataclass
class _Task:
    """One cell's failing rows of one backend against the oracle, and what the search found so far."""

    cell: str
    spec: ExperimentSpec
    backend: str
    early: list[Row]  # levels 1-3
    late: list[Row]  # trajectory
    oracle: dict
    fixed_by: dict = field(default_factory=dict)  # (level, quantity) -> the swap that fixed it


def attribute_cells(cells: dict[str, tuple[ExperimentSpec, dict, list[Row]]], x: np.ndarray, y: np.ndarray,
                    threads: int, log_dir: Path, steps: int = 100) -> dict[str, int]:
    """Give every failing row of these native cells its `cause` (in place), all cells searched together: one probe
    process per backend and search round (single swaps, pairs, trajectory), whatever the number of cells.
    Returns how many swap cells were probed."""
    tasks = []
    for cell, (spec, results, rows) in cells.items():
        for backend in dict.fromkeys(r.first for r in rows if not r.passed and r.second == ORACLE):
            mine = [r for r in rows if not r.passed and r.first == backend and r.second == ORACLE]
            tasks.append(_Task(cell, spec, backend, [r for r in mine if r.level in LEVEL_NUMBERS],
                               [r for r in mine if r.level == "trajectory"], results.get(ORACLE, {})))
    probed = 0
    for pairs in (False, True):
        plan = [(task, _early_swaps(task, pairs)) for task in tasks if any(not r.cause for r in task.early)]
        probed += _round([(task, swaps) for task, swaps in plan if swaps], x, y, threads, log_dir, steps, late=False)
    for task in tasks:
        for row in task.early:
            row.cause = row.cause or UNEXPLAINED
    plan = [(task, _trajectory_swaps(task)) for task in tasks if task.late]
    probed += _round(plan, x, y, threads, log_dir, steps, late=True)
    for task in tasks:
        for row in task.late:
            row.cause = row.cause or UNEXPLAINED
    for _, _, rows in cells.values():
        _carry_causes(rows)
    return {"swap_cells": probed}


def _early_swaps(task: _Task, pairs: bool) -> list[tuple[str, ...]]:
    singles = list(dict.fromkeys(c for r in task.early if not r.cause for c in components_at(task.spec, r.level, r.quantity)))
    return list(itertools.combinations(singles, 2))[:MAX_PAIRS] if pairs else [(c,) for c in singles]


def _trajectory_swaps(task: _Task) -> list[tuple[str, ...]]:
    """Every component that explained the backend's levels 1-3 for the spec's own optimizer at once, then that set
    plus one more component at a time (several differences add up over a trajectory)."""
    own = {name for name, table in LEVEL3_OPTIMIZERS.items() if table["name"] == task.spec.optimizer.name}
    acting = components_at(task.spec, "trajectory")  # not the initializer: the trajectory starts from shared weights
    base = tuple(dict.fromkeys(component for (level, quantity), swap in task.fixed_by.items()
                               if level != "step" or quantity.split("/")[0] in own for component in swap
                               if component in acting))
    constant = task.spec.schedule.name == "constant"  # a constant rate is the same number in every framework
    others = [c for c in acting if c not in base and not (constant and c == "schedule")]
    return ([base] if base else []) + [(*base, c) for c in others]


def _round(plan: list[tuple[_Task, list[tuple[str, ...]]]], x, y, threads, log_dir, steps, late: bool) -> int:
    """Probe every planned swap cell, one process per backend, and name the rows each swap fixes. Levels 1-3 run
    the oracle beside the swapped cells (level 3 steps from its gradients); the trajectory reuses the oracle's own
    run (the oracle has no built-ins: swapping changes nothing there)."""
    by_backend: dict[str, dict[str, dict]] = {}
    owner: dict[tuple[str, str], tuple[_Task, tuple[str, ...]]] = {}
    for task, swaps in plan:
        step_cases = None
        if not late:
            cases = sorted({r.quantity.split("/")[0] for r in task.early if r.level == "step"})
            step_cases = {case: LEVEL3_OPTIMIZERS[case] for case in cases if case in LEVEL3_OPTIMIZERS} or None
        for (name, entry), swap in zip(_swap_cells(task.cell, task.spec, swaps, step_cases).items(), swaps):
            by_backend.setdefault(task.backend, {})[name] = entry
            owner[task.backend, name] = (task, swap)
    for backend, cells in by_backend.items():
        early = {r.level for name in cells for r in owner[backend, name][0].early}
        levels = [4] if late else sorted(LEVEL_NUMBERS[level] for level in early)
        swapped, _ = run_probes(cells, [backend], levels, steps, x, y, threads, log_dir, oracle=not late)
        for name in cells:
            task, swap = owner[backend, name]
            reference = task.oracle if late else swapped[name].get(ORACLE)
            if backend not in swapped[name] or not reference:
                continue
            again = {(r.level, r.quantity): r for r in compare_pair(backend, swapped[name][backend], ORACLE, reference,
                                                                    task.spec.dtype)}
            for row in task.late if late else task.early:
                fixed = again.get((row.level, row.quantity))
                if not row.cause and fixed is not None and fixed.passed:
                    row.cause = cause_name(backend, swap, task.spec, row)
                    task.fixed_by[row.level, row.quantity] = swap
    return sum(len(cells) for cells in by_backend.values())


def _carry_causes(rows: list[Row]) -> None:
    """A row between two native backends takes the causes of its two sides against the oracle."""
    against_oracle = {(r.first, r.level, r.quantity): r.cause for r in rows if r.second == ORACLE and r.cause}
    for row in rows:
        if row.passed or row.cause or row.second == ORACLE:
            continue
        sides = [(side, against_oracle.get((side, row.level, row.quantity))) for side in (row.first, row.second)]
        causes = [f"{side}: {cause}" for side, cause in sides if cause]
        row.cause = "; ".join(causes) if causes else UNEXPLAINED
