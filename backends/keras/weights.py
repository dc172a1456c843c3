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


# Native mode: the spec's initializer entry as Keras names it (None: no Keras built-in of that name).
NATIVE_INITIALIZERS = {
    "zeros": "Zeros", "constant": "Constant", "normal": "RandomNormal", "truncated_normal": "TruncatedNormal",
    "uniform": "RandomUniform", "variance_scaling": "VarianceScaling", "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal", "he_uniform": "HeUniform", "he_normal": "HeNormal", "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
}
KERAS_DISTRIBUTIONS = {"uniform": "uniform", "normal": "untruncated_normal", "truncated_normal": "truncated_normal"}


def native_initializer(entry, seed: int) -> keras.initializers.Initializer:
    """keras.initializers' own class for a catalog initializer entry, with the entry's values as Python floats
    (Keras' Constant and bounds round through float32 on a float64 variable: native) and the derived seed. Keras
    computes the fans from the shape it is given: a bias initializer sees only (units,), not the kernel's fans."""
    name = entry.name
    cls = getattr(keras.initializers, NATIVE_INITIALIZERS[name])
    if name == "zeros":
        return cls()
    if name == "constant":
        return cls(value=entry.value)
    if name in ("normal", "truncated_normal"):
        return cls(mean=entry.mean, stddev=entry.stddev, seed=seed)
    if name == "uniform":
        return cls(minval=entry.minval, maxval=entry.maxval, seed=seed)
    if name == "variance_scaling":
        return cls(scale=entry.scale, mode=entry.mode, distribution=KERAS_DISTRIBUTIONS[entry.distribution_kind], seed=seed)
    return cls(seed=seed)


def layer_initializers(layer: P.Dense | P.Conv2D, kernel_shape: tuple[int, ...], seed: int, index: int, native=None):
    """(kernel, bias) initialisers of a dense or conv layer; the bias uses the kernel's fans. native (native mode): the
    trainer's `native` (backends.base.Trainer.native); each entry Keras has a class for is built by it."""
    fan_in, fan_out = P.fans(kernel_shape)
    initializers = []
    for entry, stream in ((layer.kernel_init, KERNEL_STREAM), (layer.bias_init, BIAS_STREAM)):
        stream_seed = derived_seed(seed, index, stream)
        if native is not None and native("initializer", entry.name, available=entry.name in NATIVE_INITIALIZERS):
            initializers.append(native_initializer(entry, stream_seed))
        else:
            initializers.append(initializer(entry.distribution(fan_in, fan_out), stream_seed))
    return tuple(initializers)


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
    for name, shape in shapes.items():  # native prelu: keras.layers.PReLU's alpha keeps its shared axes as 1s
        if name.endswith("/alpha") and name in expected and _squeezed(shape, expected[name]):
            shapes[name] = expected[name]
    if shapes != expected:
        raise AssertionError(f"Keras variables {shapes} differ from the plan's parameters {expected}")
    return variables


def _squeezed(shape: tuple[int, ...], canonical: tuple[int, ...]) -> bool:
    """Whether shape is canonical (C,) or (1,) with leading axes of 1 (Keras' PReLU alpha (1, 1, C))."""
    return len(shape) >= len(canonical) and tuple(shape[len(shape) - len(canonical):]) == canonical \
        and all(size == 1 for size in shape[: len(shape) - len(canonical)])
