"""Eval-mode forward pass of a layer plan in NumPy float64: the oracle the backends are checked against."""

import numpy as np

from backends.numpy import layers
from experiments.spec import plan as P


def layer_params(layer: P.Layer, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The layer's parameters keyed by their short names (kernel, bias, scale, ...)."""
    prefix = layer.name + "/"
    return {name[len(prefix):]: value for name, value in weights.items() if name.startswith(prefix)}


def forward(plan: tuple[P.Layer, ...], weights: dict[str, np.ndarray], x: np.ndarray, *, outputs: bool = False, dtype="float64"):
    """Eval-mode logits (N, C) of x (N, 28, 28, 1), computed in dtype (float64: the oracle).

    With outputs=True also every layer's output, keyed by layer name.
    """
    h = np.asarray(x, dtype=dtype)
    weights = {k: np.asarray(v, dtype=dtype) for k, v in weights.items()}
    per_layer = {}
    for layer in plan:
        h, _ = layers.forward(layer, layer_params(layer, weights), h, train=False, noise={})
        per_layer[layer.name] = h
    return (h, per_layer) if outputs else h
