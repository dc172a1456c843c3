"""Build a channels-last Keras model from the layer plan, every argument explicit, and map its variables to canonical names."""

import numpy as np

from backends.keras.activations import activation_layer
from backends.keras.framework import exact, keras, tf
from experiments.catalog.initializers import Distribution
from experiments.spec import plan as P

# Streams derived from spec.seed, one per (layer index, purpose).
KERNEL_STREAM, BIAS_STREAM, DROPOUT_STREAM, RRELU_STREAM = 0, 1, 2, 3

# Keras' BatchNormalization weight names -> the suite's canonical names.
BATCH_NORM_NAMES = {"gamma": "scale", "beta": "offset", "moving_mean": "mean", "moving_variance": "variance"}


def channel_sum(x):
    """Sum over every axis but the last, along the innermost axis of a (C, rest) view (see BatchNormalization)."""
    return tf.reduce_sum(tf.transpose(tf.reshape(x, [-1, x.shape[-1]])), axis=1)


def _accurate_bias_add(outputs, bias):
    """outputs + bias (channels last) whose bias gradient is channel_sum(upstream).

    The gradient of Keras' broadcast add is TF's reduce_sum over (N, H, W), the sequential outer
    reduction: measured 9.1e-14 absolute on a conv bias whose true gradient is 0 (a batch norm
    re-centres its output) against ~5e-15 for torch, JAX and the oracle, and that noise, stepped by
    Adam, walked the bias 3.5e-8 away in 100 steps.
    """

    @tf.custom_gradient
    def add(x, b):
        def grad(upstream):
            return upstream, channel_sum(upstream)

        return x + b, grad

    return add(outputs, tf.convert_to_tensor(bias))  # a tensor, not the variable: custom_gradient sees no variable


class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D (channels last) with its bias added by _accurate_bias_add."""

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.kernel)
        return _accurate_bias_add(outputs, self.bias) if self.use_bias else outputs


class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization with the batch statistics reduced along the innermost axis.

    Keras' TF backend takes the moments with tf.nn.moments over axes (N, H, W) of a channels-last
    tensor; TF's CPU reduction over outer axes accumulates sequentially, and for seed-cnn's first
    layer (50,176 values per channel) the batch variance comes out 8.2e-5 relative off in float32
    and 1.0e-13 in float64 (measured against a float128 reference). Reducing a (C, N*H*W) view
    along its last axis gives 1.2e-6 and 2.3e-15. Same formula: mean, then the biased variance
    mean((x - mean)^2), two passes.
    """

    def _moments(self, inputs, mask):
        if mask is not None or len(self._reduction_axes) != len(inputs.shape) - 1:
            return super()._moments(inputs, mask)
        count = tf.cast(tf.size(inputs) // inputs.shape[-1], inputs.dtype)
        mean = channel_sum(inputs) / count
        return mean, channel_sum(tf.square(inputs - tf.stop_gradient(mean))) / count


def derived_seed(seed: int, layer_index: int, stream: int) -> int:
    """A 31-bit seed for one random stream (a kernel, a bias, a dropout mask) derived from spec.seed."""
    return int(np.random.SeedSequence([seed, layer_index, stream]).generate_state(1)[0] & 0x7FFFFFFF)


def initializer(distribution: Distribution, seed: int) -> keras.initializers.Initializer:
    """The Keras initialiser drawing from a catalog distribution.

    Keras' TruncatedNormal (TF: stateless_truncated_normal) re-draws values beyond 2 stddev
    and does not rescale, which is the catalog's truncated_normal. Constant values and uniform
    bounds are passed as float64 scalars (see framework.exact: Python floats would be rounded
    to float32 on their way into a float64 variable).
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


def _initializers(layer: P.Dense | P.Conv2D, kernel_shape: tuple[int, ...], seed: int, index: int):
    """(kernel, bias) initialisers of a dense or conv layer; the bias uses the kernel's fans."""
    fan_in, fan_out = P.fans(kernel_shape)
    kernel = initializer(layer.kernel_init.distribution(fan_in, fan_out), derived_seed(seed, index, KERNEL_STREAM))
    bias = initializer(layer.bias_init.distribution(fan_in, fan_out), derived_seed(seed, index, BIAS_STREAM))
    return kernel, bias


def keras_layer(layer: P.Layer, index: int, dtype: str, seed: int) -> keras.layers.Layer:
    """The Keras layer of one plan layer, named like it, in `dtype`."""
    if isinstance(layer, P.Dense):
        kernel, bias = _initializers(layer, (layer.input_shape[-1], layer.units), seed, index)
        return keras.layers.Dense(
            units=layer.units, activation=None, use_bias=True,
            kernel_initializer=kernel, bias_initializer=bias, name=layer.name, dtype=dtype,
        )
    if isinstance(layer, P.Conv2D):
        k = layer.kernel_size
        kernel, bias = _initializers(layer, (k, k, layer.input_shape[-1], layer.filters), seed, index)
        return Conv2D(
            filters=layer.filters, kernel_size=(k, k), strides=(1, 1), padding=layer.padding,
            data_format="channels_last", dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
            kernel_initializer=kernel, bias_initializer=bias, name=layer.name, dtype=dtype,
        )
    if isinstance(layer, P.Activation):
        return activation_layer(layer.activation, layer.name, dtype, derived_seed(seed, index, RRELU_STREAM))
    if isinstance(layer, P.BatchNormalization):
        # Keras BN is the suite's formula: r <- m r + (1 - m) batch, biased batch variance.
        return BatchNormalization(
            axis=-1, momentum=layer.momentum, epsilon=layer.epsilon, center=True, scale=True,
            beta_initializer=keras.initializers.Zeros(), gamma_initializer=keras.initializers.Ones(),
            moving_mean_initializer=keras.initializers.Zeros(), moving_variance_initializer=keras.initializers.Ones(),
            renorm=False, synchronized=False, name=layer.name, dtype=dtype,
        )
    if isinstance(layer, P.MaxPool2D):
        return keras.layers.MaxPooling2D(
            pool_size=(layer.size, layer.size), strides=(layer.stride, layer.stride), padding=layer.padding,
            data_format="channels_last", name=layer.name, dtype=dtype,
        )
    if isinstance(layer, P.Dropout):
        return keras.layers.Dropout(
            rate=layer.rate, noise_shape=None, seed=derived_seed(seed, index, DROPOUT_STREAM), name=layer.name, dtype=dtype
        )
    if isinstance(layer, P.Flatten):
        return keras.layers.Flatten(data_format="channels_last", name=layer.name, dtype=dtype)  # (H, W, C) order
    raise TypeError(f"the Keras backend cannot build layer {layer.name} ({type(layer).__name__})")


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
    info = P.parameter_info(plan)
    shapes = {name: tuple(v.shape) for name, v in variables.items()}
    expected = {name: p.shape for name, p in info.items()}
    if shapes != expected:
        raise AssertionError(f"Keras variables {shapes} differ from the plan's parameters {expected}")
    return variables


def build_model(plan: tuple[P.Layer, ...], dtype: str, seed: int) -> keras.Sequential:
    """The plan as a Sequential model taking (N, H, W, C) inputs in `dtype` and returning logits.

    Every layer gets dtype= explicitly; keras.config.set_floatx is never called (it is
    process-global). Each layer's output shape is checked against the plan.
    """
    layers = [keras_layer(layer, index, dtype, seed) for index, layer in enumerate(plan)]
    model = keras.Sequential([keras.Input(shape=plan[0].input_shape, dtype=dtype), *layers], name="mnist_parity")
    for layer, built in zip(plan, layers):
        if tuple(built.output.shape[1:]) != layer.output_shape:
            raise AssertionError(f"Keras layer {layer.name} outputs {built.output.shape[1:]}, the plan {layer.output_shape}")
    return model
