"""Canonical weights of the Keras model: the seeded initialisers it is built with, and its variables by canonical name."""

import numpy as np

from backends.keras.framework import exact, keras
from experiments.catalog.initializers import Distribution
from experiments.spec import plan as P

# Streams derived from spec.seed, one per (layer index, purpose).
KERNEL_STREAM, BIAS_STREAM, DROPOUT_STREAM, RRELU_STREAM = 0, 1, 2, 3

# Keras' BatchNormalization weight names -> the suite's canonical names.
BATCH_NORM_NAMES = {"gamma": "scale", "beta": "offset", "moving_mean": "mean", "moving_variance": "variance"}


def derived_seed(seed: int, layer_index: int, stream: int) -> int:
    """A 31-bit seed for one random stream (a kernel, a bias, a dropout mask) derived from spec.seed."""
    return int(np.random.SeedSequence([seed, layer_index, stream]).generate_state(1)[0] & 0x7FFFFFFF)


def initializer(distribution: Distribution, seed: int) -> keras.initializers.Initializer:
    """The Keras initialiser drawing from a catalog distribution.

    Keras' TruncatedNormal (TF: stateless_truncated_normal) is the catalog's truncated_normal. Constant values and
    uniform bounds go in as float64 scalars (framework.exact), else a float64 variable gets float32-rounded ones.
    """
    kind, a, b = distribution.kind, distribution.a, distribution.b
    if kind == "constant":
        return keras.initializers.Constant(value=exact(a))
    if kind == "uniform":
        return keras.initializers.RandomUniform(minval=exact(a), maxval=exact(b), seed=seed)
    if kind == "normal":
        return keras.initializers.RandomNormal(mean=a, stddev=b, seed=seed)
    if kind == "truncated_normal":
        return keras.initializers.TruncatedNormal(mean=a, stddev=b, seed=seed)
    raise KeyError(f"the Keras backend has no initializer distribution {kind!r}")


def layer_initializers(layer: P.Dense | P.Conv2D, kernel_shape: tuple[int, ...], seed: int, index: int):
    """(kernel, bias) initialisers of a dense or conv layer; the bias uses the kernel's fans."""
    fan_in, fan_out = P.fans(kernel_shape)
    kernel = initializer(layer.kernel_init.distribution(fan_in, fan_out), derived_seed(seed, index, KERNEL_STREAM))
    bias = initializer(layer.bias_init.distribution(fan_in, fan_out), derived_seed(seed, index, BIAS_STREAM))
    return kernel, bias


def canonical_variables(plan: tuple[P.Layer, ...], model: keras.Model) -> dict[str, keras.Variable]:
    """Canonical name -> Keras variable. Keras layouts are already canonical: (in, out), (kh, kw, in, out), prelu (1,) or (C,)."""
    variables = {}
    for layer in plan:
        built = model.get_layer(layer.name)
        if isinstance(layer, (P.Dense, P.Conv2D)):
            variables[f"{layer.name}/kernel"] = built.kernel
            variables[f"{layer.name}/bias"] = built.bias
        elif isinstance(layer, P.Activation) and layer.activation.has_parameters:  # prelu
            variables[f"{layer.name}/alpha"] = built.alpha
        elif isinstance(layer, P.BatchNormalization):
            for keras_name, name in BATCH_NORM_NAMES.items():
                variables[f"{layer.name}/{name}"] = getattr(built, keras_name)
    shapes = {name: tuple(v.shape) for name, v in variables.items()}
    expected = {name: p.shape for name, p in P.parameter_info(plan).items()}
    if shapes != expected:
        raise AssertionError(f"Keras variables {shapes} differ from the plan's parameters {expected}")
    return variables
