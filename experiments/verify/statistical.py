"""Level 5: test accuracy over K seeds per backend, confidence intervals, and paired equivalence tests.

Every backend trains with the same seeds, so for a seed the runner gives them the same split
and batch order; only initialisation and random streams differ. Differences are therefore
paired by seed. With d_i = acc_A(seed i) - acc_B(seed i), mean d and its standard error s/sqrt(K):
- equivalent: the (1 - 2 alpha) = 90% confidence interval of mean d lies inside (-margin, +margin),
  i.e. both one-sided tests (TOST, Schuirmann 1987) reject at alpha;
- different: that interval lies entirely outside [-margin, +margin];
- inconclusive: it overlaps a margin boundary (more seeds would decide).

References: Schuirmann, "A comparison of the two one-sided tests procedure...", J. Pharmacokinet.
Biopharm. 15 (1987).
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.verify.tolerances import ALPHA, EQUIVALENCE_MARGIN_POINTS


@dataclass(frozen=True)
class BackendAccuracy:
    """Mean test accuracy of one backend over seeds, with a two-sided 95% t interval (points)."""

    backend: str
    accuracies: list[float]
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Equivalence:
    """The verdict for one pair, in accuracy points."""

    first: str
    second: str
    mean_difference: float
    ci90_low: float
    ci90_high: float
    p_tost: float
    margin: float
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    mean = float(values.mean())
    if len(values) < 2:
        return float("-inf"), float("inf")
    sem = float(values.std(ddof=1) / np.sqrt(len(values)))
    if sem == 0.0:
        return mean, mean
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sem
    return mean - half, mean + half


def summarize(backend: str, accuracies: list[float]) -> BackendAccuracy:
    points = np.asarray(accuracies, dtype=np.float64) * 100.0
    low, high = _interval(points, 0.95)
    return BackendAccuracy(backend, list(accuracies), float(points.mean()), low, high)


def equivalence(first: str, a: list[float], second: str, b: list[float], margin: float = EQUIVALENCE_MARGIN_POINTS) -> Equivalence:
    """Paired TOST on per-seed accuracies (fractions), margin in points."""
    d = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) * 100.0
    mean = float(d.mean())
    low, high = _interval(d, 1.0 - 2 * ALPHA)
    if len(d) < 2:
        p = 1.0
    else:
        sem = float(d.std(ddof=1) / np.sqrt(len(d)))
        if sem == 0.0:
            p = 0.0 if abs(mean) < margin else 1.0
        else:
            df = len(d) - 1
            p_lower = 1.0 - scipy_stats.t.cdf((mean + margin) / sem, df)  # H0: d <= -margin
            p_upper = scipy_stats.t.cdf((mean - margin) / sem, df)  # H0: d >= +margin
            p = float(max(p_lower, p_upper))
    if -margin < low and high < margin:
        verdict = "equivalent"
    elif high < -margin or low > margin:
        verdict = "different"
    else:
        verdict = "inconclusive"
    return Equivalence(first, second, mean, low, high, p, margin, verdict)
