"""A study sweep's configurations ranked per backend by validation accuracy, and the grid's configurations without results."""

import pandas as pd

from experiments.report.inputs import Sweep, records
from experiments.report.table import Table, factor_label, integer, listed, points

NOT_RANKED_NO_SPLIT = "not ranked: no validation split"
NOT_RANKED_NO_VALUE = "not ranked: no validation accuracy"


def group_status(entries: list[dict]) -> str:
    """"ok", or how many of a configuration's seeds diverged or failed and what the means are over."""
    n = len(entries)
    diverged = sum(e["diverged"] for e in entries)
    failed = sum(e["status"] != "ok" for e in entries)
    if not diverged and not failed:
        return "ok"
    parts = [f"{diverged} of {n} diverged"] if diverged else []
    parts += [f"{failed} of {n} FAILED"] if failed else []
    usable = n - diverged - failed
    parts.append(f"means over the other {usable}" if usable else "no finite result")
    return "; ".join(parts)


def sweep_configurations(sweep: Sweep) -> dict[str, list[str]]:
    """{backend: the study configurations sweep.json lists for it}, in the grid's order (empty without study fields)."""
    fields = sweep.study_fields
    expected: dict[str, list[str]] = {}
    if not fields:
        return expected
    for cell in sweep.document.cells:
        backend = cell.backend or str(cell.factors.get("backend", "?"))
        label = factor_label(cell.factors, fields, None)
        if label not in expected.setdefault(backend, []):
            expected[backend].append(label)
    return expected


def missing_configurations(sweep: Sweep, present: dict[str, list[str]]) -> dict[str, tuple[int, list[str]]]:
    """{backend: (configurations in the grid, those without any result yet)} for each backend with a gap."""
    gaps = {}
    for backend, labels in sweep_configurations(sweep).items():
        missing = [label for label in labels if label not in present.get(backend, [])]
        if missing:
            gaps[backend] = (len(labels), missing)
    return gaps


def no_validation_split(entries: list[dict]) -> bool:
    """None of these runs held out a validation split (so none can have a validation accuracy)."""
    return all(not (e["split_validation"] or 0) and e["best_val_accuracy"] is None for e in entries)


def ranking_table(sweep: Sweep) -> Table:
    """Per backend, the study's configurations ranked by final validation accuracy (mean over seeds), test accuracy beside it.

    Means are over the seeds that finished with finite accuracies; a configuration with a diverged seed
    (NaN accuracy) ranks after every configuration without one, and its status says how many diverged.
    Only configurations with a finite validation accuracy are ranked: the others (every seed failed or
    diverged, or no validation accuracy) come last without a rank; a backend where no configuration has
    one (no validation split) is not ranked at all, and the note says so. Configurations of the grid
    without any result yet are named in the note.
    """
    fields = sweep.study_fields
    header = " / ".join(fields) or "configuration"
    groups: dict[tuple[str, str], list[dict]] = {}
    for result in records(sweep.rows):
        label = factor_label(result["factors_json"], fields, result["spec_name"])
        groups.setdefault((result["backend"], label), []).append(result)
    rows, unstable = [], []
    for (backend, label), entries in groups.items():
        usable = [e for e in entries if e["usable"]]
        vals = [e["final_val_accuracy"] for e in usable if e["final_val_accuracy"] is not None]
        tests = [e["test_accuracy"] for e in usable]
        rows.append({"backend": backend, "rank": None, header: label,
                     "val acc (%)": 100.0 * sum(vals) / len(vals) if vals else None,
                     "test acc (%)": 100.0 * sum(tests) / len(tests) if tests else None,
                     "seeds": len(entries), "status": group_status(entries)})
        unstable.append(any(e["diverged"] for e in entries))
    frame = pd.DataFrame(rows, columns=["backend", "rank", header, "val acc (%)", "test acc (%)", "seeds", "status"])
    notes, title = [], f"{sweep.name}: {header} ranked per backend"
    if not frame.empty:
        backends = list(dict.fromkeys(frame["backend"]))
        for column in ("val acc (%)", "test acc (%)"):
            frame[column] = pd.to_numeric(frame[column])
        # Accuracies are at most 100 points, so +1000 puts every configuration with a diverged seed after the others;
        # a configuration without a finite validation accuracy has no key (NaN): no rank, and last.
        key = 1000.0 * pd.Series(unstable, index=frame.index, dtype=float) - frame["val acc (%)"]
        frame["rank"] = key.groupby(frame["backend"]).rank(method="min")
        order = frame.assign(_backend=frame["backend"].map(backends.index), _key=key)
        frame = frame.loc[order.sort_values(["_backend", "_key"], na_position="last", kind="stable").index].reset_index(drop=True)
        unranked = [b for b in backends if not frame.loc[frame["backend"] == b, "val acc (%)"].notna().any()]
        if unranked:
            entries = [e for (b, _), group in groups.items() if b in unranked for e in group]
            reason = NOT_RANKED_NO_SPLIT if no_validation_split(entries) else NOT_RANKED_NO_VALUE
            notes.append(f"{reason.capitalize()} ({', '.join(unranked)}): no configuration has a final validation "
                         "accuracy, so they are listed in grid order; the test accuracy is not used to rank.")
            if len(unranked) == len(backends):
                title = f"{sweep.name}: {header} per backend ({reason})"
    present: dict[str, list[str]] = {}
    for backend, label in groups:
        present.setdefault(backend, []).append(label)
    for backend, (total, missing) in missing_configurations(sweep, present).items():
        notes.append(f"Incomplete grid: {backend} has results for {total - len(missing)} of {total} configurations; "
                     f"no results yet: {listed(missing)}.")
    note = ("Ranked by the last epoch's validation accuracy (model selection uses the validation split); "
            "the test accuracy is reported once, next to it, and is not used to rank. Means are over the seeds that "
            "finished with finite accuracies; a configuration with a diverged seed (accuracy not finite) ranks "
            "after all the others, and its status says how many of its seeds diverged. A configuration without a "
            "finite validation accuracy (every seed failed or diverged) has no rank.")
    return Table(title, frame, {"rank": integer, "val acc (%)": points, "test acc (%)": points}, " ".join([note, *notes]))
