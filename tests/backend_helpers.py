"""Scaffolding shared by the per-backend test files: the error measure and random canonical weights."""

import numpy as np

from experiments.catalog.initializers import Distribution
from experiments.spec import parameter_info
from experiments.spec.plan import fans
from experiments.verify.stats import compare


def error(actual, reference, group_scale: float = 0.0) -> float:
    """The ladder's normwise relative error max|actual - reference| / max|reference| (in float64),
    via experiments.verify.stats.compare: a reference that is negligible against its group's scale
    (at most stats.NEGLIGIBLE of it; group_scale 0 means no group) is measured against that scale.
    No floor of 1: a small quantity is checked relative to its own size. An exactly-zero reference
    without a group has no scale at all, so only an exactly-zero actual matches it."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, f"shape {actual.shape} vs {reference.shape}"
    if group_scale == 0.0 and not np.any(reference):  # exactly zero and no group: only exactly zero matches
        return 0.0 if not np.any(actual - reference) else float("inf")
    return compare(actual, reference, group_scale).normwise_rel


def group_scale(arrays) -> float:
    """The scale of a group of reference arrays (e.g. every weight after one step): the largest |value|."""
    return max((float(np.max(np.abs(np.asarray(a, np.float64)), initial=0.0)) for a in arrays), default=0.0)


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


THREE_STEPS_FLOAT64 = 1e-11
"""Three float64 steps against the oracle (normwise relative, per weight, near-zero ones against all
weights): measured at most 1.3e-12 (jax, sigmoid-ce-smoothing, step 3; torch and the other cases
6e-13 or less); 1e-11 keeps an 8x margin and is still 10x inside the ladder's float64 step tolerance."""

THREE_STEP_BATCHES = [np.arange(0, 8), np.arange(4, 12), np.array([11, 0, 5, 3, 2, 9, 8, 1])]


def assert_steps_match_oracle(trainer, oracle, plan, weights, x, y, rates, case: str) -> None:
    """Three single-batch steps from the same weights: loss, correct counts and every weight and
    running statistic after every step equal the oracle's to THREE_STEPS_FLOAT64, and the step moved something."""
    trainer.set_weights(weights)
    oracle.set_weights(weights)
    trainer.load_training_data(x, y)
    oracle.load_training_data(x, y)
    for step, (batch, rate) in enumerate(zip(THREE_STEP_BATCHES, rates), start=1):
        stats = trainer.train_epoch([batch], np.array([rate]))
        expected = oracle.train_epoch([batch], np.array([rate]))
        assert error(stats.loss, expected.loss) <= THREE_STEPS_FLOAT64, f"{case} step {step}: loss"
        assert np.array_equal(stats.correct, expected.correct), f"{case} step {step}: correct"
        got, want = trainer.get_weights(), oracle.get_weights()
        scale = group_scale(want.values())
        for name in want:
            assert error(got[name], want[name], scale) <= THREE_STEPS_FLOAT64, f"{case} step {step}: {name} off by {error(got[name], want[name], scale):.2e}"
        moved = max(error(got[name], weights[name]) for name in want if parameter_info(plan)[name].trainable)
        assert moved > 1e-6, "the step changed nothing"
