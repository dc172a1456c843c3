"""Level 1's initial draw: each backend's own initial weights compared with the oracle's as distributions.

Before the probe loads the shared start weights, it records every parameter as the backend drew it
(`init/<parameter>`): in catalog mode each framework's RNG drawing the catalog's distribution, in native mode the
framework's own initializer. Different RNGs never give equal values, so two draws are compared as samples:
- the two-sample Kolmogorov-Smirnov distance D between their empirical CDFs, against its critical distance at
  INIT_ALPHA (different distributions, beyond what sampling explains);
- the support: how many values of one draw lie beyond the other's largest (or below its smallest). Two samples of
  one distribution put k values beyond the other's extreme with probability about 2^-k, so more than
  OUTSIDE_LIMIT on one side means one distribution reaches where the other does not (an untruncated normal
  against a truncated one, a wider uniform), which KS alone sees only in large tensors.
Tensors of one repeated value (zeros, constants, batch-norm scale) compare exactly (D = 1 if they differ). The
power grows with the tensor: a 784 x 48 kernel shows a CDF distance of about 0.02; a 10-value bias only gross
differences.
"""

import math

import numpy as np
from scipy import stats as scipy_stats

INIT_PREFIX = "init/"
INIT_ALPHA = 1e-6
"""Per tensor: the chance that two draws of the same distribution fail. Small, because a matrix compares hundreds."""


def critical_distance(n: int, m: int, alpha: float = INIT_ALPHA) -> float:
    """The asymptotic two-sample KS critical distance c(alpha) sqrt((n + m) / (n m)), c = sqrt(-ln(alpha / 2) / 2)."""
    return math.sqrt(-math.log(alpha / 2.0) / 2.0) * math.sqrt((n + m) / (n * m))


OUTSIDE_LIMIT = 30
"""Values of one draw beyond one end of the other's range: two samples of one distribution exceed it with
probability about 4 x 2^-30 (both ends, both draws)."""


def compare_draws(a: np.ndarray, b: np.ndarray) -> tuple[dict, float, bool]:
    """(stats, limit, passed) for two initial draws of one parameter: stats["needed"] is the KS distance D, limit its
    critical distance; stats["outside"] the most values of one draw beyond one end of the other's range; passed when
    D <= limit and outside <= OUTSIDE_LIMIT. With each draw's mean and standard deviation."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if np.ptp(a) == 0.0 and np.ptp(b) == 0.0:
        distance, p_value = (0.0, 1.0) if a[0] == b[0] else (1.0, 0.0)
        outside = 0
    else:
        result = scipy_stats.ks_2samp(a, b)
        distance, p_value = float(result.statistic), float(result.pvalue)
        outside = int(max(np.sum(a > b.max()), np.sum(a < b.min()), np.sum(b > a.max()), np.sum(b < a.min())))
    limit = critical_distance(a.size, b.size)
    stats = {"needed": distance, "ks_p_value": p_value, "outside": outside, "mean": [float(a.mean()), float(b.mean())],
             "std": [float(a.std()), float(b.std())], "size": int(a.size)}
    return stats, limit, distance <= limit and outside <= OUTSIDE_LIMIT
