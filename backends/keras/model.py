"""Build a channels-last Keras model from the layer plan, every argument explicit (its weights: backends.keras.weights)."""

from backends.keras.activations import activation_layer, has_native, native_activation_layer
from backends.keras.framework import keras, tf
from backends.keras.weights import DROPOUT_STREAM, RRELU_STREAM, derived_seed, layer_initializers
from experiments.spec import plan as P


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
    along its last axis gives 1.2e-6 and 2.3e-15 (same two-pass formula).
    """

    def _moments(self, inputs, mask):
        if mask is not None or len(self._reduction_axes) != len(inputs.shape) - 1:
            return super()._moments(inputs, mask)
        count = tf.cast(tf.size(inputs) // inputs.shape[-1], inputs.dtype)
        mean = channel_sum(inputs) / count
        return mean, channel_sum(tf.square(inputs - tf.stop_gradient(mean))) / count


def native_layer(layer: P.Layer, index: int, dtype: str, seed: int, native) -> keras.layers.Layer | None:
    """Native mode: Keras' own layer for a batch norm, pooling, dropout or activation plan layer whose component is
    native (native: backends.base.Trainer.native, which records what Keras has no built-in for), with the values the
    spec states and Keras' defaults for the rest; None: build the catalog's layer."""
    if isinstance(layer, P.BatchNormalization) and native("batch_norm"):
        return keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon, name=layer.name, dtype=dtype)
    if isinstance(layer, P.MaxPool2D) and native("pooling"):
        return keras.layers.MaxPooling2D(pool_size=layer.size, strides=layer.stride, padding=layer.padding,
                                         name=layer.name, dtype=dtype)
    if isinstance(layer, P.Dropout) and native("dropout"):
        return keras.layers.Dropout(rate=layer.rate, seed=derived_seed(seed, index, DROPOUT_STREAM), name=layer.name, dtype=dtype)
    if isinstance(layer, P.Activation) and native("activation", layer.activation.name, available=has_native(layer.activation)):
        return native_activation_layer(layer.activation, layer.name, dtype, 1 + len(layer.input_shape))
    return None


def keras_layer(layer: P.Layer, index: int, dtype: str, seed: int, native=None) -> keras.layers.Layer:
    """The Keras layer of one plan layer, named like it, in `dtype`; native: see native_layer."""
    if native is not None and (built := native_layer(layer, index, dtype, seed, native)) is not None:
        return built
    if isinstance(layer, P.Dense):
        kernel, bias = layer_initializers(layer, (layer.input_shape[-1], layer.units), seed, index, native)
        return keras.layers.Dense(
            units=layer.units, activation=None, use_bias=True,
            kernel_initializer=kernel, bias_initializer=bias, name=layer.name, dtype=dtype,
        )
    if isinstance(layer, P.Conv2D):
        k = layer.kernel_size
        kernel, bias = layer_initializers(layer, (k, k, layer.input_shape[-1], layer.filters), seed, index, native)
        return Conv2D(
            filters=layer.filters, kernel_size=(k, k), strides=(1, 1), padding=layer.padding,
            data_format="channels_last", dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
            kernel_initializer=kernel, bias_initializer=bias, name=layer.name, dtype=dtype,
        )
    if isinstance(layer, P.Activation):
        return activation_layer(layer.activation, layer.name, dtype, derived_seed(seed, index, RRELU_STREAM))
    if isinstance(layer, P.BatchNormalization):
        # Keras BN is the suite's formula (momentum convention, biased batch variance in the running update).
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


def build_model(plan: tuple[P.Layer, ...], dtype: str, seed: int, native=None) -> keras.Sequential:
    """The plan as a Sequential model taking (N, H, W, C) inputs in `dtype` and returning logits.

    Every layer gets dtype= explicitly; keras.config.set_floatx is never called (it is
    process-global). Each layer's output shape is checked against the plan. native (native mode): the trainer's `native`
    (see native_layer and backends.keras.weights.layer_initializers).
    """
    layers = [keras_layer(layer, index, dtype, seed, native) for index, layer in enumerate(plan)]
    model = keras.Sequential([keras.Input(shape=plan[0].input_shape, dtype=dtype), *layers], name="mnist_parity")
    for layer, built in zip(plan, layers):
        if tuple(built.output.shape[1:]) != layer.output_shape:
            raise AssertionError(f"Keras layer {layer.name} outputs {built.output.shape[1:]}, the plan {layer.output_shape}")
    return model
