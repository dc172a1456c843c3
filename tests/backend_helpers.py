"""Scaffolding shared by the per-backend test files: the error measure and random canonical weights."""

import numpy as np

from experiments.catalog.initializers import Distribution
from experiments.spec import parameter_info
from experiments.spec.plan import fans


def error(actual, reference) -> float:
    """max|actual - reference| / max(max|reference|, 1), in float64."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, f"shape {actual.shape} vs {reference.shape}"
    return float(np.max(np.abs(actual - reference), initial=0.0) / max(np.max(np.abs(reference), initial=0.0), 1.0))


def random_weights(plan, dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Canonical weights of moderate scale with non-trivial batch-norm statistics."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, info in parameter_info(plan).items():
        kind = name.split("/")[1]
        if kind == "kernel":
            value = rng.uniform(-1.0, 1.0, info.shape) * np.sqrt(3.0 / fans(info.shape)[0])
        elif kind in ("scale", "variance"):
            value = rng.uniform(0.5, 1.5, info.shape)
        elif kind == "alpha":  # prelu: slopes of both signs
            value = rng.uniform(-0.3, 0.6, info.shape)
        else:  # bias, offset, mean
            value = rng.normal(0.0, 0.1, info.shape)
        weights[name] = value.astype(dtype)
    return weights


def check_sample(w: np.ndarray, d: Distribution, where: str) -> None:
    """w looks like a draw from d: support, and sample moments within ~6 standard errors."""
    if d.kind == "constant":
        assert np.all(w == d.a), where
        return
    if d.kind == "uniform":
        assert d.a <= w.min() and w.max() < d.b, where
        mean, std = (d.a + d.b) / 2, (d.b - d.a) / np.sqrt(12.0)
    else:
        mean, std = d.a, d.b * (0.87962566103423978 if d.kind == "truncated_normal" else 1.0)
        if d.kind == "truncated_normal":
            assert np.all(np.abs(w - d.a) <= 2 * d.b * (1 + 1e-6)), where
    if w.size >= 256:
        assert abs(w.mean() - mean) < 6 * std / np.sqrt(w.size), where
        assert abs(w.std() / std - 1) < 0.15, where
