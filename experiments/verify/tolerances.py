"""Named tolerances of the parity ladder, per level and dtype (normwise relative errors).

float64: levels 1-3 at most 1e-10, the trajectory at most 1e-8 after its last step.
float32: forward 1e-5, gradients 1e-4, one step 1e-4, trajectory loss curves 1e-3.
A tolerance is never widened to make a failure go away: a known cause is reported instead.
"""

TOLERANCES = {
    ("forward", "float64"): 1e-10,
    ("gradients", "float64"): 1e-10,
    ("step", "float64"): 1e-10,
    ("trajectory", "float64"): 1e-8,
    ("forward", "float32"): 1e-5,
    ("gradients", "float32"): 1e-4,
    ("step", "float32"): 1e-4,
    ("trajectory", "float32"): 1e-3,
}

FORWARD_AGAINST_ORACLE = {"float64": 1e-12, "float32": 1e-5}
"""The backend tests' bound on eval-mode logits against the NumPy oracle with the same weights:
stricter than level 1's 1e-10 (the issue's number), because the measured errors are ~1e-15."""

EQUIVALENCE_MARGIN_POINTS = 0.3
"""Level 5: two backends are equivalent when their mean test accuracies differ by less than
0.3 accuracy points, shown by two one-sided tests at alpha = 0.05."""

ALPHA = 0.05


def tolerance(level: str, dtype: str) -> float:
    return TOLERANCES[(level, dtype)]
