"""Comparing arrays between backends: one error measure and the named tolerances the suite asserts."""

import numpy as np

# Named tolerances: normwise relative error max|a - r| / max|r| (see relative_error).
TOLERANCES = {
    ("forward", "float64"): 1e-12,
    ("forward", "float32"): 1e-5,
}


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max|actual - reference| / max|reference|: a normwise relative error that stays finite at zeros.

    An all-zero reference falls back to the absolute error.
    """
    actual = np.asarray(actual, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if actual.shape != reference.shape:
        raise ValueError(f"shape mismatch: {actual.shape} vs {reference.shape}")
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    difference = float(np.max(np.abs(actual - reference))) if reference.size else 0.0
    return difference / scale if scale > 0 else difference
