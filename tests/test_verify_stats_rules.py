"""The near-zero rule of experiments/verify/stats.py: a reference at most NEGLIGIBLE (1e-8) of its group's
scale S is compared against S; anything larger against its own max|r|. The numbers are worked out by hand."""

import numpy as np
import pytest

from experiments.verify.stats import NEGLIGIBLE, compare
from experiments.verify.tolerances import tolerance

SCALE = 4.0  # the group's scale S: e.g. the largest gradient of all
BELOW, ABOVE = 0.5 * NEGLIGIBLE * SCALE, 2.0 * NEGLIGIBLE * SCALE  # 2e-8 and 8e-8: either side of 4e-8


def test_the_threshold_is_one_in_a_hundred_million():
    assert NEGLIGIBLE == 1e-8


@pytest.mark.parametrize("size, against_scale", [(BELOW, True), (NEGLIGIBLE * SCALE, True), (ABOVE, False)],
                         ids=["below", "at", "above"])
def test_which_side_of_the_threshold_decides_the_measure(size, against_scale):
    reference = np.array([size, -size / 2, 0.0])
    actual = reference + np.array([0.0, 1e-18, 0.0])
    stats = compare(actual, reference, SCALE)
    assert stats.against_scale is against_scale
    expected = (1e-18 / SCALE) if against_scale else (1e-18 / size)
    assert stats.normwise_rel == pytest.approx(expected, rel=1e-6)
    assert stats.max_abs == pytest.approx(1e-18, rel=1e-6)


def test_just_above_the_threshold_a_relative_error_is_still_caught():
    """8e-8 is not negligible against 4: a 1% error in it is 1% (fails), not 2e-10 of the scale."""
    reference = np.full(3, ABOVE)
    stats = compare(reference * 1.01, reference, SCALE)
    assert not stats.against_scale and stats.normwise_rel == pytest.approx(0.01)
    assert stats.needed > tolerance("gradients", "float64")


def test_rounding_noise_on_a_zero_quantity_passes_against_the_scale():
    """A bias before a batch norm: true gradient 0, both sides rounding noise of 1e-16 * S."""
    reference = np.array([3e-16, -1e-16]) * SCALE
    actual = np.array([-2e-16, 4e-16]) * SCALE
    stats = compare(actual, reference, SCALE)
    assert stats.against_scale and stats.normwise_rel == pytest.approx(5e-16)
    assert stats.needed <= tolerance("gradients", "float64")
    assert compare(actual, reference).normwise_rel == pytest.approx(5 / 3)  # without a group: noise against noise


def test_a_real_error_on_a_near_zero_quantity_still_fails():
    """The rule widens the measure for negligible references, but an error of 1e-6 of the scale on one is
    still 1e-6 against the scale: far above every float64 tolerance."""
    reference = np.array([BELOW, 0.0, -BELOW])
    actual = reference + np.array([0.0, 1e-6 * SCALE, 0.0])
    stats = compare(actual, reference, SCALE)
    assert stats.against_scale and stats.normwise_rel == pytest.approx(1e-6)
    assert all(stats.needed > tolerance(level, "float64") for level in ("forward", "gradients", "step", "trajectory"))


def test_no_group_means_no_rule():
    """group_scale 0 (none): a small reference is measured against itself, however small."""
    reference = np.array([1e-12, 2e-12])
    stats = compare(reference * (1 + 1e-3), reference)
    assert not stats.against_scale and stats.normwise_rel == pytest.approx(1e-3)


@pytest.mark.parametrize("actual, expected", [([0.0, 0.0], 0.0), ([0.0, 1e-300], float("inf"))], ids=["equal", "any-difference"])
def test_an_all_zero_reference_without_a_group_is_exact_or_infinitely_far(actual, expected):
    """No group scale and a reference of exact zeros: no division by zero, and no absolute error passed off as a
    relative one (a difference of 1e-300 is not "1e-300 relative")."""
    stats = compare(np.array(actual), np.zeros(2))
    assert not stats.against_scale and stats.normwise_rel == expected
