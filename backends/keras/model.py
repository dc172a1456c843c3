"""Build a channels-last Keras model from the layer plan, every argument explicit (its weights: backends.keras.weights)."""

from backends.keras.activations import activation_layer, has_native, native_activation_layer
from backends.keras.framework import keras, tf
from backends.keras.weights import DROPOUT_STREAM, RRELU_STREAM, derived_seed, layer_initializers
from experiments.spec import plan as P


def channel_sum(x):
    """Sum over every axis but the last (channels last), accurately and without transposing the whole tensor.

    One tf.reduce_sum per spatial axis, the innermost first ((N, H, W, C): over W, then H), reading the tensor in
    place; the (N, C) partial sums are then added along the innermost axis of their (C, N) transpose (a copy of
    N x C values only; an (N, C) input is just that last step, the reduction this backend used before for all).
    TF's CPU reduce_sum over several outer axes at once accumulates each channel sequentially (50,176 values for
    seed-cnn's first layer) and its error grows with that count; here no sum runs over more than max(N, H, W) terms.
    Accuracy: see BatchNormalization and _accurate_bias_add; cost: see _scale_and_shift.
    """
    total = x
    for axis in range(len(x.shape) - 2, 0, -1):
        total = tf.reduce_sum(total, axis=axis)
    return tf.reduce_sum(tf.transpose(total), axis=1)


def _accurate_bias_add(outputs, bias):
    """outputs + bias (channels last) whose bias gradient is channel_sum(upstream).

    The gradient of Keras' broadcast add is TF's reduce_sum over (N, H, W), the sequential outer
    reduction: measured 9.1e-14 absolute on a conv bias whose true gradient is 0 (a batch norm
    re-centres its output) against ~5e-15 for torch, JAX and the oracle, and that noise, stepped by
    Adam, walked the bias 3.5e-8 away in 100 steps. Measured again on seed-cnn with its convolutions
    feeding the batch norms directly (float64, the initial model, the first 64 training images of
    mnist-subset), largest |d conv2d_0/bias|: Keras' add and batch norm 4.2e-13, the transposed view
    this backend summed along before 1.0e-14, channel_sum (with BatchNormalization's sums) 1.1e-15,
    the oracle 1.7e-15. Forward and backward of the three conv shapes of seed-cnn (batch 64), median
    CPU time, float32 / float64: Keras' add 3.9 / 9.5 ms, before 4.8 / 10.0 ms, now 3.0 / 5.9 ms.
    """

    @tf.custom_gradient
    def add(x, b):
        def grad(upstream):
            return upstream, channel_sum(upstream)

        return x + b, grad

    return add(outputs, tf.convert_to_tensor(bias))  # a tensor, not the variable: custom_gradient sees no variable


def channel_moments(x):
    """(mean, biased variance) per channel of a channels-last tensor, both sums by channel_sum, the variance by the
    two-pass formula (the mean of the squared deviations from the mean).

    The gradient is written out, d x = d mean / n + (x - mean) (2 (d variance / n)): what autodiff of the two
    formulas gives, with the variance's path through the mean (zero: the deviations sum to zero) left out as a
    stop_gradient would, in two broadcasts instead of the backward pass of every reduction.
    """

    @tf.custom_gradient
    def moments(x):
        count = tf.cast(tf.size(x) // x.shape[-1], x.dtype)
        mean = channel_sum(x) / count
        centred = x - mean
        variance = channel_sum(tf.square(centred)) / count

        def grad(d_mean, d_variance):
            return d_mean / count + centred * (2.0 * (d_variance / count))

        return (mean, variance), grad

    return moments(x)


def _scale_and_shift(x, scale, shift):
    """x * scale + shift for per-channel (C,) scale and shift, whose gradients are channel_sum(upstream * x) and
    channel_sum(upstream).

    The batch norm's last step, as tf.nn.batch_normalization computes it (scale = gamma / sqrt(variance + epsilon),
    shift = beta - mean * scale); autodiff of its broadcasts would take both sums with TF's sequential reduce_sum
    over (N, H, W).
    """

    @tf.custom_gradient
    def scale_and_shift(x, scale, shift):
        def grad(upstream):
            return upstream * scale, channel_sum(upstream * x), channel_sum(upstream)

        return x * scale + shift, grad

    return scale_and_shift(x, scale, shift)


class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D (channels last) with its bias added by _accurate_bias_add."""

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.kernel)
        return _accurate_bias_add(outputs, self.bias) if self.use_bias else outputs


class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization with every per-channel sum taken by channel_sum: the batch statistics
    (channel_moments) and, in the backward pass, the sums of the normalisation's broadcasts (_scale_and_shift).

    Keras' TF backend takes the moments with tf.nn.moments over axes (N, H, W) of a channels-last tensor, and TF's
    CPU reduction over outer axes accumulates sequentially. Batch variance of seed-cnn's batch-norm inputs (the
    initial model, the first 64 training images of mnist-subset), largest relative error against a long-double
    reference, float32 / float64:

        input            TF outer (Keras)    transposed view (before)   channel_sum (now)
        28 x 28 x 32     1.5e-4 / 3.1e-13    1.8e-6 / 3.5e-15           1.5e-7 / 6.0e-16
        14 x 14 x 64     4.2e-5 / 8.4e-14    1.9e-6 / 3.3e-15           1.9e-7 / 5.3e-16
        7 x 7 x 128      9.0e-6 / 2.2e-14    1.0e-6 / 3.9e-15           1.7e-7 / 4.9e-16
        120 (dense)      3.7e-7 / 4.6e-16    8.9e-8 / 2.3e-16           8.9e-8 / 2.3e-16

    Forward and backward in training mode on those three conv shapes, median CPU time, float32 / float64:
    keras.layers.BatchNormalization 24 / 56 ms, this class with the transposed view (before) 29 / 59 ms, now
    17 / 32 ms (channel_sum reads in place where the view copied the tensor twice forward and twice backward,
    and the backward pass is two broadcasts and two channel_sums instead of autodiff's reductions).

    The call is Keras' (same formulas, same moving-statistics update) for the layers the catalog builds: channels
    last, no mask, no renorm, not synchronized, computing in the layer's dtype; anything else is Keras' own call.
    """

    def _moments(self, inputs, mask):
        if mask is not None or len(self._reduction_axes) != len(inputs.shape) - 1:
            return super()._moments(inputs, mask)
        return channel_moments(inputs)

    def call(self, inputs, training=None, mask=None):
        if (mask is not None or self.renorm or self.synchronized or not (self.scale and self.center)
                or self.axis not in (-1, len(inputs.shape) - 1)
                or keras.backend.standardize_dtype(inputs.dtype) != self.compute_dtype):
            return super().call(inputs, training=training, mask=mask)
        if training and self.trainable:
            mean, variance = self._moments(inputs, mask)
            moving_mean = tf.convert_to_tensor(self.moving_mean)
            moving_variance = tf.convert_to_tensor(self.moving_variance)
            self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean, variance = tf.convert_to_tensor(self.moving_mean), tf.convert_to_tensor(self.moving_variance)
        scale = tf.math.rsqrt(variance + self.epsilon) * tf.convert_to_tensor(self.gamma)  # tf.nn.batch_normalization's
        return _scale_and_shift(inputs, scale, tf.convert_to_tensor(self.beta) - mean * scale)


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
