"""Deterministic splits (validation, fixed test parts) and the float/one-hot model inputs."""

import numbers

import numpy as np

from experiments.errors import DataError, SpecError


def split_train_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out round(fraction * N) samples for validation, chosen from seed alone.

    perm = np.random.default_rng([seed, 1]).permutation(N); validation = perm[:round(fraction * N)]
    (Python's round: halves go to even), training = the rest. Both parts keep the samples'
    original relative order, so fraction 0 returns the training set unchanged and empty
    validation arrays with the right trailing shapes.

    Returns:
        (x_train, y_train, x_val, y_val).
    """
    n = len(x)
    if len(y) != n:
        raise DataError(f"split: {n} images but {len(y)} labels")
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 <= fraction < 1.0:
        raise SpecError(f"validation fraction must be a number in [0, 1); got {fraction!r}")
    n_val = validation_count(n, fraction)
    if n_val >= n and n > 0:
        raise SpecError(f"validation fraction {fraction} of {n} samples leaves no training samples")
    perm = np.random.default_rng([seed, 1]).permutation(n)
    val = np.sort(perm[:n_val])
    train = np.sort(perm[n_val:])
    return x[train], y[train], x[val], y[val]


def validation_count(n: int, fraction: float) -> int:
    """round(fraction * n): how many of n training samples split_train_validation holds out."""
    return int(round(fraction * n))


def stratified_test_split(
    y: np.ndarray, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), both sorted: for class 0, 1, ... in turn, the test part takes
    the first per_class of rng.permutation(indices of that class)."""
    test = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < per_class:
            raise DataError(f"class {label} has {len(members)} samples, fewer than the {per_class} the test part needs")
        test.append(rng.permutation(members)[:per_class])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


def to_model_inputs(
    x_uint8: np.ndarray, y: np.ndarray, num_classes: int, dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The backends' inputs: x / 255 as (N, 28, 28, 1) and one-hot y as (N, num_classes), both dtype.

    x is converted to dtype first and divided by 255 in that dtype (x.astype(dtype) / dtype(255)),
    so float32 inputs are the correctly rounded float32 quotients.
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise SpecError(f"model input dtype must be a float type; got {dtype}")
    if x_uint8.dtype != np.uint8 or x_uint8.ndim != 3:
        raise DataError(f"model inputs: images are {x_uint8.dtype} {x_uint8.shape}, expected uint8 (N, H, W)")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x_uint8) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"model inputs: labels are {y.dtype} {y.shape}, expected {len(x_uint8)} integer labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"model inputs: labels must be in 0..{num_classes - 1}; found {y.min()}..{y.max()}")
    x = (x_uint8.astype(dtype) / dtype.type(255))[..., np.newaxis]  # (N, H, W, 1)
    one_hot = np.eye(num_classes, dtype=dtype)[y]  # (N, C)
    return x, one_hot
