"""The summary's headline figures, computed from the loaded inputs (the store's rows and verify.json), never written by hand.

Per study sweep and backend: the best and the worst configuration by final validation accuracy,
with its test accuracy (the ranking table's first and last ranked rows), the configurations without a
finite validation accuracy (not ranked: every seed failed or diverged) by name, and how many of the
grid's configurations have results; a study without any validation accuracy is not ranked. Per group of seeds (a sweep
over seeds only, or verify level 5): mean test accuracy and 95% interval per backend, and level
5's equivalence verdicts. Per verify ladder: pass/fail per level with the worst error. The gate's
outcome in one line, and the runs without a reference band counted per reason.
"""

import pandas as pd

from experiments.report.gates import PLAUSIBLE, SUSPECT
from experiments.report.inputs import SWEEP_CONTROL_FACTORS, Inputs, Run, Sweep, Verify, records
from experiments.report.ranking_tables import (NOT_RANKED_NO_SPLIT, NOT_RANKED_NO_VALUE, no_validation_split, ranking_table,
                                              sweep_configurations)
from experiments.report.results_tables import NO_VALIDATION, status_word
from experiments.report.seed_tables import clipped_note, seed_groups, seed_interval
from experiments.report.table import Table, listed, percent, points, sci

GATED = (SUSPECT, PLAUSIBLE)


def study_axes(sweep: Sweep) -> list[str]:
    """The sweep's study fields other than seed and backend: what its configurations differ in."""
    return [f for f in sweep.study_fields if f not in SWEEP_CONTROL_FACTORS]


def _shown(row: pd.Series, header: str) -> str:
    status = row["status"]
    return str(row[header]) if status == "ok" else f"{row[header]} ({status})"


def _unranked(row: pd.Series, header: str) -> str:
    """A configuration left out of the ranking, with why: "adam (1 of 1 FAILED)"."""
    causes = [p for p in str(row["status"]).split("; ") if p.endswith(("diverged", "FAILED"))]
    return f"{row[header]} ({', '.join(causes) or NO_VALIDATION})"


def _failed(row: pd.Series) -> bool:
    return any(p.endswith(("diverged", "FAILED")) for p in str(row["status"]).split("; "))


def study_headlines(sweeps: list[Sweep]) -> Table | None:
    """Per study sweep and backend: the best and the worst configuration by final validation accuracy (ranking order),
    among the configurations that have one; the others by name; how many of the grid's configurations have results."""
    rows = []
    for sweep in sweeps:
        if not study_axes(sweep) or not sweep.runs:
            continue
        frame = ranking_table(sweep).frame
        header = frame.columns[2]
        expected = sweep_configurations(sweep)
        results = records(sweep.rows)
        for backend in dict.fromkeys([*frame["backend"], *expected]):
            part = frame[frame["backend"] == backend]
            ranked, unranked = part[part["rank"].notna()], part[part["rank"].isna()]
            grid = expected.get(backend, [])
            missing = [label for label in grid if label not in set(part[header])]
            count = f"{len(part)}" if not missing else f"{len(part)} of {len(grid)} (no results yet: {listed(missing)})"
            row = {"study": f"{sweep.name} ({header})", "backend": backend, "best": None, "best val (%)": None,
                   "best test (%)": None, "worst": None, "worst val (%)": None, "worst test (%)": None,
                   "configurations": count}
            if not ranked.empty:
                best, worst = ranked.iloc[0], ranked.iloc[-1]
                row.update({"best": _shown(best, header), "best val (%)": best["val acc (%)"],
                            "best test (%)": best["test acc (%)"], "worst": _shown(worst, header),
                            "worst val (%)": worst["val acc (%)"], "worst test (%)": worst["test acc (%)"]})
                left_out = [_unranked(r, header) for _, r in unranked.iterrows()]
            else:
                own = [r for r in results if r["backend"] == backend]
                row["best"] = ("no results yet" if part.empty else
                               NOT_RANKED_NO_SPLIT if no_validation_split(own) else NOT_RANKED_NO_VALUE)
                left_out = [_unranked(r, header) for _, r in unranked.iterrows() if _failed(r)]
            row["not ranked"] = ", ".join(left_out) or None
            rows.append(row)
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    notes = ["Best and worst by the last epoch's validation accuracy (mean over seeds where a study has several), among "
             "the configurations that have a finite one; the test accuracy beside it is not used to choose. Full "
             "rankings: section Study rankings."]
    if frame["not ranked"].notna().any():
        notes.append("Not ranked: configurations without a finite validation accuracy (every seed FAILED or diverged, "
                     "or none recorded); they are neither best nor worst.")
    else:
        frame = frame.drop(columns=["not ranked"])
    if frame["best"].isin([NOT_RANKED_NO_SPLIT, NOT_RANKED_NO_VALUE]).any():
        notes.append("A study without validation accuracies is not ranked: no configuration is chosen, since choosing "
                     "by test accuracy would report a selected, optimistic figure.")
    if frame["configurations"].str.contains(" of ").any():
        notes.append("The configurations column counts those with results, of those in the grid; the cells without "
                     "results are listed in the alert above.")
    formats = {c: points for c in ("best val (%)", "best test (%)", "worst val (%)", "worst test (%)")}
    return Table("Studies: best and worst configuration per backend", frame, formats, " ".join(notes), verdicts=())


def _seeds_text(g) -> str:
    problems = g.problems()
    if not problems:
        return f"{len(g.accuracies)}"
    over = f"mean and CI over the other {len(g.finite)}" if g.finite else "no finite result"
    return f"{len(g.accuracies)} ({', '.join(problems)}; {over})"


def seed_headlines(inputs: Inputs) -> Table | None:
    """Mean test accuracy and 95% interval per backend, for sweeps over seeds only and for verify level 5."""
    groups = []
    for sweep in inputs.sweeps:
        if not study_axes(sweep):
            groups += [(f"sweep {sweep.name}", g) for g in seed_groups(Inputs([], [sweep], []))]
    for verify in inputs.verifies:
        groups += [(f"{verify.name} (verify level 5)", g) for g in seed_groups(Inputs([], [], [verify]))]
    if not groups:
        return None
    rows = [{"seeds of": label, "backend": g.backend, "seeds": _seeds_text(g), "mean test acc (%)": g.mean,
             "95% CI (%)": seed_interval(g)} for label, g in groups]
    return Table("Test accuracy over seeds (mean and two-sided 95% t interval)", pd.DataFrame(rows),
                 {"mean test acc (%)": points}, clipped_note([g for _, g in groups]), verdicts=())


def equivalence_lines(verifies: list[Verify]) -> list[str]:
    """One line per level-5 verify: each pair's TOST verdict with its mean difference."""
    lines = []
    for verify in verifies:
        level5 = verify.document.levels.get("5")
        if level5 is None or not level5.pairs:
            continue
        pairs = "; ".join(f"{p.first} vs {p.second} {p.verdict} ({p.mean_difference:+.3f} points)" for p in level5.pairs)
        lines.append(f"Equivalence of {verify.name} (verify level 5, {len(level5.seeds)} seeds, margin "
                     f"±{level5.margin_points:g} points): {pairs}.")
    return lines


def _worst(lines) -> tuple[float | None, str]:
    errors = [(line.worst_error, f"{line.first} vs {line.second}") for line in lines if line.worst_error is not None]
    return max(errors, key=lambda e: e[0]) if errors else (None, "")


def _level_result(level) -> str:
    if level.passed:
        return "pass"
    failing = [f"{line.first} vs {line.second}" for line in level.summary if not line.passed]
    failing += [f"{backend} (probe crashed)" for backend in level.failures]
    return f"FAIL: {', '.join(failing)}" if failing else "FAIL"


def ladder_headlines(verifies: list[Verify]) -> Table | None:
    """Per verify ladder and level 1-4: pass/fail and the worst normwise relative error over all pairs (and cells)."""
    rows = []
    for verify in verifies:
        if verify.document.matrix:
            by_level: dict[str, list] = {}
            for cell_id, cell in verify.document.matrix.items():
                for number, level in cell.levels.items():
                    by_level.setdefault(number, []).append((cell_id, level))
            for number, cells in sorted(by_level.items()):
                failed = [cell_id for cell_id, level in cells if not level.passed]
                errors = [(error, f"{cell_id}: {where}") for cell_id, level in cells
                          for error, where in [_worst(level.summary)] if error is not None]
                error, where = max(errors, key=lambda e: e[0]) if errors else (None, "")
                result = (f"pass in all {len(cells)} cells" if not failed else
                          f"FAIL in {len(failed)} of {len(cells)} cells: {', '.join(failed)}")
                rows.append({"verify": verify.name, "level": f"{number} {cells[0][1].name}",
                             "result": result, "worst error": error, "where": where})
            continue
        for number, level in sorted(verify.document.levels.items()):
            if number == "5":
                continue
            error, where = _worst(level.summary)
            dtype = verify.document.spec.dtype if verify.document.spec else ""
            rows.append({"verify": f"{verify.name} ({dtype})", "level": f"{number} {level.name}",
                         "result": _level_result(level), "worst error": error, "where": where})
    if not rows:
        return None
    return Table("Parity ladder: pass/fail per level, worst normwise relative error over all pairs", pd.DataFrame(rows),
                 {"worst error": sci}, verdicts=("result",))


def run_lines(runs: list[Run]) -> list[str]:
    """One line per standalone run: its test accuracy per backend."""
    lines = []
    for run in runs:
        parts = []
        for row in records(run.rows):
            if row["status"] != "ok":
                parts.append(f"{row['backend']} {status_word(row['status'])}")
            elif row["diverged"]:
                parts.append(f"{row['backend']} diverged")
            else:
                parts.append(f"{row['backend']} {percent(row['test_accuracy']):.2f}%")
        lines.append(f"Run {run.label} ({run.spec.name}): test accuracy {', '.join(parts)}.")
    return lines


def gate_line(gate: pd.DataFrame, pointer: bool = True) -> str:
    """The gate's outcome in one line: how many runs it checked, the flagged ones by name, how many it could not check.

    A run here is one backend of a run (or of a sweep cell, or a level-5 mean); pointer: say where the others are counted.
    """
    gated = gate[gate["verdict"].isin(GATED)]
    flagged = gated[gated["verdict"] == SUSPECT]
    others = len(gate) - len(gated)
    unit = lambda n: f"{n} run{'' if n == 1 else 's'}"  # noqa: E731
    if gated.empty:
        text = "Sanity gate: no run is within the reference bands' recipe, so none was checked"
    elif flagged.empty:
        text = f"Sanity gate: {unit(len(gated))} (per backend) checked against a reference band: all plausible"
    else:
        names = ", ".join(f"{row.run} ({row.backend})" for row in flagged.itertuples())
        text = (f"Sanity gate: {unit(len(gated))} (per backend) checked against a reference band: {len(flagged)} "
                f"implementation suspect ({names}), {len(gated) - len(flagged)} plausible")
    if others:
        text += f"; {unit(others)} without a reference band" + (", counted per reason in the Sanity gate section" if pointer else "")
    return text + "."


def no_band_lines(gate: pd.DataFrame) -> list[str]:
    """The runs the gate does not apply to, one line per reason with its count, most frequent first."""
    rest = gate[~gate["verdict"].isin(GATED)]
    counts = rest.groupby(["verdict", "reason"], sort=False).size().sort_values(ascending=False, kind="stable")
    return [f"{n} run{'' if n == 1 else 's'}: {reason}" for (_, reason), n in counts.items()]
