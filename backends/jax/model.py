"""The layer plan as a Flax linen Module (NHWC), every layer argument explicit, catalog initialisers."""

from typing import Any

from backends.jax.activations import ActivationLayer
from backends.jax.framework import jax, jnp, lax, nn
from backends.jax.weights import initializer, native_initializer
from experiments.spec import plan as P
from experiments.spec.plan import same_padding

PRECISION = lax.Precision.HIGHEST
"""Full-precision matmuls and convolutions (no TF32/bf16 passes on any device)."""


class PlanModel(nn.Module):
    """The plan's layers in order; returns the logits. Submodules are named after the plan's layers.

    Flax defaults that differ from the suite are all overridden: Conv padding (Flax: SAME), max_pool strides
    (Flax: 1), BatchNorm momentum/epsilon, its one-pass variance (use_fast_variance; force_float32_reductions is
    pinned off too, though it leaves float64 alone), param_dtype (Flax: float32 even under x64), PReLU
    (ActivationLayer). In training,
    Dropout and rrelu draw from the "dropout" and "rrelu" rng collections unless `noise` ({plan layer name: array
    of the layer's input shape}, every noisy layer) gives their multipliers and slopes. With outputs=True the call
    returns (logits, {layer name: output}).

    native (implementation "native"; empty: the catalog everywhere): the components built with Flax's and jax.nn's
    own defaults for whatever the spec does not state: "batch_norm" (nn.BatchNorm with its default one-pass variance), "dropout" (nn.Dropout), "pooling" (nn.max_pool), "initializer" (jax.nn.initializers,
    weights.native_initializer) and "activation:<name>" (ActivationLayer's native form).
    """

    plan: tuple
    dtype: Any
    native: frozenset = frozenset()

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
        injected = jnp.asarray(noise[layer.name], x.dtype) if train and noise is not None and layer.name in noise else None
        if isinstance(layer, P.Dense):
            kernel = (layer.input_shape[-1], layer.units)
            return nn.Dense(
                features=layer.units, use_bias=True, dtype=self.dtype, param_dtype=self.dtype, precision=PRECISION,
                kernel_init=self._init(layer.kernel_init, kernel, kernel),
                bias_init=self._init(layer.bias_init, kernel, (layer.units,)), name=layer.name,
            )(x)
        if isinstance(layer, P.Conv2D):
            k = layer.kernel_size
            kernel = (k, k, layer.input_shape[-1], layer.filters)
            return nn.Conv(
                features=layer.filters, kernel_size=(k, k), strides=(1, 1), padding=layer.padding.upper(),
                input_dilation=(1, 1), kernel_dilation=(1, 1), feature_group_count=1, use_bias=True, mask=None,
                dtype=self.dtype, param_dtype=self.dtype, precision=PRECISION,
                kernel_init=self._init(layer.kernel_init, kernel, kernel),
                bias_init=self._init(layer.bias_init, kernel, (layer.filters,)), name=layer.name,
            )(x)
        if isinstance(layer, P.Activation):
            native = f"activation:{layer.activation.name}" in self.native
            return ActivationLayer(entry=layer.activation, dtype=self.dtype, native=native, name=layer.name)(
                x, train, injected)
        if isinstance(layer, P.BatchNormalization) and "batch_norm" in self.native:  # Flax's defaults for the rest
            return nn.BatchNorm(
                use_running_average=not train, momentum=layer.momentum, epsilon=layer.epsilon,
                dtype=self.dtype, param_dtype=self.dtype, name=layer.name,
            )(x)
        if isinstance(layer, P.BatchNormalization):
            return nn.BatchNorm(
                use_running_average=not train, axis=-1, momentum=layer.momentum, epsilon=layer.epsilon,
                dtype=self.dtype, param_dtype=self.dtype, use_bias=True, use_scale=True,
                bias_init=jax.nn.initializers.zeros, scale_init=jax.nn.initializers.ones, axis_name=None,
                use_fast_variance=False, force_float32_reductions=False, name=layer.name,
            )(x)
        if isinstance(layer, P.MaxPool2D):
            if "pooling" in self.native:  # lax SAME pads as the plan does (same_padding), with -inf
                window = (layer.size, layer.size)
                return nn.max_pool(x, window, strides=(layer.stride, layer.stride), padding=layer.padding.upper())
            return max_pool(x, layer.size, layer.stride, layer.padding)
        if isinstance(layer, P.Dropout):
            if injected is not None:
                return x * injected
            if "dropout" in self.native:
                return nn.Dropout(rate=layer.rate, deterministic=not train, name=layer.name)(x)
            return nn.Dropout(
                rate=layer.rate, broadcast_dims=(), deterministic=not train, rng_collection="dropout", name=layer.name
            )(x)
        if isinstance(layer, P.Flatten):
            return x.reshape((x.shape[0], -1))  # row-major NHWC: the canonical (H, W, C) order
        raise ValueError(f"{layer.name}: unsupported layer type {type(layer).__name__}")

    def _init(self, entry, kernel_shape: tuple[int, ...], shape: tuple[int, ...]):
        if "initializer" in self.native:
            return native_initializer(entry, shape, self.dtype)
        return initializer(entry, kernel_shape, shape)


def max_pool(x: jax.Array, size: int, stride: int, padding: str) -> jax.Array:
    """The catalog's max pool of x (N, H, W, C): "same" pads by plan.same_padding with -inf, "valid" drops the
    remainder; the gradient goes to the first maximum of each window in row-major window order (the NumPy oracle's
    rule, and what reduce_window's select-and-scatter does on ties).

    size == stride (non-overlapping windows): the padded input reshaped to (N, Ho, k, Wo, k, C) and reduced over
    the two window axes (_window_max), which XLA:CPU fuses into plain loops. Measured side by side (jax 0.10.2, 2
    cores, batch 64): the seed CNN's three pools forward and backward 3.3x (float32) and 2.3x (float64) faster than
    reduce_window with its select-and-scatter gradient, a whole training step 1.6x and 1.35x. Other strides: Flax's
    nn.max_pool (lax.reduce_window), which pads and routes the gradient the same way (tests/test_jax_pool.py).
    """
    if size != stride:
        return nn.max_pool(x, (size, size), strides=(stride, stride), padding=padding.upper())
    n, h, w, c = x.shape
    if padding == "same":
        (top, bottom), (left, right) = same_padding(h, size, stride), same_padding(w, size, stride)
        if top or bottom or left or right:
            x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-jnp.inf)
    else:  # valid: the windows that fit
        x = x[:, : h // size * size, : w // size * size, :]
    out_h, out_w = x.shape[1] // size, x.shape[2] // size
    return _window_max(x.reshape(n, out_h, size, out_w, size, c))


def _first_max(windows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(each window's maximum (N, Ho, Wo, C), the row-major position of its first maximum) of windows
    (N, Ho, k, Wo, k, C), from one pass of comparisons over the k * k positions in row-major order: a later element
    takes over only when strictly greater (ties stay with the first), or when it is the first NaN (NaN propagates as
    in np.max and lax.max; a NaN window's gradient goes to position 0, as the oracle's argmax of an all-false
    equality mask sends it).

    The position is never found by comparing the windows with a separately computed maximum: XLA:CPU recomputes a
    fused producer (batch norm, activation) in each consumer fusion, and the copies can differ in the last bit, so
    `windows == max` can hold nowhere in a window (measured: ~20% of the seed CNN's second pool's windows in float64,
    whose gradient then went astray; lax.optimization_barrier does not stop it on CPU; pinned by the seed-cnn-whole
    case of tests/test_backend_jax.py)."""
    k = windows.shape[2]
    best = windows[:, :, 0, :, 0, :]
    first = jnp.zeros(best.shape, jnp.int32)
    for position in range(1, k * k):
        value = windows[:, :, position // k, :, position % k, :]
        take = (value > best) | (jnp.isnan(value) & ~jnp.isnan(best))
        best, first = jnp.where(take, value, best), jnp.where(take, position, first)
    return best, jnp.where(jnp.isnan(best), 0, first)


@jax.custom_jvp
def _window_max(windows: jax.Array) -> jax.Array:
    """The maximum over axes 2 and 4 of (N, Ho, k, Wo, k, C), differentiated as the first maximum's element alone
    (jnp.max's own derivative splits it equally between tied elements). A JVP rule, so forward mode works too;
    reverse mode is its transpose: the cotangent selected into the first maximum's place, zeros elsewhere."""
    return jnp.max(windows, axis=(2, 4))


@_window_max.defjvp
def _window_max_jvp(primals, tangents):
    (windows,), (tangent,) = primals, tangents
    y, first = _first_max(windows)
    k = windows.shape[2]
    shape = (1, 1, k, 1, k, 1)
    position = lax.broadcasted_iota(jnp.int32, shape, 2) * k + lax.broadcasted_iota(jnp.int32, shape, 4)
    chosen = position == first[:, :, None, :, None, :]
    return y, jnp.sum(jnp.where(chosen, tangent, jnp.zeros((), tangent.dtype)), axis=(2, 4))
