"""Test accuracy over seeds: groups of one configuration and backend, their mean and 95% interval, and their table."""

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from experiments.report.inputs import Inputs, records
from experiments.report.table import Table, factor_label, interval_text, listed, points
from experiments.verify.statistical import summarize

ACCURACY_RANGE = (0.0, 100.0)  # points: an accuracy interval is clipped to it


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
    return interval_text(low, high, finite=len(group.finite)) + (" (clipped)" if clipped else "")


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
