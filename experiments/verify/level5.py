"""Level 5 runner: full training on every backend for K seeds, then per-backend intervals and pairwise verdicts."""

import itertools
from dataclasses import asdict
from pathlib import Path

from experiments.data import Dataset
from experiments.runner import Display, run_experiment
from experiments.spec import ExperimentSpec
from experiments.verify.statistical import equivalence, summarize
from experiments.verify.tolerances import EQUIVALENCE_MARGIN_POINTS


def seeds_for(spec: ExperimentSpec, count: int) -> list[int]:
    """K consecutive seeds starting at the spec's seed."""
    return [spec.seed + i for i in range(count)]


def run_level5(
    spec: ExperimentSpec, dataset: Dataset, backends: list[str], seeds: int, run_dir: Path, threads: int,
    display: Display, margin: float = EQUIVALENCE_MARGIN_POINTS,
) -> dict:
    """Train every backend once per seed (each framework with its own initialisation) and judge each pair."""
    accuracies: dict[str, list[float]] = {b: [] for b in backends}
    failures: list[str] = []
    failed_backends: dict[str, list[str]] = {}  # the same failures keyed by backend, so readers need not parse the strings
    for seed in seeds_for(spec, seeds):
        seeded = spec.model_copy(update={"seed": seed})
        result = run_experiment(seeded, dataset, backends, run_dir / f"seed-{seed}", threads, display)
        for outcome in result.outcomes:
            if outcome.status == "ok":
                accuracies[outcome.backend].append(outcome.metrics["test_accuracy"])
            else:
                failures.append(f"{outcome.backend} seed {seed}: {outcome.reason}")
                failed_backends.setdefault(outcome.backend, []).append(failures[-1])
    complete = [b for b in backends if len(accuracies[b]) == seeds]
    pairs = [equivalence(a, accuracies[a], b, accuracies[b], margin) for a, b in itertools.combinations(complete, 2)]
    return {
        "seeds": seeds_for(spec, seeds),
        "margin_points": margin,
        "backends": [asdict(summarize(b, accuracies[b])) for b in complete],
        "pairs": [p.to_dict() for p in pairs],
        "failures": failures,
        "failed_backends": failed_backends,
        "passed": not failures and all(p.verdict != "different" for p in pairs),
    }
