"""Level 1's initial-draw check (experiments.verify.initial): two draws of one distribution pass, a different
distribution fails, and the ladder compares forward/init/... rows this way instead of element by element."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.verify.initial import OUTSIDE_LIMIT, compare_draws, critical_distance
from experiments.verify.ladder import compare_pair

SHAPE = (784, 48)  # the matrix MLP's first kernel: the largest tensor the check sees in the matrix
SIGMA = 0.05


def truncated(rng, size, sigma=SIGMA):
    """A normal cut at 2 standard deviations of the underlying normal, rescaled to standard deviation sigma."""
    scale = sigma / 0.87962566103423978
    return scipy_stats.truncnorm.rvs(-2.0, 2.0, scale=scale, size=size, random_state=rng)


SAME = {
    "normal": lambda rng: rng.normal(0.0, SIGMA, SHAPE),
    "uniform": lambda rng: rng.uniform(-0.1, 0.1, SHAPE),
    "truncated normal": lambda rng: truncated(rng, SHAPE),
    "constant": lambda rng: np.full(SHAPE, 0.01),
}


@pytest.mark.parametrize("kind", SAME)
@pytest.mark.parametrize("seeds", [(0, 1), (2, 3), (4, 5)])
def test_two_draws_of_one_distribution_pass(kind, seeds):
    a, b = (SAME[kind](np.random.default_rng(seed)) for seed in seeds)
    stats, limit, passed = compare_draws(a, b)
    assert passed, (stats, limit)


DIFFERENT = {
    # torch's xavier_normal_ against the catalog's (Keras') truncated normal of the same variance
    "untruncated vs truncated normal": (lambda rng: rng.normal(0.0, SIGMA, SHAPE), lambda rng: truncated(rng, SHAPE)),
    "uniform 10% wider": (lambda rng: rng.uniform(-0.11, 0.11, SHAPE), lambda rng: rng.uniform(-0.1, 0.1, SHAPE)),
    "normal 10% wider": (lambda rng: rng.normal(0.0, 1.1 * SIGMA, SHAPE), lambda rng: rng.normal(0.0, SIGMA, SHAPE)),
    "constant through float32": (lambda rng: np.full(SHAPE, float(np.float32(0.01))), lambda rng: np.full(SHAPE, 0.01)),
    "uniform against normal": (lambda rng: rng.uniform(-np.sqrt(3) * SIGMA, np.sqrt(3) * SIGMA, SHAPE),
                               lambda rng: rng.normal(0.0, SIGMA, SHAPE)),
}


@pytest.mark.parametrize("case", DIFFERENT)
def test_draws_of_different_distributions_fail(case):
    first, second = DIFFERENT[case]
    stats, limit, passed = compare_draws(first(np.random.default_rng(0)), second(np.random.default_rng(1)))
    assert not passed, (stats, limit)
    assert stats["needed"] > limit or stats["outside"] > OUTSIDE_LIMIT


def test_the_critical_distance_is_the_asymptotic_ks_bound():
    """c(alpha) sqrt((n + m) / (n m)) with c = sqrt(-ln(alpha / 2) / 2): 1.358 at alpha 0.05, the textbook value."""
    assert critical_distance(100, 100, alpha=0.05) == pytest.approx(1.3581 * np.sqrt(2 / 100), rel=1e-4)


def test_the_ladder_compares_initial_draws_as_distributions_and_the_rest_element_by_element():
    rng = np.random.default_rng(0)
    layer = rng.normal(size=(4, 3))
    a = {"forward/init/dense_0/kernel": rng.normal(0.0, SIGMA, SHAPE), "forward/dense_0": layer}
    b = {"forward/init/dense_0/kernel": rng.normal(0.0, SIGMA, SHAPE), "forward/dense_0": layer * (1 + 1e-9)}
    rows = {row.quantity: row for row in compare_pair("torch", a, "numpy", b, "float64")}
    assert rows["init/dense_0/kernel"].passed  # different values, one distribution
    assert rows["init/dense_0/kernel"].tolerance == pytest.approx(critical_distance(SHAPE[0] * SHAPE[1], SHAPE[0] * SHAPE[1]))
    assert not rows["dense_0"].passed  # 1e-9 relative is past the forward level's 1e-10
