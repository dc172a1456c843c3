"""The float32 rounding floor: failing float32 trajectory rows within 4x the oracle's own float32 drift say so, and still fail."""

import json

import numpy as np
import pytest

from experiments.verify.ladder import Row, summarize
from experiments.verify.rounding import (
    EXPLAINED_PREFIX, ROUNDING_EXPLAINS, explain_by_rounding, reference_cells, rounding_floors,
)
from tests.cli_helpers import mnist_parity, only_run_dir

FLOOR = 1e-2


def _row(quantity: str, needed: float, level: str = "trajectory", passed: bool = False) -> Row:
    return Row(level, "torch", "jax", quantity, {"needed": needed}, 1e-3, passed, "unexplained")


@pytest.mark.parametrize("ratio, explained", [(0.5, True), (ROUNDING_EXPLAINS, True), (ROUNDING_EXPLAINS * 1.01, False), (100, False)])
def test_failing_rows_within_the_floor_multiple_are_explained_and_still_fail(ratio, explained):
    row = _row("loss", ratio * FLOOR)
    count = explain_by_rounding([row], {"trajectory/loss": FLOOR})
    assert count == int(explained)
    assert row.passed is False
    assert row.hint.startswith(EXPLAINED_PREFIX) is explained
    assert row.stats["rounding_floor"] == FLOOR and row.stats["rounding_ratio"] == pytest.approx(ratio)
    if not explained:
        assert "unexplained" in row.hint and f"{FLOOR:.1e}" in row.hint


def test_passing_rows_other_levels_and_rows_without_a_floor_are_left_alone():
    rows = [_row("loss", 1e-4, passed=True), _row("dense_0", 1e-2, level="step"), _row("norm/dense_0/kernel", 1e-2)]
    assert explain_by_rounding(rows, {"trajectory/loss": FLOOR}) == 0
    assert [r.hint for r in rows] == ["unexplained"] * 3


def test_level_line_names_rounding_only_when_every_failure_is_explained():
    rows = [_row("loss", FLOOR), _row("at/1/dense_0/kernel", 2 * FLOOR)]
    floors = {"trajectory/loss": FLOOR, "trajectory/at/1/dense_0/kernel": FLOOR}
    explain_by_rounding(rows, floors)
    line = summarize(rows, [])[0]
    assert line["hint"].startswith(EXPLAINED_PREFIX) and "all 2 failing" in line["hint"] and line["failing"] == 2
    rows.append(_row("at/1/dense_0/bias", 50 * FLOOR))
    explain_by_rounding(rows[2:], {"trajectory/at/1/dense_0/bias": FLOOR})
    assert not summarize(rows, [])[0]["hint"].startswith(f"{EXPLAINED_PREFIX} all")


def test_floors_are_the_float32_oracle_against_the_float64_oracle():
    exact = {"trajectory/loss": np.array([2.0, 1.0]), "trajectory/at/1/w": np.array([1.0, -4.0]), "forward/logits": np.ones(2)}
    rounded = {"trajectory/loss": np.array([2.0, 1.02]), "trajectory/at/1/w": np.array([1.0, -4.0]), "forward/logits": np.ones(2)}
    floors = rounding_floors(rounded, exact)
    assert floors == {"trajectory/loss": pytest.approx(0.01), "trajectory/at/1/w": 0.0}


def test_reference_cells_are_the_same_cells_in_float64():
    cells = {"c": {"spec": {"dtype": "float32", "seed": 3}, "step_cases": None}}
    assert reference_cells(cells) == {"c@float64": {"spec": {"dtype": "float64", "seed": 3}, "step_cases": None}}
    assert cells["c"]["spec"]["dtype"] == "float32"


def test_float32_verify_records_the_rounding_floor(tmp_path):
    result = mnist_parity("verify", "mlp-relu-adam", "--levels", "4", "--dtype", "float32", "--steps", "3",
                          "--dataset", "mnist-subset", "--backends", "jax", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    floor = json.loads((only_run_dir(tmp_path) / "verify.json").read_text())["levels"]["4"]["rounding_floor"]
    # float32 rounding moves a 3-step MLP trajectory, but far less than the 1e-3 tolerance
    assert 0 < floor["loss"] < 1e-5 and 0 < floor["worst"] < 1e-3
    assert "float32 rounding floor" in result.stdout
