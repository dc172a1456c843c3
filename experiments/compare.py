"""Comparing arrays between backends: the one error measure the suite's tolerances bound."""

import numpy as np

def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max|actual - reference| / max|reference|: a normwise relative error that stays finite at zeros.

    Against an all-zero reference it is 0 when actual is all zero too and infinite otherwise: a relative error is
    never an absolute one in disguise (experiments.verify.stats compares near-zero references against their group's
    scale instead).
    """
    actual = np.asarray(actual, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if actual.shape != reference.shape:
        raise ValueError(f"shape mismatch: {actual.shape} vs {reference.shape}")
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    difference = float(np.max(np.abs(actual - reference))) if reference.size else 0.0
    if scale > 0:
        return difference / scale
    return 0.0 if difference == 0 else float("inf")
