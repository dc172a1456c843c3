"""Find what makes a native backend differ, by measurement: swap one component back to the catalog and rerun.

For every backend with failing rows against the oracle at levels 1-3, each component that can act at those levels
(each activation entry of the model, batch norm, pooling, dropout and the loss for the forward and gradient
levels; the optimizer and clipping for the step) becomes a cell of its own with that component kept on the
catalog (spec.catalog_components). A failing row that passes in a swapped cell has that component as its cause,
named by the differences catalog (experiments.catalog.differences) when an entry of the backend's framework
covers the component, the entry and the level, else "new difference: <component>". Rows no single swap fixes are
tried with pairs of swaps; what no swap explains is "unexplained". A row between two native backends takes the
causes of its two sides against the oracle. A trajectory row is searched the same way at level 4, starting from
every component its backend's levels 1-3 named (several differences add up over a trajectory).
"""

import itertools
from pathlib import Path

import numpy as np

from experiments.catalog.differences import differences_for
from experiments.spec import ExperimentSpec, plan_of
from experiments.spec import plan as P
from experiments.verify.cases import LEVEL3_OPTIMIZERS, ORACLE
from experiments.verify.ladder import Row, compare_pair, run_probes

UNEXPLAINED = "unexplained"
LEVEL_NUMBERS = {"forward": 1, "gradients": 2, "step": 3}
MAX_PAIRS = 15  # pairs of swaps tried when no single swap explains a row


def candidates(spec: ExperimentSpec, level: str) -> list[str]:
    """The components that can act at `level` in this spec's model, as catalog_components entries."""
    if level == "step":
        return ["optimizer", *(["clipping"] if spec.optimizer.clip_global_norm is not None else [])]
    plan = plan_of(spec)
    found = [f"activation:{layer.activation.name}" for layer in plan if isinstance(layer, P.Activation)]
    found += ["batch_norm"] * any(isinstance(layer, P.BatchNormalization) for layer in plan)
    found += ["pooling"] * any(isinstance(layer, P.MaxPool2D) for layer in plan)
    if level == "gradients":
        found += ["dropout"] * any(isinstance(layer, P.Dropout) for layer in plan)
        found.append("loss")
    return list(dict.fromkeys(found))


def _entry_of(component: str, spec: ExperimentSpec, row: Row) -> str | None:
    """The catalog entry a component swap concerns for this row: the activation's name, the level-3 case's
    optimizer, or the spec's loss."""
    kind, _, entry = component.partition(":")
    if entry:
        return entry
    if kind == "optimizer":
        case = row.quantity.split("/")[0]
        return LEVEL3_OPTIMIZERS.get(case, {}).get("name", spec.optimizer.name)
    if kind == "loss":
        return spec.loss.name
    return None


def cause_name(framework: str, components: tuple[str, ...], spec: ExperimentSpec, row: Row) -> str:
    """The differences ids of these swapped components for this row's level, or "new difference: ..." for any the
    catalog of differences does not know."""
    names = []
    for component in components:
        kind = component.partition(":")[0]
        known = [d.id for d in differences_for(framework, kind, _entry_of(component, spec, row)) if row.level in d.levels]
        names.append(", ".join(known) if known else f"new difference: {component}")
    return " + ".join(names)


def _swap_cells(cell: str, spec: ExperimentSpec, swaps: list[tuple[str, ...]], step_cases: dict | None) -> dict[str, dict]:
    cells = {}
    for swap in swaps:
        swapped = spec.model_copy(update={"catalog_components": [*spec.catalog_components, *swap]})
        cells[f"{cell}~{'+'.join(swap).replace(':', '-')}"] = {"spec": swapped.to_dict(), "step_cases": step_cases}
    return cells


def attribute(cell: str, spec: ExperimentSpec, results: dict[str, dict], rows: list[Row], levels: list[int],
              x: np.ndarray, y: np.ndarray, threads: int, log_dir: Path, steps: int = 100) -> dict[str, int]:
    """Give every failing row of a native cell its `cause` (in place); returns how many swap cells were probed."""
    probed = 0
    for backend in dict.fromkeys(r.first for r in rows if not r.passed and r.second == ORACLE):
        early = [r for r in rows if not r.passed and r.first == backend and r.second == ORACLE and r.level in LEVEL_NUMBERS]
        fixed_by: dict[tuple[str, str], tuple[str, ...]] = {}
        if early:
            probed += _search(cell, spec, backend, early, fixed_by, x, y, threads, log_dir)
        late = [r for r in rows if not r.passed and r.first == backend and r.second == ORACLE and r.level == "trajectory"]
        if late:
            probed += _search_trajectory(cell, spec, backend, late, fixed_by, results, x, y, steps, threads, log_dir)
    _carry_causes(rows)
    return {"swap_cells": probed}


def _fixes(cells: dict, swaps: list, swapped: dict, backend: str, oracle: dict | None, spec, rows: list[Row],
           fixed_by: dict) -> None:
    """Name the cause of each row (still without one) that passes in the first swapped cell that fixes it."""
    for name, swap in zip(cells, swaps):
        reference = oracle if oracle is not None else swapped[name].get(ORACLE)
        if backend not in swapped[name] or reference is None:
            continue
        again = {(r.level, r.quantity): r for r in compare_pair(backend, swapped[name][backend], ORACLE, reference, spec.dtype)}
        for row in rows:
            fixed = again.get((row.level, row.quantity))
            if not row.cause and fixed is not None and fixed.passed:
                row.cause = cause_name(backend, swap, spec, row)
                fixed_by[row.level, row.quantity] = swap


def _search(cell, spec, backend, backend_rows, fixed_by, x, y, threads, log_dir) -> int:
    """Levels 1-3: single swaps, then pairs for what is left."""
    levels = sorted({LEVEL_NUMBERS[r.level] for r in backend_rows})
    singles = list(dict.fromkeys((c,) for r in backend_rows for c in candidates(spec, r.level)))
    step_cases = sorted({r.quantity.split("/")[0] for r in backend_rows if r.level == "step"})
    cases = {case: LEVEL3_OPTIMIZERS[case] for case in step_cases if case in LEVEL3_OPTIMIZERS} or None
    probed = 0
    for swaps in (singles, list(itertools.combinations([s[0] for s in singles], 2))[:MAX_PAIRS]):
        if all(r.cause for r in backend_rows) or not swaps:
            break
        cells = _swap_cells(cell, spec, swaps, cases)
        swapped, _ = run_probes(cells, [backend], levels, 1, x, y, threads, log_dir)
        probed += len(cells)
        _fixes(cells, swaps, swapped, backend, None, spec, backend_rows, fixed_by)
    for row in backend_rows:
        row.cause = row.cause or UNEXPLAINED
    return probed


def _search_trajectory(cell, spec, backend, late, fixed_by, results, x, y, steps, threads, log_dir) -> int:
    """Level 4: keep on the catalog at once every component that explained this backend's levels 1-3 for the
    spec's own optimizer, then that set plus one more component at a time; a trajectory row passing in one of
    these cells has those components as its cause. The oracle's trajectory is the one already run (the oracle
    has no built-ins, so swapping changes nothing there)."""
    own = {name for name, table in LEVEL3_OPTIMIZERS.items() if table["name"] == spec.optimizer.name}
    base = tuple(dict.fromkeys(component for (level, quantity), swap in fixed_by.items()
                               if level != "step" or quantity.split("/")[0] in own for component in swap))
    others = [c for c in dict.fromkeys(candidates(spec, "gradients") + candidates(spec, "step")) if c not in base]
    swaps = ([base] if base else []) + [(*base, c) for c in others]
    cells = _swap_cells(cell, spec, swaps, None)
    swapped, _ = run_probes(cells, [backend], [4], steps, x, y, threads, log_dir, oracle=False)
    _fixes(cells, swaps, swapped, backend, results[ORACLE], spec, late, {})
    for row in late:
        row.cause = row.cause or UNEXPLAINED
    return len(cells)


def _carry_causes(rows: list[Row]) -> None:
    """A row between two native backends takes the causes of its two sides against the oracle."""
    against_oracle = {(r.first, r.level, r.quantity): r.cause for r in rows if r.second == ORACLE and r.cause}
    for row in rows:
        if row.passed or row.cause or row.second == ORACLE:
            continue
        sides = [(side, against_oracle.get((side, row.level, row.quantity))) for side in (row.first, row.second)]
        causes = [f"{side}: {cause}" for side, cause in sides if cause]
        row.cause = "; ".join(causes) if causes else UNEXPLAINED
