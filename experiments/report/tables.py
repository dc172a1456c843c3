"""The report's tables as pandas frames of plain numbers and text; markdown.py and html.py render (and escape) them."""

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from experiments.report.gates import Verdict, gate
from experiments.report.loading import Inputs, Run, Sweep, Verify, records
from experiments.verify.statistical import summarize

LEVEL_ORDER = ("forward", "gradients", "step", "trajectory")
VERDICT_COLUMNS = ("status", "gate", "verdict", "result")
NO_VALIDATION = "no validation accuracy"  # finished, test accuracy kept, but the last epoch recorded no validation accuracy
NOT_RANKED_NO_SPLIT = "not ranked: no validation split"
NOT_RANKED_NO_VALUE = "not ranked: no validation accuracy"
ACCURACY_RANGE = (0.0, 100.0)  # points: an accuracy interval is clipped to it


@dataclass(frozen=True)
class Table:
    """A titled frame; formats maps a column to how its values are written (default: str)."""

    title: str
    frame: pd.DataFrame
    formats: dict[str, Callable[[Any], str]] = field(default_factory=dict)
    note: str = ""
    verdicts: tuple[str, ...] = VERDICT_COLUMNS  # the columns whose text is a verdict (the HTML colours only these)
    collapsed: bool = False  # the HTML shows it folded in a <details> element (markdown as it is)

    def cells(self) -> list[list[str]]:
        """Every row as display text ("-" for a missing value)."""
        rows = []
        for _, row in self.frame.iterrows():
            rows.append([_text(value, self.formats.get(column)) for column, value in row.items()])
        return rows


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any, fmt: Callable[[Any], str] | None) -> str:
    if _missing(value):
        return "-"
    return fmt(value) if fmt else str(value)


def points(value: float) -> str:
    return f"{value:.2f}"


def sci(value: float) -> str:
    return f"{value:.2e}"


def seconds(value: float) -> str:
    return f"{value:.2f}"


def rate(value: float) -> str:
    return f"{value:,.0f}"


def integer(value: Any) -> str:
    return f"{int(value):,}"


def percent(fraction: float | None) -> float | None:
    return None if _missing(fraction) else 100.0 * fraction


def factor_label(factors: dict[str, Any] | None, fields: list[str], name: str | None) -> str:
    """A sweep cell's study configuration, e.g. "relu" or "relu / adam" (name: the spec's, when there are no fields)."""
    factors = factors or {}
    return " / ".join(str(factors.get(field_name, "?")) for field_name in fields) or str(name)


# The functions below read a store row (loading.records): its columns, plus the report's label, diverged and usable.


def backend_gate(row: dict) -> Verdict:
    return gate(row["spec_json"] or {}, row["split_train"], row["test_accuracy"], row["status"] == "ok")


def backend_status(row: dict) -> str:
    if row["status"] != "ok":
        return f"FAILED: {row['reason'] or ''}"
    if row["diverged"]:
        return "diverged: finished without a finite accuracy"
    if row.get("val_missing"):
        return NO_VALIDATION
    return "ok"


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


def results_table(title: str, results: pd.DataFrame, fields: list[str] | None = None) -> Table:
    """Side by side: one row per run and backend (the store's rows); for a sweep's cells (fields given) the study
    fields and seed first."""
    rows = []
    for result in records(results):
        factors = result["factors_json"] or {}
        row = {name: factors.get(name) for name in fields or []}
        if fields is not None:
            row["seed"] = result["seed"]
        row.update({
            "backend": result["backend"],
            "status": backend_status(result),
            "val acc (%)": percent(result["final_val_accuracy"]),
            "test acc (%)": percent(result["test_accuracy"]),
            "test loss": result["test_loss"],
            "train time (s)": result["train_time_s"],
            "samples/s": result["steady_samples_per_s"],
            "parameters": result["parameter_count"],
            "framework": " ".join(f"{k} {v}" for k, v in (result["versions_json"] or {}).items()),
            "gate": backend_gate(result).status,
        })
        rows.append(row)
    formats = {"val acc (%)": points, "test acc (%)": points, "test loss": lambda v: f"{v:.4f}",
               "train time (s)": seconds, "samples/s": rate, "parameters": integer}
    note = "val acc: the last epoch's validation accuracy (the model that was tested); samples/s: steady throughput after the first epoch."
    return Table(title, pd.DataFrame(rows), formats, note)


def gate_table(inputs: Inputs) -> Table:
    """Every run and backend with its gate verdict, flagged ones first; level-5 means are gated too."""
    rows = []
    for result in records(inputs.results):
        rows.append(_gate_row(result["label"], result["backend"], result["spec_json"] or {}, result["split_train"],
                              backend_gate(result), percent(result["test_accuracy"])))
    for verify in inputs.verifies:
        level5 = verify.document.levels.get("5")
        if level5 is None or verify.document.spec is None:
            continue
        spec = verify.document.spec.model_dump(mode="json")
        train = _level5_train_digits(verify)
        for backend in level5.backends:
            verdict = gate(spec, train, backend.mean / 100.0)
            rows.append(_gate_row(f"{verify.label} (level 5 mean of {len(backend.accuracies)} seeds)", backend.backend,
                                  spec, train, verdict, backend.mean))
    frame = pd.DataFrame(rows, columns=["run", "backend", "model", "train digits", "epochs", "test acc (%)",
                                        "threshold (%)", "verdict", "reason"])
    frame = frame.sort_values("verdict", key=lambda s: s != "implementation suspect", kind="stable").reset_index(drop=True)
    return Table("Sanity gate per run and backend", frame, gate_formats())


def gate_formats() -> dict[str, Callable[[Any], str]]:
    return {"test acc (%)": points, "threshold (%)": lambda v: f"{v:.1f}", "train digits": integer}


def _gate_row(label, backend, spec, train, verdict: Verdict, accuracy) -> dict:
    return {"run": label, "backend": backend, "model": spec.get("model", {}).get("kind"), "train digits": train,
            "epochs": spec.get("training", {}).get("epochs"), "test acc (%)": accuracy, "threshold (%)": verdict.threshold,
            "verdict": verdict.status, "reason": verdict.reason}


def _level5_train_digits(verify: Verify) -> int | None:
    """Level 5 records the dataset's sizes, not the split: the split holds out round(fraction * N) (experiments.data.split)."""
    dataset, spec = verify.document.dataset, verify.document.spec
    if dataset is None or "train" not in dataset.sizes:
        return None
    n = dataset.sizes["train"]
    return n - int(round(spec.data.get("validation_fraction", 0.0) * n))


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


def listed(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


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


@dataclass(frozen=True)
class SeedGroup:
    """Test accuracies of one configuration and backend over seeds, with its 95% interval (points).

    seeds and accuracies list every seed, a diverged or FAILED one with a NaN accuracy (failed: which
    seeds did not finish at all); mean and interval are over the finite ones only (`finite`).
    """

    label: str
    backend: str
    seeds: list[int]
    accuracies: list[float]
    mean: float
    ci_low: float
    ci_high: float
    failed: tuple[bool, ...] = ()

    @property
    def finite(self) -> list[tuple[int, float]]:
        return [(s, a) for s, a in zip(self.seeds, self.accuracies) if _finite(a)]

    @property
    def failures(self) -> int:
        """Seeds that did not finish (their worker failed)."""
        return sum(self.failed)

    @property
    def diverged(self) -> int:
        """Seeds that finished without a finite test accuracy."""
        return len(self.accuracies) - len(self.finite) - self.failures

    def problems(self) -> list[str]:
        """["1 of 3 diverged", "1 of 3 FAILED"]: the seeds left out of the mean and interval, by cause."""
        n = len(self.accuracies)
        return ([f"{self.diverged} of {n} diverged"] if self.diverged else []) + (
            [f"{self.failures} of {n} FAILED"] if self.failures else [])

    @property
    def interval(self) -> tuple[float, float, bool]:
        """(low, high, clipped): the 95% interval clipped to the accuracy range [0, 100] points."""
        low, high = clip_interval(self.ci_low, self.ci_high)
        bounded = math.isfinite(self.ci_low) and math.isfinite(self.ci_high)
        return low, high, bounded and (low, high) != (self.ci_low, self.ci_high)


def clip_interval(low: float, high: float) -> tuple[float, float]:
    """An accuracy interval (points) clipped to ACCURACY_RANGE; a t interval over few seeds can reach past 100%."""
    floor, ceiling = ACCURACY_RANGE
    if not (math.isfinite(low) and math.isfinite(high)):
        return low, high
    return max(floor, low), min(ceiling, high)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _seed_group(label: str, backend: str, seeds: list, accuracies: list[float], stored=None,
                failed: list[bool] | None = None) -> SeedGroup:
    """Mean and interval over the finite accuracies (stored: level 5's own summary, used when every seed is finite)."""
    accuracies = [a if _finite(a) else math.nan for a in accuracies]
    finite = [a for a in accuracies if _finite(a)]
    if stored is not None and len(finite) == len(accuracies):
        mean, low, high = stored.mean, stored.ci_low, stored.ci_high
    elif finite:
        summary = summarize(backend, finite)
        mean, low, high = summary.mean, summary.ci_low, summary.ci_high
    else:
        mean, low, high = math.nan, math.nan, math.nan
    return SeedGroup(label, backend, list(seeds), accuracies, mean, low, high, tuple(failed or [False] * len(accuracies)))


def seed_groups(inputs: Inputs) -> list[SeedGroup]:
    """Groups with at least two seeds: sweep cells that differ only in seed, and level-5 verify results.

    A seed that finished without a finite test accuracy (diverged) or did not finish at all (FAILED) stays in the
    group as NaN, so the table can say so.
    """
    groups: list[SeedGroup] = []
    for sweep in inputs.sweeps:
        by_config: dict[tuple[str, str], list[tuple[int, float, bool]]] = {}
        for result in records(sweep.rows):
            key = (f"{sweep.name}: {factor_label(result['factors_json'], sweep.study_fields, result['spec_name'])}",
                   result["backend"])
            accuracy = result["test_accuracy"] if result["usable"] else math.nan
            by_config.setdefault(key, []).append((result["seed"], accuracy, result["status"] != "ok"))
        for (label, backend), values in by_config.items():
            if len({seed for seed, _, _ in values}) < 2:
                continue
            values.sort(key=lambda v: (v[0] is None, v[0]))
            groups.append(_seed_group(label, backend, [s for s, _, _ in values], [a for _, a, _ in values],
                                      failed=[f for _, _, f in values]))
    for verify in inputs.verifies:
        level5 = verify.document.levels.get("5")
        if level5 is not None:
            for b in level5.backends:
                groups.append(_seed_group(f"{verify.name} (verify level 5)", b.backend, level5.seeds, b.accuracies, b))
    return groups


def _per_seed(accuracy: float, failed: bool) -> str:
    return "FAILED" if failed else f"{100 * accuracy:.2f}" if _finite(accuracy) else "diverged"


def seed_status(group: SeedGroup) -> str:
    """"ok", or "1 of 3 FAILED; mean and CI over the other 2" (diverged seeds likewise)."""
    problems = group.problems()
    if not problems:
        return "ok"
    rest = f"mean and CI over the other {len(group.finite)}" if group.finite else "no finite result"
    return "; ".join([*problems, rest])


def seed_interval(group: SeedGroup) -> str:
    low, high, clipped = group.interval
    return _interval(low, high, finite=len(group.finite)) + (" (clipped)" if clipped else "")


def clipped_note(groups: list[SeedGroup]) -> str:
    clipped = [f"{g.label} ({g.backend})" for g in groups if g.interval[2]]
    if not clipped:
        return ""
    return (f"Intervals clipped to [0, 100]%: the t interval over few seeds reaches past an accuracy's range for "
            f"{listed(clipped)}.")


def seed_table(groups: list[SeedGroup]) -> Table:
    rows = [{"configuration": g.label, "backend": g.backend, "seeds": len(g.accuracies), "mean (%)": g.mean,
             "95% CI (%)": seed_interval(g),
             "per seed (%)": " ".join(_per_seed(a, f) for a, f in zip(g.accuracies, g.failed)),
             "status": seed_status(g)} for g in groups]
    notes = []
    if any(g.diverged for g in groups):
        notes.append("A diverged seed finished without a finite test accuracy (NaN); the mean and interval leave it out "
                     "and its status says so.")
    if any(g.failures for g in groups):
        notes.append("A FAILED seed did not finish (see the alerts in the summary); the mean and interval leave it out "
                     "and its status says so.")
    notes.append(clipped_note(groups))
    return Table("Test accuracy over seeds (mean and two-sided 95% t interval)", pd.DataFrame(rows), {"mean (%)": points},
                 " ".join(n for n in notes if n))


def _interval(low: float, high: float, signed: bool = False, finite: int | None = None) -> str:
    if finite == 0:
        return "none (no finite seed)"
    if not (math.isfinite(low) and math.isfinite(high)):
        return "unbounded (one seed)" if finite in (None, 1) else "-"
    return f"[{low:+.3f}, {high:+.3f}]" if signed else f"[{low:.2f}, {high:.2f}]"


def equivalence_table(verifies: list[Verify]) -> Table:
    """Level 5's paired TOST verdict per pair of backends."""
    rows = []
    for verify in verifies:
        level5 = verify.document.levels.get("5")
        if level5 is None:
            continue
        for p in level5.pairs:
            rows.append({"verify": verify.name, "pair": f"{p.first} vs {p.second}", "seeds": len(level5.seeds),
                         "mean difference (points)": p.mean_difference, "90% CI": _interval(p.ci90_low, p.ci90_high, True),
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
                         "first failure": line.first_failure, "known cause": line.hint})
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


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"optimizer.learning_rate": 0.001, "model.hidden[0].units": 256, ...}."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def hyperparameters_table(title: str, runs: list[Run]) -> Table:
    """What each backend ran with: the resolved spec (the same for every backend of a run), then the
    backend's own recorded settings and versions; several values (a sweep's grid) are listed together."""
    values: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        spec = {k: v for k, v in run.raw_spec.items() if k not in ("name", "description")}
        for result in records(run.rows):
            params = {**flatten(spec),
                      **{f"settings.{k}": v for k, v in flatten(result["settings_json"] or {}).items()},
                      **{f"versions.{k}": v for k, v in (result["versions_json"] or {}).items()}}
            for name, value in params.items():
                seen = values.setdefault(name, {}).setdefault(result["backend"], [])
                text = "None" if value is None else str(value)
                if text not in seen:
                    seen.append(text)
    backends = list(dict.fromkeys(backend for run in runs for backend in run.rows["backend"]))
    rows = [{"parameter": name, **{b: ", ".join(per.get(b, [])) or None for b in backends}} for name, per in values.items()]
    note = ("Spec fields are the values the suite pinned for every backend (no framework default is relied on); "
            "settings and versions are what each backend recorded when it started.")
    return Table(title, pd.DataFrame(rows, columns=["parameter", *backends]), {}, note)


def inputs_table(inputs: Inputs) -> Table:
    rows = []
    for run in inputs.runs:
        rows.append(_input_row("run", run.label, run.path, run.document.dataset, list(run.document.backends), run.document.created))
    for sweep in inputs.sweeps:
        first = sweep.runs[0].document if sweep.runs else None
        backends = list(dict.fromkeys(sweep.rows["backend"]))
        row = _input_row("sweep", sweep.name, sweep.path, first.dataset if first else None, backends, "")
        row["cells"] = f"{len(sweep.runs)} of {len(sweep.document.cells)} with results"
        rows.append(row)
    for verify in inputs.verifies:
        levels = ", ".join(sorted(verify.document.levels)) or "matrix 1-4"
        row = _input_row("verify", verify.label, verify.path, verify.document.dataset, [], "")
        row["cells"] = f"levels {levels}" if verify.document.spec else f"{len(verify.document.matrix or {})} matrix cells"
        rows.append(row)
    return Table("Inputs", pd.DataFrame(rows, columns=["kind", "name", "dataset", "digits", "backends", "cells", "created", "directory"]))


def _input_row(kind, name, path, dataset, backends, created) -> dict:
    digits = None
    if dataset is not None:
        split = dataset.split or dataset.sizes
        digits = " / ".join(f"{split[k]:,} {k}" for k in ("train", "validation", "test") if k in split)
    return {"kind": kind, "name": name, "dataset": dataset.name if dataset else None, "digits": digits,
            "backends": ", ".join(backends) or None, "cells": None, "created": created or None, "directory": str(path)}
