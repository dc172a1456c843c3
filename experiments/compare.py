"""Comparing arrays between backends: the one error measure the suite's tolerances bound."""

import numpy as np

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
