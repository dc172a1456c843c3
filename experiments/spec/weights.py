"""Canonical initial weights: one float64 draw of every parameter from the spec's initialisers, NumPy only.

Framework-neutral: `run --same-init` and the verify probes start every backend from this draw, and the NumPy oracle
draws its own initial weights with it. Names and layouts are the plan's canonical ones (experiments.spec.plan).
"""

import numpy as np

from experiments.spec import plan as P
from experiments.spec.plan import fans, parameter_info


def _draw(rng: np.random.Generator, distribution, shape) -> np.ndarray:
    kind, a, b = distribution.kind, distribution.a, distribution.b
    if kind == "constant":
        return np.full(shape, a)
    if kind == "uniform":
        return rng.uniform(a, b, shape)
    if kind == "normal":
        return rng.normal(a, b, shape)
    values = rng.normal(0.0, 1.0, shape)  # truncated normal by resampling outside +-2
    while np.any(bad := np.abs(values) > 2.0):
        values[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
    return a + b * values


def initial_weights(plan: tuple[P.Layer, ...], seed: int) -> dict[str, np.ndarray]:
    """Canonical float64 weights drawn from each layer's initialisers with np.random.default_rng(seed)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for layer in plan:
        if isinstance(layer, (P.Dense, P.Conv2D)):
            shape = parameter_info((layer,))[f"{layer.name}/kernel"].shape
            fan_in, fan_out = fans(shape)
            weights[f"{layer.name}/kernel"] = _draw(rng, layer.kernel_init.distribution(fan_in, fan_out), shape)
            weights[f"{layer.name}/bias"] = _draw(rng, layer.bias_init.distribution(fan_in, fan_out), shape[-1:])
        elif isinstance(layer, P.BatchNormalization):
            features = layer.input_shape[-1:]
            weights.update({f"{layer.name}/scale": np.ones(features), f"{layer.name}/offset": np.zeros(features),
                            f"{layer.name}/mean": np.zeros(features), f"{layer.name}/variance": np.ones(features)})
        elif isinstance(layer, P.Activation) and layer.activation.name == "prelu":
            shape = parameter_info((layer,))[f"{layer.name}/alpha"].shape
            weights[f"{layer.name}/alpha"] = np.full(shape, layer.activation.initial_value)
    return weights
