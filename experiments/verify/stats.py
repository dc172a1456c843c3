"""Comparison statistics for one quantity between two backends, in the manner of NVIDIA Polygraphy.

For actual a and reference r (float64): max and mean absolute error, the 99th percentile of
|a - r|, the largest elementwise relative error |a - r| / max(|r|, floor), and the normwise
relative error max|a - r| / max|r| that the suite's tolerances bound. `needed` is the smallest
tolerance that would have passed: the normwise error itself.

A quantity whose true value is zero (a bias whose output a batch norm re-centres has gradient
exactly 0) comes out as rounding noise, and noise against noise has no meaningful relative error.
So when the reference is negligible against its group's scale S (max|r| <= NEGLIGIBLE * S, the
group being e.g. all gradients, or all parameters at one trajectory step), the normwise error is
taken against S instead: max|a - r| / S, and the row says so (`against_scale`).
"""

from dataclasses import asdict, dataclass

import numpy as np

from experiments.compare import relative_error

ELEMENTWISE_FLOOR = 1e-12  # keeps elementwise relative errors finite where the reference is ~0

NEGLIGIBLE = 1e-8
"""A reference at most this fraction of its group's scale is compared against the group's scale."""


@dataclass(frozen=True)
class Stats:
    """How far one array is from its reference."""

    max_abs: float
    mean_abs: float
    p99_abs: float
    max_rel: float
    normwise_rel: float
    worst_index: tuple[int, ...]
    against_scale: bool = False

    @property
    def needed(self) -> float:
        """The smallest (normwise relative) tolerance that would have passed."""
        return self.normwise_rel

    def to_dict(self) -> dict:
        return {**asdict(self), "worst_index": list(self.worst_index), "needed": self.needed}


def compare(actual: np.ndarray, reference: np.ndarray, group_scale: float = 0.0) -> Stats:
    """Statistics of actual against reference (same shape); group_scale is S above (0: none)."""
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {r.shape}")
    if a.size == 0:
        return Stats(0.0, 0.0, 0.0, 0.0, 0.0, ())
    diff = np.abs(a - r)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    negligible = group_scale > 0 and float(np.max(np.abs(r))) <= NEGLIGIBLE * group_scale
    return Stats(
        max_abs=float(diff.max()),
        mean_abs=float(diff.mean()),
        p99_abs=float(np.percentile(diff, 99)),
        max_rel=float(np.max(diff / np.maximum(np.abs(r), ELEMENTWISE_FLOOR))),
        normwise_rel=float(diff.max()) / group_scale if negligible else relative_error(a, r),
        worst_index=tuple(int(i) for i in worst),
        against_scale=negligible,
    )
