"""Initial weights drawn with jax.random, and canonical weight names <-> the Flax variable tree.

Flax keeps a dense kernel as (in, out), a conv kernel as (kh, kw, in, out) and flattens NHWC in (H, W, C) order, so
no tensor is transposed or permuted. Only names differ: BatchNorm's offset is Flax's `bias`, its running variance
`var`, and running statistics live in the `batch_stats` collection, not in `params`.
"""

from typing import Any, Callable

import numpy as np

from backends.jax.framework import jax, jnp
from experiments.catalog.initializers import Distribution
from experiments.spec.plan import ParameterInfo, fans

_LOCATION = {  # canonical parameter -> (Flax collection, Flax variable name)
    "kernel": ("params", "kernel"),
    "bias": ("params", "bias"),
    "scale": ("params", "scale"),
    "offset": ("params", "bias"),
    "mean": ("batch_stats", "mean"),
    "variance": ("batch_stats", "var"),
    "alpha": ("params", "alpha"),  # prelu (ActivationLayer)
}


def draw(distribution: Distribution, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """One draw from a catalog distribution, computed in dtype (truncated_normal: jax.random.truncated_normal on
    [-2, 2], then scaled and shifted)."""
    a, b = distribution.a, distribution.b
    if distribution.kind == "constant":
        return jnp.full(shape, a, dtype)
    if distribution.kind == "uniform":
        return jax.random.uniform(key, shape, dtype, minval=a, maxval=b)
    if distribution.kind == "normal":
        return jax.random.normal(key, shape, dtype) * b + a
    if distribution.kind == "truncated_normal":
        return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * b + a
    raise ValueError(f"unsupported initializer distribution {distribution.kind!r}")


def initializer(entry, kernel_shape: tuple[int, ...], shape: tuple[int, ...]) -> Callable:
    """A Flax init function drawing `shape` from entry's distribution at the fans of kernel_shape (a bias uses its
    layer's kernel's); the shape Flax asks for is checked against the plan's."""
    distribution = entry.distribution(*fans(kernel_shape))

    def init(key: jax.Array, requested: tuple[int, ...], dtype: Any) -> jax.Array:
        if tuple(requested) != tuple(shape):
            raise ValueError(f"Flax asked for a parameter of shape {tuple(requested)}; the plan says {tuple(shape)}")
        return draw(distribution, key, tuple(shape), dtype)

    return init


def location(name: str) -> tuple[str, str, str]:
    """(collection, module, variable) of a canonical name such as `batch_norm_0/variance`."""
    module, parameter = name.split("/")
    collection, variable = _LOCATION[parameter]
    return collection, module, variable


def check_layout(variables: dict[str, Any], info: dict[str, ParameterInfo], dtype: np.dtype) -> None:
    """Raise unless Flax created exactly the plan's parameters, with canonical shapes and dtype."""
    found = {
        (collection, module, variable)
        for collection, modules in variables.items()
        for module, leaves in modules.items()
        for variable in leaves
    }
    expected = {location(name) for name in info}
    if found != expected:
        raise ValueError(f"Flax variables {sorted(found - expected)} unexpected, {sorted(expected - found)} missing")
    for name, parameter in info.items():
        collection, module, variable = location(name)
        value = variables[collection][module][variable]
        if tuple(value.shape) != parameter.shape or value.dtype != dtype:
            raise ValueError(f"{name}: Flax holds {value.dtype}{tuple(value.shape)}, expected {dtype}{parameter.shape}")
        if (collection == "params") != parameter.trainable:
            raise ValueError(f"{name}: trainable={parameter.trainable} but Flax keeps it in {collection!r}")


def to_canonical(variables: dict[str, Any], names) -> dict[str, np.ndarray]:
    """Copies of the named parameters and buffers as NumPy arrays, by canonical name, in the order of `names`."""
    out = {}
    for name in names:
        collection, module, variable = location(name)
        out[name] = np.array(variables[collection][module][variable], copy=True)
    return out


def from_canonical(weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """The Flax variable tree of canonical weights (already checked and in spec.dtype), as NumPy copies."""
    variables: dict[str, Any] = {}
    for name, value in weights.items():
        collection, module, variable = location(name)
        variables.setdefault(collection, {}).setdefault(module, {})[variable] = np.array(value, copy=True)
    return variables


_NAMED = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal")


def _native_factory(entry, ndim: int) -> Callable | None:
    """jax.nn.initializers' initializer for a catalog entry, with the entry's stated values and JAX's defaults for
    the rest (in_axis -2, out_axis -1, truncation at +-2), or None where it has none: a non-zero mean (normal,
    truncated_normal), a uniform not starting at 0 (jax's is U[0, scale)), torch_default, and fan-based entries on
    a bias (JAX computes fans from the array's own shape, which a 1-d bias does not have)."""
    inits, name = jax.nn.initializers, entry.name
    if name == "zeros":
        return inits.zeros
    if name == "constant":
        return inits.constant(entry.value)
    if name in ("normal", "truncated_normal"):
        return getattr(inits, name)(entry.stddev) if entry.mean == 0.0 else None
    if name == "uniform":
        return inits.uniform(entry.maxval) if entry.minval == 0.0 else None
    if ndim < 2:
        return None
    if name == "variance_scaling":
        return inits.variance_scaling(entry.scale, entry.mode, entry.distribution_kind)
    return getattr(inits, name)() if name in _NAMED else None


def has_native_initializers(plan) -> bool:
    """Whether every kernel and bias initialiser of the plan has a jax.nn.initializers built-in."""
    return all(_native_factory(init, ndim) is not None
               for layer in plan if hasattr(layer, "kernel_init")
               for init, ndim in ((layer.kernel_init, 2), (layer.bias_init, 1)))


def native_initializer(entry, shape: tuple[int, ...], dtype: Any) -> Callable:
    """The jax.nn.initializers function for `entry` (has_native_initializers checked), drawing in dtype."""
    factory = _native_factory(entry, len(shape))

    def init(key: jax.Array, requested: tuple[int, ...], _dtype: Any) -> jax.Array:
        if tuple(requested) != tuple(shape):
            raise ValueError(f"Flax asked for a parameter of shape {tuple(requested)}; the plan says {tuple(shape)}")
        return factory(key, tuple(shape), dtype)

    return init
