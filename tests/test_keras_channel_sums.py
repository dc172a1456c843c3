"""Keras backend, catalog layers: every per-channel sum of backends.keras.model goes through channel_sum (the batch
statistics, the batch norm's backward sums, the conv bias gradient), and channel_sum is accurate.

TF's own reduce_sum over the outer axes (N, H, W) of a channels-last tensor, what Keras' layers use, is the reduction
these tests refuse. The plant they were checked against is channel_sum replaced by it:
    backends.keras.model.channel_sum = lambda x: tf.reduce_sum(x, axis=list(range(len(x.shape) - 1)))
which fails every accuracy test here. Each tolerance is named with the values measured in its setup (keras 3.15 /
TF 2.21, two threads): channel_sum ("now"), the (C, N*H*W) transposed view the backend reduced along before ("view")
and the plant ("outer"). No test here is timed; speed is the bench command's.
"""

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from backends.keras import model as keras_model  # noqa: E402
from backends.keras.framework import keras, tf  # noqa: E402
from tests.backend_helpers import error  # noqa: E402

SHAPE = (64, 28, 28, 32)  # seed-cnn's first batch norm: 50,176 values per channel
# channel_sum of 1 + 0.1 N(0, 1) values in float32, largest relative error per channel: now 1.0e-7, view 8.3e-8,
# outer 1.9e-6 (seeds 0-2: now <= 1.2e-7, outer >= 1.4e-6).
CHANNEL_SUM_FLOAT32 = 3e-7
# Batch statistics of relu'd conv-like float32 values against NumPy float64 (mean: relative to the standard
# deviation): mean now 2.0e-7, view 2.0e-7, outer 1.3e-6; variance now 1.3e-7, view 1.8e-6, outer 1.4e-4.
BN_MEAN_FLOAT32 = 5e-7
BN_VARIANCE_FLOAT32 = 5e-7
# The same in float64 against long double: mean now 3.3e-16 (outer 3.7e-15), variance now 4.1e-16, view 3.4e-15,
# outer 2.4e-13.
BN_MEAN_FLOAT64 = 2e-15
BN_VARIANCE_FLOAT64 = 2e-15
# Conv -> batch norm: the conv bias's true gradient is 0 (the batch norm re-centres); largest |d bias| per channel
# over the sum of |d conv output| in that channel, seeds 0-2: float64 now <= 4.5e-18, view <= 9.6e-18, outer >= 6.0e-17;
# float32 now <= 4.7e-9, view <= 7.8e-9, outer >= 2.9e-8.
BIAS_GRADIENT = {"float64": 2e-17, "float32": 1.5e-8}
# Hand-written gradients against autodiff of the same formulas (float64, normwise relative): measured <= 3e-16.
AUTODIFF_FLOAT64 = 1e-14


def transposed_sum(x):
    """The reduction the backend used before: along the innermost axis of the (C, N*H*W) transposed view."""
    return tf.reduce_sum(tf.transpose(tf.reshape(x, [-1, x.shape[-1]])), axis=1)


def conv_like(rng: np.random.Generator, shape=SHAPE) -> np.ndarray:
    """A relu'd convolution output: per-channel spread and offset, about a third of the values zero."""
    c = shape[-1]
    return np.maximum(0.0, rng.normal(size=shape) * rng.uniform(0.2, 1.0, c) + rng.uniform(-0.5, 1.0, c))


def long_double_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = x.astype(np.longdouble).reshape(-1, x.shape[-1])
    mean = values.mean(axis=0)
    return mean, ((values - mean) ** 2).mean(axis=0)


def batch_statistics(cls, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch mean and biased variance a batch norm layer takes in training: at momentum 0 its moving statistics
    become exactly those."""
    layer = cls(momentum=0.0, epsilon=1e-3, dtype=str(x.dtype))
    layer.build(x.shape)
    layer(tf.constant(x), training=True)
    return layer.moving_mean.numpy(), layer.moving_variance.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_channel_sum_is_accurate_in_float32(seed):
    x = (1.0 + 0.1 * np.random.default_rng(seed).normal(size=SHAPE)).astype(np.float32)
    exact = x.astype(np.longdouble).reshape(-1, SHAPE[-1]).sum(axis=0)
    total = keras_model.channel_sum(tf.constant(x)).numpy()
    assert total.dtype == np.float32 and total.shape == (SHAPE[-1],)
    worst = float(np.max(np.abs(total - exact) / np.abs(exact)))
    assert worst <= CHANNEL_SUM_FLOAT32, f"channel_sum is {worst:.3g} off (relative), the tolerance {CHANNEL_SUM_FLOAT32}"


def test_channel_sum_of_a_matrix_is_the_sum_along_its_transpose():
    """An (N, C) input (a dense layer's batch norm) is only the last step: exactly the transposed view's sum."""
    x = tf.constant(np.random.default_rng(3).normal(size=(64, 120)))
    np.testing.assert_array_equal(keras_model.channel_sum(x).numpy(), transposed_sum(x).numpy())


def test_batch_norm_statistics_in_float32():
    """The catalog batch norm's float32 batch mean and variance against NumPy float64 on a 64 x 28 x 28 x 32 tensor:
    within the named tolerances (the variance's is tighter than the transposed view met: 1.8e-6), and no worse than
    that view on the same tensor."""
    x = conv_like(np.random.default_rng(0)).astype(np.float32)
    reference = x.astype(np.float64).reshape(-1, SHAPE[-1])
    mean_ref, variance_ref = reference.mean(axis=0), reference.var(axis=0)
    std = np.sqrt(variance_ref)
    mean, variance = batch_statistics(keras_model.BatchNormalization, x)
    assert mean.dtype == variance.dtype == np.float32
    count = tf.constant(float(x.size // SHAPE[-1]), tf.float32)
    view_mean = (transposed_sum(tf.constant(x)) / count).numpy()
    view_variance = (transposed_sum(tf.square(tf.constant(x) - view_mean)) / count).numpy()
    errors = {
        "mean": float(np.max(np.abs(mean - mean_ref) / std)),
        "variance": float(np.max(np.abs(variance - variance_ref) / variance_ref)),
        "view mean": float(np.max(np.abs(view_mean - mean_ref) / std)),
        "view variance": float(np.max(np.abs(view_variance - variance_ref) / variance_ref)),
    }
    assert errors["mean"] <= BN_MEAN_FLOAT32 and errors["variance"] <= BN_VARIANCE_FLOAT32, errors
    assert errors["mean"] <= 1.5 * errors["view mean"] and errors["variance"] <= 1.5 * errors["view variance"], errors


def test_batch_norm_statistics_in_float64():
    x = conv_like(np.random.default_rng(0))
    mean_ref, variance_ref = long_double_statistics(x)
    mean, variance = batch_statistics(keras_model.BatchNormalization, x)
    mean_error = float(np.max(np.abs(mean - mean_ref) / np.sqrt(variance_ref)))
    variance_error = float(np.max(np.abs(variance - variance_ref) / variance_ref))
    assert mean_error <= BN_MEAN_FLOAT64 and variance_error <= BN_VARIANCE_FLOAT64, (mean_error, variance_error)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_bias_gradient_before_a_batch_norm_is_zero_to_rounding(dtype, seed):
    """conv2d (catalog) -> batch norm (catalog), training mode: the bias's gradient sums the batch norm's input
    gradient, whose per-channel sum is 0; what is left is the rounding of the sums in the batch norm's backward pass
    and of the bias gradient's own sum."""
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.random((64, 28, 28, 1)).astype(dtype))
    upstream = tf.constant(rng.normal(size=SHAPE).astype(dtype))
    conv = keras_model.Conv2D(SHAPE[-1], 3, padding="same", dtype=dtype,
                              bias_initializer=keras.initializers.RandomNormal(0.0, 0.1, seed=seed))
    norm = keras_model.BatchNormalization(momentum=0.9, epsilon=1e-3, dtype=dtype)
    with tf.GradientTape() as tape:
        y = conv(x)
        loss = tf.reduce_sum(norm(y, training=True) * upstream)
    bias_gradient, y_gradient = tape.gradient(loss, [conv.bias, y])
    scale = np.abs(y_gradient.numpy()).reshape(-1, SHAPE[-1]).sum(axis=0)
    worst = float(np.max(np.abs(bias_gradient.numpy()) / scale))
    assert worst <= BIAS_GRADIENT[dtype], f"{dtype}: conv bias gradient {worst:.3g} of its scale, tolerance {BIAS_GRADIENT[dtype]}"


def test_accurate_bias_add_is_the_broadcast_add_with_the_channel_sum_as_bias_gradient():
    rng = np.random.default_rng(4)
    x, bias = tf.constant(rng.normal(size=(8, 5, 6, 3))), tf.constant(rng.normal(size=3))
    upstream = tf.constant(rng.normal(size=(8, 5, 6, 3)))
    with tf.GradientTape() as tape:
        tape.watch([x, bias])
        y = keras_model._accurate_bias_add(x, bias)
    dx, dbias = tape.gradient(y, [x, bias], output_gradients=upstream)
    np.testing.assert_array_equal(y.numpy(), (x + bias).numpy())
    np.testing.assert_array_equal(dx.numpy(), upstream.numpy())
    np.testing.assert_array_equal(dbias.numpy(), keras_model.channel_sum(upstream).numpy())


@pytest.mark.parametrize("shape", [(16, 9, 7, 5), (32, 6)])
def test_channel_moments_gradient_is_autodiff_of_the_two_pass_formula(shape):
    """channel_moments' written-out gradient against TF's autodiff of mean = sum x / n, variance = sum (x - mean)^2 / n
    (the mean under stop_gradient in the variance, as the catalog's formula had it), in float64."""
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=shape) + rng.normal(size=shape[-1:]))
    d_mean, d_variance = (tf.constant(rng.normal(size=shape[-1:])) for _ in range(2))
    with tf.GradientTape() as tape:
        tape.watch(x)
        mean, variance = keras_model.channel_moments(x)
    written = tape.gradient([mean, variance], x, output_gradients=[d_mean, d_variance])
    with tf.GradientTape() as tape:
        tape.watch(x)
        count = float(np.prod(shape[:-1]))
        reference_mean = transposed_sum(x) / count
        reference_variance = transposed_sum(tf.square(x - tf.stop_gradient(reference_mean))) / count
    autodiff = tape.gradient([reference_mean, reference_variance], x, output_gradients=[d_mean, d_variance])
    assert error(mean.numpy(), reference_mean.numpy()) <= AUTODIFF_FLOAT64
    assert error(variance.numpy(), reference_variance.numpy()) <= AUTODIFF_FLOAT64
    assert error(written.numpy(), autodiff.numpy()) <= AUTODIFF_FLOAT64


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_output_is_tf_nn_batch_normalization_and_its_gradients_autodiff(training):
    """The catalog batch norm's output is bit for bit tf.nn.batch_normalization of the same statistics (the batch's in
    training, the moving ones in evaluation); its gradients agree with TF's autodiff of that op (whose sums are the
    outer reduce_sum) to rounding, in float64."""
    rng = np.random.default_rng(6)
    x = tf.constant(conv_like(rng, (16, 9, 7, 5)))
    upstream = tf.constant(rng.normal(size=(16, 9, 7, 5)))
    layer = keras_model.BatchNormalization(momentum=0.9, epsilon=1e-3, dtype="float64")
    layer.build(x.shape)
    layer.gamma.assign(rng.uniform(0.5, 1.5, 5))
    layer.beta.assign(rng.normal(size=5))
    layer.moving_mean.assign(rng.normal(size=5))
    layer.moving_variance.assign(rng.uniform(0.5, 1.5, 5))
    if training:
        statistics = keras_model.channel_moments
    else:
        moving = (tf.constant(layer.moving_mean.numpy()), tf.constant(layer.moving_variance.numpy()))
        statistics = lambda _: moving  # noqa: E731
    gamma, beta = layer.gamma.value, layer.beta.value
    with tf.GradientTape() as tape:
        tape.watch(x)
        expected = tf.nn.batch_normalization(x, *statistics(x), beta, gamma, 1e-3)
    expected_gradients = tape.gradient(expected, [x, gamma, beta], output_gradients=upstream)
    with tf.GradientTape() as tape:
        tape.watch(x)
        actual = layer(x, training=training)
    gradients = tape.gradient(actual, [x, gamma, beta], output_gradients=upstream)
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())
    for name, got, want in zip(("x", "gamma", "beta"), gradients, expected_gradients):
        assert error(got.numpy(), want.numpy()) <= AUTODIFF_FLOAT64, name
