"""Training noise drawn by the runner: dropout masks and rrelu slopes, identical in every backend process.

The noise of a step is a pure function of (seed, step, plan, batch size, dtype): every backend
process evaluates it with NumPy and gets bit-identical arrays, without shipping hundreds of MB.
Masks are inverted-dropout multipliers (1 / (1 - rate) where kept, 0 where dropped); rrelu slopes
are U(lower, upper) per element. Shapes are (N, *layer.input_shape), channels-last.
"""

import numpy as np

from experiments.spec.plan import Dropout, noisy_layers

NOISE_STREAM = 3


def noise_generator(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, NOISE_STREAM])


def draw_noise(plan: tuple, rng: np.random.Generator, batch: int, dtype: str) -> dict[str, np.ndarray]:
    """One step's noise for every noisy layer of the plan, drawn in plan order."""
    noise = {}
    for layer in noisy_layers(plan):
        if isinstance(layer, Dropout):
            keep = rng.random((batch, *layer.input_shape)) >= layer.rate
            noise[layer.name] = (keep / (1.0 - layer.rate)).astype(dtype)
        else:  # rrelu
            entry = layer.activation
            noise[layer.name] = rng.uniform(entry.lower, entry.upper, (batch, *layer.input_shape)).astype(dtype)
    return noise
