"""Canonical weights are the NumPy backend's own format: a dict of arrays by canonical name, drawn once for every
backend by experiments.spec.weights and cast to the spec's dtype here."""

import numpy as np

from experiments.spec import plan as P
from experiments.spec.weights import initial_weights as canonical_initial_weights


def initial_weights(plan: tuple[P.Layer, ...], seed: int, dtype: np.dtype) -> dict[str, np.ndarray]:
    """The suite's canonical initial weights for (plan, seed), in dtype."""
    return {name: value.astype(dtype) for name, value in canonical_initial_weights(plan, seed).items()}


def layer_params(layer: P.Layer, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The layer's parameters keyed by their short names (kernel, bias, scale, ...)."""
    prefix = layer.name + "/"
    return {name[len(prefix):]: value for name, value in weights.items() if name.startswith(prefix)}
