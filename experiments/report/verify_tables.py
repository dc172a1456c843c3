"""verify.json's tables: level 5's equivalence verdicts, the parity ladder, the parity matrix and the trajectory growth."""

import pandas as pd

from experiments.catalog.differences import BY_ID
from experiments.report.inputs import Verify
from experiments.report.table import Table, interval_text, sci


def equivalence_table(verifies: list[Verify]) -> Table:
    """Level 5's paired TOST verdict per pair of backends."""
    rows = []
    for verify in verifies:
        level5 = verify.document.levels.get("5")
        if level5 is None:
            continue
        for p in level5.pairs:
            rows.append({"verify": verify.name, "pair": f"{p.first} vs {p.second}", "seeds": len(level5.seeds),
                         "mean difference (points)": p.mean_difference, "90% CI": interval_text(p.ci90_low, p.ci90_high, True),
                         "margin (points)": p.margin, "p (TOST)": p.p_tost, "verdict": p.verdict})
    note = ("equivalent: the 90% interval of the paired mean difference lies inside (-margin, +margin) (two one-sided "
            "tests at alpha 0.05); different: it lies outside; inconclusive: it overlaps a margin (more seeds would decide).")
    return Table("Equivalence verdicts (level 5)", pd.DataFrame(rows),
                 {"mean difference (points)": lambda v: f"{v:+.3f}", "p (TOST)": lambda v: f"{v:.3g}",
                  "margin (points)": lambda v: f"±{v:g}"}, note)


def ladder_table(verify: Verify) -> Table:
    """Levels 1-4: one line per level and pair, as `verify` prints it."""
    rows = []
    for number, level in sorted(verify.document.levels.items()):
        if number == "5":
            continue
        for line in level.summary:
            failing = "" if line.failing is None else f" ({line.failing} of {line.compared} quantities)"
            rows.append({"level": f"{number} {line.level}", "pair": f"{line.first} vs {line.second}",
                         "result": "pass" if line.passed else f"FAIL{failing}", "worst error": line.worst_error,
                         "tolerance": line.tolerance, "worst quantity": line.worst_quantity,
                         "first failure": line.first_failure, "known cause": line.cause or line.hint})
        for backend, reason in level.failures.items():
            rows.append({"level": f"{number} {level.name}", "pair": backend, "result": "FAIL", "worst error": None,
                         "tolerance": None, "worst quantity": "", "first failure": "probe crashed", "known cause": reason})
    dtype = verify.document.spec.dtype if verify.document.spec else ""
    return Table(f"Parity ladder of {verify.name} ({dtype}): normwise relative error, worst quantity per level and pair",
                 pd.DataFrame(rows), {"worst error": sci, "tolerance": lambda v: f"{v:.0e}"})


def matrix_table(verify: Verify) -> Table:
    """`verify --matrix`: per cell and level, pass/fail and the worst error over all pairs."""
    rows = []
    for cell_id, cell in (verify.document.matrix or {}).items():
        row = {"cell": cell_id, "model": cell.model, "axis": cell.axis, "entry": cell.entry}
        for number, level in sorted(cell.levels.items()):
            worst = max((line.worst_error for line in level.summary if line.worst_error is not None), default=None)
            failing = [line.first_failure for line in level.summary if not line.passed]
            text = "-" if worst is None else f"{worst:.1e}"
            row[level.name] = f"pass {text}" if level.passed else f"FAIL {text} {failing[0] if failing else 'no result'}".rstrip()
        rows.append(row)
    frame = pd.DataFrame(rows)
    levels = tuple(c for c in frame.columns if c not in ("cell", "model", "axis", "entry"))
    return Table(f"Parity matrix on {verify.document.base}: worst normwise relative error over all pairs", frame,
                 verdicts=levels)


def growth_table(verify: Verify) -> Table | None:
    level = verify.document.levels.get("4")
    growth = getattr(level, "growth", None)
    if not growth:
        return None
    steps = sorted({step for errors in growth.values() for step in errors})
    rows = []
    for pair, errors in growth.items():
        first, last = errors.get(steps[0]), errors.get(steps[-1])
        row = {"pair": pair, **{f"step {s}": errors.get(s) for s in steps}}
        row["growth"] = (f"x{last / first:.3g}" if first else ("-" if not last else "from 0")) if last is not None else "-"
        rows.append(row)
    floor = level.rounding_floor or {}
    note = ""
    if floor.get("worst") is not None:
        loss = "-" if floor.get("loss") is None else f"{floor['loss']:.1e}"
        note = (f"float32 rounding floor (the float32 oracle against its own float64 run): loss curve {loss}, "
                f"worst quantity {floor['worst']:.1e}.")
    return Table(f"Trajectory of {verify.name}: worst parameter error after each checkpoint step",
                 pd.DataFrame(rows), {f"step {s}": lambda v: f"{v:.1e}" for s in steps}, note)


def builtins_table(verify: Verify) -> Table | None:
    """A native verify (or native matrix): per cell, level, backend and measured cause, the component and how far the
    built-in takes the backend from the oracle (the worst failing row and how many rows fail for that cause)."""
    document = verify.document
    if document.matrix:
        cells = {cell_id: cell.levels for cell_id, cell in document.matrix.items()}
    elif document.spec is not None and document.spec.implementation == "native":
        cells = {"": document.levels}
    else:
        return None
    groups: dict[tuple, list] = {}
    for cell_id, levels in cells.items():
        for number, level in sorted(levels.items()):
            for row in getattr(level, "rows", []):
                if not row.passed and row.second == "numpy":
                    groups.setdefault((cell_id, f"{number} {level.name}", row.first, row.cause or "unexplained"), []).append(row)
    if document.matrix and not groups:
        return None
    rows = []
    for (cell_id, level, backend, cause), members in groups.items():
        ids = [part.strip() for step in cause.split(" + ") for part in step.split(",")]
        components = sorted({BY_ID[i].component if i in BY_ID else i.removeprefix("new difference: ") for i in ids})
        worst = max(members, key=lambda r: r.stats.get("needed") or 0.0)
        rows.append({**({"cell": cell_id} if document.matrix else {}), "level": level, "pair": f"{backend} vs numpy",
                     "component": ", ".join(components), "cause": cause, "size": worst.stats.get("needed"),
                     "rows": len(members), "worst quantity": worst.quantity})
    note = ("Each cause was found by measurement: keeping that component on the catalog made the rows pass "
            "(mnist-parity list differences describes each id; 'new difference' names a component the catalog of "
            "differences does not know yet).")
    return Table(f"What each framework's own built-ins change ({verify.name})", pd.DataFrame(rows), {"size": sci}, note,
                 collapsed=bool(document.matrix))
