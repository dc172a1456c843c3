"""The layer plan as a Flax linen Module (NHWC), every layer argument explicit, catalog initialisers."""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE
from experiments.catalog.initializers import Distribution
from experiments.spec import plan as P
from experiments.spec.plan import fans

PRECISION = lax.Precision.HIGHEST
"""Full-precision matmuls and convolutions (no TF32/bf16 passes on any device)."""


def draw(distribution: Distribution, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """One draw from a catalog distribution, computed in dtype.

    truncated_normal is jax.random.truncated_normal on [-2, 2] scaled by b and shifted by a,
    i.e. cut at a +- 2b and not rescaled (the catalog's convention, same as Keras and jax.nn).
    """
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
    """A Flax init function drawing `shape` from entry's distribution at the fans of kernel_shape.

    The bias uses the fans of its own layer's kernel (the suite's convention); the shape
    Flax asks for is checked against the plan's canonical shape.
    """
    distribution = entry.distribution(*fans(kernel_shape))

    def init(key: jax.Array, requested: tuple[int, ...], dtype: Any) -> jax.Array:
        if tuple(requested) != tuple(shape):
            raise ValueError(f"Flax asked for a parameter of shape {tuple(requested)}; the plan says {tuple(shape)}")
        return draw(distribution, key, tuple(shape), dtype)

    return init


def leaky_relu(x: jax.Array, negative_slope: Any) -> jax.Array:
    """x if x > 0 else slope * x: the derivative at 0 is the slope (torch, TF); jax.nn.leaky_relu gives 1 there.

    The slope is a Python float (leaky_relu, rrelu in eval mode) or an array in x's dtype
    (prelu's alpha, rrelu's per-element training slopes); d/dslope = x where x <= 0.
    """
    return jnp.where(x > 0, x, jnp.asarray(negative_slope, x.dtype) * x)


def maxout(x: jax.Array, pieces: int) -> jax.Array:
    """(..., F) -> (..., F / pieces): the max of each group of `pieces` consecutive features.

    argmax + take_along_axis, so the gradient goes to the FIRST maximum of a group (the
    catalog); jnp.max would split it equally among tied maxima.
    """
    groups = x.reshape(*x.shape[:-1], x.shape[-1] // pieces, pieces)  # (..., F / pieces, pieces)
    first = jnp.argmax(groups, axis=-1, keepdims=True)
    return jnp.take_along_axis(groups, first, axis=-1)[..., 0]


def softplus(x: jax.Array, beta: float) -> jax.Array:
    """logaddexp(beta x, 0) / beta (jax.nn.softplus has no beta); derivative sigmoid(beta x)."""
    return jnp.logaddexp(beta * x, 0.0) / beta


def step(x: jax.Array) -> jax.Array:
    """1 if x > 0 else 0 in x's dtype (forward only: its derivative is 0)."""
    return jnp.where(x > 0, jnp.ones((), x.dtype), jnp.zeros((), x.dtype))


def activation_fn(entry) -> Callable[[jax.Array], jax.Array]:
    """The parameterless, deterministic activation of a catalog entry, every argument explicit.

    jax.nn functions are used where their values AND derivatives are the catalog's: relu
    (0 at 0), elu (alpha at 0: the x <= 0 branch), hard_sigmoid (relu6's custom JVP gives 0 at
    x = -3 and x = 3), silu, sigmoid; gelu gets `approximate` from the spec (jax.nn.gelu
    defaults to the tanh form); selu is scale * elu(x, alpha) with the catalog's constants
    (what jax.nn.selu computes). leaky_relu, softplus(beta), maxout and step are written here.
    """
    name = entry.name
    if name == "relu":
        return jax.nn.relu
    if name == "sigmoid":
        return jax.nn.sigmoid
    if name == "tanh":
        return jnp.tanh
    if name == "leaky_relu":
        return functools.partial(leaky_relu, negative_slope=entry.negative_slope)
    if name == "elu":
        return functools.partial(jax.nn.elu, alpha=entry.alpha)
    if name == "selu":
        return lambda x: SELU_SCALE * jax.nn.elu(x, alpha=SELU_ALPHA)
    if name == "softplus":
        return functools.partial(softplus, beta=entry.beta)
    if name == "maxout":
        return functools.partial(maxout, pieces=entry.pieces)
    if name == "hard_sigmoid":
        return jax.nn.hard_sigmoid
    if name == "silu":
        return jax.nn.silu
    if name == "gelu":
        return functools.partial(jax.nn.gelu, approximate=entry.approximate == "tanh")
    if name == "step":
        return step
    if name == "sign":
        return jnp.sign
    if name == "linear":
        return lambda x: x
    raise ValueError(f"unsupported activation {name!r}")


def _constant(value: float) -> Callable:
    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        return jnp.full(shape, value, dtype)

    return init


class ActivationLayer(nn.Module):
    """One catalog activation as a Flax module (named after the plan layer); every dtype explicit.

    prelu: a trainable `alpha` of shape (1,) (shared) or (C,) (per channel of the last axis),
    initialised to initial_value in dtype (Flax's nn.PReLU is one float32 scalar starting at
    0.01). rrelu: in training a fresh slope U[lower, upper) per element from the "rrelu" rng
    stream (one key per step, like dropout), or the given `slopes` (x's shape) when injected;
    in eval the slope (lower + upper) / 2.
    """

    entry: Any
    dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, slopes: jax.Array | None = None) -> jax.Array:
        entry = self.entry
        if entry.name == "prelu":
            shape = (x.shape[-1],) if entry.per_channel else (1,)
            alpha = self.param("alpha", _constant(entry.initial_value), shape, self.dtype)
            return leaky_relu(x, alpha)
        if entry.name == "rrelu":
            if not train:
                return leaky_relu(x, entry.eval_slope)
            if slopes is not None:
                return leaky_relu(x, jnp.asarray(slopes, self.dtype))
            slopes = jax.random.uniform(self.make_rng("rrelu"), x.shape, self.dtype, entry.lower, entry.upper)
            return leaky_relu(x, slopes)
        return activation_fn(entry)(x)


class PlanModel(nn.Module):
    """The plan's layers in order; returns the logits. Submodules are named after the plan's layers.

    Flax defaults that differ from the suite are all overridden: Conv padding (Flax: SAME),
    max_pool strides (Flax: 1), BatchNorm momentum/epsilon and its float32 statistics
    (force_float32_reductions=False keeps running statistics in param_dtype), param_dtype
    (Flax: float32 even under x64), PReLU's shape, initial value and dtype (ActivationLayer).
    Random layers draw from the "dropout" and "rrelu" rng collections in training, unless
    `noise` ({plan layer name: array of the layer's input shape (N, ...)}, every noisy layer)
    gives them: Dropout then multiplies by its array (0 or 1 / (1 - rate)), rrelu uses its
    array as the slopes. With outputs=True the call returns (logits, {layer name: output}).
    """

    plan: tuple
    dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, noise: dict | None = None, outputs: bool = False):
        x = jnp.asarray(x, self.dtype)  # (N, H, W, C)
        per_layer = {}
        for layer in self.plan:
            x = self._layer(layer, x, train, noise)
            if x.shape[1:] != tuple(layer.output_shape):
                raise ValueError(f"{layer.name}: Flax produced shape {x.shape[1:]}, the plan says {layer.output_shape}")
            per_layer[layer.name] = x
        return (x, per_layer) if outputs else x

    def _layer(self, layer: P.Layer, x: jax.Array, train: bool, noise: dict | None = None) -> jax.Array:
        if isinstance(layer, P.Dense):
            kernel = (layer.input_shape[-1], layer.units)
            return nn.Dense(
                features=layer.units, use_bias=True, dtype=self.dtype, param_dtype=self.dtype, precision=PRECISION,
                kernel_init=initializer(layer.kernel_init, kernel, kernel),
                bias_init=initializer(layer.bias_init, kernel, (layer.units,)), name=layer.name,
            )(x)
        if isinstance(layer, P.Conv2D):
            k = layer.kernel_size
            kernel = (k, k, layer.input_shape[-1], layer.filters)
            return nn.Conv(
                features=layer.filters, kernel_size=(k, k), strides=(1, 1), padding=layer.padding.upper(),
                input_dilation=(1, 1), kernel_dilation=(1, 1), feature_group_count=1, use_bias=True, mask=None,
                dtype=self.dtype, param_dtype=self.dtype, precision=PRECISION,
                kernel_init=initializer(layer.kernel_init, kernel, kernel),
                bias_init=initializer(layer.bias_init, kernel, (layer.filters,)), name=layer.name,
            )(x)
        if isinstance(layer, P.Activation):
            slopes = None
            if train and noise is not None and layer.activation.name == "rrelu":
                slopes = _injected(noise, layer, x)
            return ActivationLayer(entry=layer.activation, dtype=self.dtype, name=layer.name)(x, train, slopes)
        if isinstance(layer, P.BatchNormalization):
            # Two-pass biased variance (x - mean)^2, as TF; running r <- m r + (1 - m) batch.
            return nn.BatchNorm(
                use_running_average=not train, axis=-1, momentum=layer.momentum, epsilon=layer.epsilon,
                dtype=self.dtype, param_dtype=self.dtype, use_bias=True, use_scale=True,
                bias_init=jax.nn.initializers.zeros, scale_init=jax.nn.initializers.ones, axis_name=None,
                use_fast_variance=False, force_float32_reductions=False, name=layer.name,
            )(x)
        if isinstance(layer, P.MaxPool2D):
            # lax SAME: out = ceil(n / s), the extra padding at the end, padded with -inf.
            window = (layer.size, layer.size)
            return nn.max_pool(x, window, strides=(layer.stride, layer.stride), padding=layer.padding.upper())
        if isinstance(layer, P.Dropout):
            if train and noise is not None:
                return x * _injected(noise, layer, x)  # inverted dropout with the given multipliers
            return nn.Dropout(
                rate=layer.rate, broadcast_dims=(), deterministic=not train, rng_collection="dropout", name=layer.name
            )(x)
        if isinstance(layer, P.Flatten):
            return x.reshape((x.shape[0], -1))  # row-major NHWC: the canonical (H, W, C) order
        raise ValueError(f"{layer.name}: unsupported layer type {type(layer).__name__}")


def _injected(noise: dict, layer: P.Layer, x: jax.Array) -> jax.Array:
    """The injected noise of one layer, checked against its input x, in x's dtype."""
    if layer.name not in noise:
        raise ValueError(f"noise has no entry for the noisy layer {layer.name!r}")
    value = jnp.asarray(noise[layer.name], x.dtype)
    if value.shape != x.shape:
        raise ValueError(f"{layer.name}: noise of shape {value.shape}, the layer's input is {x.shape}")
    return value
