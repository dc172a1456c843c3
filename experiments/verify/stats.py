"""Comparison statistics for one quantity between two backends, in the manner of NVIDIA Polygraphy.

For actual a and reference r (float64): max and mean absolute error, the 99th percentile of
|a - r|, the largest elementwise relative error |a - r| / max(|r|, floor), and the normwise
relative error max|a - r| / max|r| that the suite's tolerances bound. `needed` is the smallest
tolerance that would have passed: the normwise error itself.
"""

from dataclasses import asdict, dataclass

import numpy as np

from experiments.compare import relative_error

ELEMENTWISE_FLOOR = 1e-12  # keeps elementwise relative errors finite where the reference is ~0


@dataclass(frozen=True)
class Stats:
    """How far one array is from its reference."""

    max_abs: float
    mean_abs: float
    p99_abs: float
    max_rel: float
    normwise_rel: float
    worst_index: tuple[int, ...]

    @property
    def needed(self) -> float:
        """The smallest (normwise relative) tolerance that would have passed."""
        return self.normwise_rel

    def to_dict(self) -> dict:
        return {**asdict(self), "worst_index": list(self.worst_index), "needed": self.needed}


def compare(actual: np.ndarray, reference: np.ndarray) -> Stats:
    """Statistics of actual against reference (same shape)."""
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {r.shape}")
    if a.size == 0:
        return Stats(0.0, 0.0, 0.0, 0.0, 0.0, ())
    diff = np.abs(a - r)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    return Stats(
        max_abs=float(diff.max()),
        mean_abs=float(diff.mean()),
        p99_abs=float(np.percentile(diff, 99)),
        max_rel=float(np.max(diff / np.maximum(np.abs(r), ELEMENTWISE_FLOOR))),
        normwise_rel=relative_error(a, r),
        worst_index=tuple(int(i) for i in worst),
    )
