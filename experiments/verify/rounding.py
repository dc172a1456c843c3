"""The float32 rounding floor of a trajectory: how far the float32 oracle drifts from its own float64 run.

A float32 trajectory cannot be compared with float64 expectations: every step rounds, and
training amplifies early differences (batch norm and adaptive optimizers most: Adam's first step
is lr * g / (|g| + eps), so a gradient element near eps moves by a step-sized amount when rounding
changes it), and two correct float32 implementations drift apart. The floor F of a quantity is the
normwise relative error of the float32 NumPy oracle against the float64 oracle on the same weights,
batches and noise: what float32 rounding alone does to a known-correct implementation.

Two float32 runs a and b differ by at most |a - e| + |b - e| from the exact run e (triangle
inequality). Allowing each backend to round up to twice as badly as the oracle (another summation
order, a fused kernel) gives |a - b| <= 4F: a failing float32 trajectory quantity within
ROUNDING_EXPLAINS * F is reported as explained by float32 rounding; any other failing one carries
its floor and ratio. The rows still fail: the tolerance is never widened.
"""

from experiments.verify.cases import ORACLE
from experiments.verify.groups import group_scales, scale_group
from experiments.verify.stats import compare

ROUNDING_EXPLAINS = 4.0
"""A float32 trajectory error up to this multiple of the oracle's float32-vs-float64 drift is rounding."""

REFERENCE_SUFFIX = "@float64"
EXPLAINED_PREFIX = "float32 rounding:"


def reference_cells(cells: dict[str, dict]) -> dict[str, dict]:
    """The same cells in float64, under ids `<cell>@float64`, for the oracle's reference trajectory."""
    return {f"{cell}{REFERENCE_SUFFIX}": {**entry, "spec": {**entry["spec"], "dtype": "float64"}} for cell, entry in cells.items()}


def rounding_floors(float32_oracle: dict, float64_oracle: dict) -> dict[str, float]:
    """Per trajectory quantity key ("trajectory/..."), the float32 oracle's error against the float64 oracle."""
    scales = group_scales(float64_oracle)
    return {
        key: compare(float32_oracle[key], float64_oracle[key], scales[scale_group(key)]).needed
        for key in float32_oracle
        if key.startswith("trajectory/") and key in float64_oracle
    }


def explain_by_rounding(rows: list, floors: dict[str, float]) -> int:
    """Label each failing trajectory row whose error is within ROUNDING_EXPLAINS x its floor; returns how many."""
    explained = 0
    for row in rows:
        floor = floors.get(f"trajectory/{row.quantity}")
        if row.level != "trajectory" or row.passed or floor is None or "needed" not in row.stats:
            continue
        ratio = row.stats["needed"] / floor if floor > 0 else float("inf")
        row.stats["rounding_floor"], row.stats["rounding_ratio"] = floor, ratio
        if ratio <= ROUNDING_EXPLAINS:
            row.hint = (f"{EXPLAINED_PREFIX} the float32 {ORACLE} oracle itself drifts {floor:.1e} from its float64 run here; "
                        f"{row.stats['needed']:.1e} is {ratio:.1f}x that, within {ROUNDING_EXPLAINS:g}x (tolerance not widened)")
            explained += 1
        else:
            row.hint = (row.hint + "; " if row.hint else "") + f"float32 rounding floor here {floor:.1e} ({ratio:.1f}x)"
    return explained


def summary_cause(failing: list) -> str | None:
    """One known cause for a level line when every failing row is explained by rounding, else None."""
    explained = [row for row in failing if row.hint.startswith(EXPLAINED_PREFIX)]
    if not failing or len(explained) < len(failing):
        return None
    ratios = [row.stats["rounding_ratio"] for row in failing]
    return (f"{EXPLAINED_PREFIX} all {len(failing)} failing quantities are within {ROUNDING_EXPLAINS:g}x of the float32 "
            f"{ORACLE} oracle's own drift from its float64 run (ratios {min(ratios):.1f}-{max(ratios):.1f}x); tolerance not widened")
