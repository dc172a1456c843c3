"""The layer plan as a Flax linen Module (NHWC), every layer argument explicit, catalog initialisers."""

from typing import Any

from backends.jax.activations import ActivationLayer
from backends.jax.framework import jax, jnp, lax, nn
from backends.jax.weights import initializer, native_initializer
from experiments.spec import plan as P

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
        if isinstance(layer, P.MaxPool2D):  # lax SAME pads at the end as the plan does, with -inf
            window = (layer.size, layer.size)
            return nn.max_pool(x, window, strides=(layer.stride, layer.stride), padding=layer.padding.upper())
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
