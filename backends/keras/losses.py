"""The catalog's losses on logits, written with TF ops (not Keras' probability-form losses)."""

from typing import Callable

from backends.keras.framework import tf
from experiments.catalog.base import Entry

PerSampleLoss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def output_activation(entry: Entry) -> Callable[[tf.Tensor], tf.Tensor]:
    """The output activation a(z) over the class axis."""
    functions = {"softmax": lambda z: tf.nn.softmax(z, axis=-1), "sigmoid": tf.math.sigmoid, "linear": tf.identity}
    if entry.name not in functions:
        raise KeyError(f"the Keras backend has no output activation {entry.name!r}")
    return functions[entry.name]


def log_probabilities(entry: Entry, logits: tf.Tensor) -> tf.Tensor:
    """log p of the catalog's categorical cross-entropy, from the logits (N, C).

    softmax or linear output: log_softmax(z). Sigmoid output: log_sigmoid(z) minus its
    logsumexp, i.e. sigmoid outputs normalised to sum to 1, without Keras' 1e-7 clip.
    """
    if entry.name == "sigmoid":
        log_sigmoid = tf.math.log_sigmoid(logits)
        return log_sigmoid - tf.reduce_logsumexp(log_sigmoid, axis=-1, keepdims=True)
    if entry.name in ("softmax", "linear"):
        return tf.nn.log_softmax(logits, axis=-1)
    raise KeyError(f"the Keras backend has no output activation {entry.name!r}")


def make_loss(loss: Entry, activation: Entry, num_classes: int) -> PerSampleLoss:
    """The per-sample loss l(z, y) (N,) of logits z (N, C) and one-hot y (N, C); the batch loss is its mean.

    Keras' CategoricalCrossentropy(from_logits=False) clips probabilities to [1e-7, 1 - 1e-7]
    and, on TF, silently switches to cached logits; neither is used here.
    """
    if loss.name == "categorical_crossentropy":
        smoothing = float(loss.label_smoothing)

        def categorical_crossentropy(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            if smoothing:
                y = (1.0 - smoothing) * y + smoothing / num_classes  # y' = (1 - eps) y + eps / C
            return -tf.reduce_sum(y * log_probabilities(activation, logits), axis=-1)

        return categorical_crossentropy
    if loss.name == "mse":
        activate = output_activation(activation)

        def mean_squared_error(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(tf.math.squared_difference(activate(logits), y), axis=-1)

        return mean_squared_error
    raise KeyError(f"the Keras backend has no loss {loss.name!r}")
