"""The catalog's losses on logits, written with TF ops (not Keras' probability-form losses)."""

from typing import Callable

from backends.keras.activations import elementwise, softplus
from backends.keras.framework import keras, tf
from experiments.catalog.base import Entry

PerSampleLoss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "linear", "step", "sign")
PROBABILITY_OUTPUTS = ("softmax", "sigmoid", "linear")  # the outputs log_probabilities defines


def output_activation(entry: Entry) -> Callable[[tf.Tensor], tf.Tensor]:
    """The output activation over the class axis (step and sign: forward only, zero gradient)."""
    if entry.name not in OUTPUT_ACTIVATIONS:
        raise KeyError(f"the Keras backend has no output activation {entry.name!r}")
    return elementwise(entry)


def log_probabilities(entry: Entry, logits: tf.Tensor) -> tf.Tensor:
    """The catalog's log p from the logits (N, C), for cross-entropy and KL divergence; without Keras' 1e-7 clip."""
    if entry.name == "sigmoid":
        log_sigmoid = tf.math.log_sigmoid(logits)
        return log_sigmoid - tf.reduce_logsumexp(log_sigmoid, axis=-1, keepdims=True)
    if entry.name in ("softmax", "linear"):
        return tf.nn.log_softmax(logits, axis=-1)
    raise KeyError(f"the {entry.name!r} output activation defines no probabilities (cross-entropy and KL need them)")


def make_loss(loss: Entry, activation: Entry) -> PerSampleLoss:
    """The per-sample loss (N,) of logits (N, C) and targets (N, C); the batch loss is its mean.

    Keras' CategoricalCrossentropy(from_logits=False) clips probabilities to [1e-7, 1 - 1e-7] and, on TF, silently
    switches to cached logits; BinaryCrossentropy clips the same way and KLDivergence clips y to >= 1e-7; none of
    them is used here.
    """
    if loss.name in ("categorical_crossentropy", "kl_divergence"):
        if activation.name not in PROBABILITY_OUTPUTS:  # refused when built, not at the first step
            raise KeyError(f"{loss.name} needs probabilities: a softmax, sigmoid or linear output, not {activation.name!r}")
        smoothing = float(loss.label_smoothing)

        def smoothed(y: tf.Tensor) -> tf.Tensor:  # C from the static class axis
            return (1.0 - smoothing) * y + smoothing / y.shape[-1] if smoothing else y

        if loss.name == "categorical_crossentropy":

            def categorical_crossentropy(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
                return -tf.reduce_sum(smoothed(y) * log_probabilities(activation, logits), axis=-1)

            return categorical_crossentropy

        def kl_divergence(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            """The log of a zero target is never taken."""
            y = smoothed(y)
            positive = y > 0
            log_y = tf.math.log(tf.where(positive, y, tf.ones_like(y)))
            terms = tf.where(positive, y * (log_y - log_probabilities(activation, logits)), tf.zeros_like(y))
            return tf.reduce_sum(terms, axis=-1)

        return kl_divergence
    if loss.name == "binary_crossentropy":
        if activation.name not in ("sigmoid", "linear"):
            raise KeyError(f"binary_crossentropy takes sigmoid (or linear) outputs, not {activation.name!r}")
        smoothing = float(loss.label_smoothing)
        positive_part = softplus(1.0)

        def binary_crossentropy(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            if smoothing:
                y = (1.0 - smoothing) * y + smoothing / 2.0
            return tf.reduce_mean(positive_part(logits) - y * logits, axis=-1)

        return binary_crossentropy
    if loss.name == "mse":
        activate = output_activation(activation)

        def mean_squared_error(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(tf.math.squared_difference(activate(logits), y), axis=-1)

        return mean_squared_error
    raise KeyError(f"the Keras backend has no loss {loss.name!r}")


# Native mode: Keras' built-in losses ----------------------------------------------------------------------------

NATIVE_OUTPUTS = {"softmax": "softmax", "sigmoid": "sigmoid", "linear": "linear"}  # keras.activations by name


def native_output(entry: Entry) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """keras.activations' function of an output activation (mse applies it to the logits); None: no built-in."""
    name = NATIVE_OUTPUTS.get(entry.name)
    return None if name is None else keras.activations.get(name)


class NativeLoss:
    """A per-sample loss (logits, y) -> (N,) calling Keras' built-in `built_in` (reduction=None) as built_in(y, p),
    p = prepare(logits): the logits themselves (from_logits=True) or the output activation's values."""

    def __init__(self, built_in: keras.losses.Loss, prepare: Callable[[tf.Tensor], tf.Tensor] | None = None):
        self.built_in, self.prepare = built_in, prepare

    def __call__(self, logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return self.built_in(y, logits if self.prepare is None else self.prepare(logits))


def native_loss(loss: Entry, activation: Entry, dtype: str, native_activation: bool = True) -> NativeLoss | None:
    """Keras' built-in loss for the (loss, output activation) pairing, per sample (reduction=None), computing in
    `dtype`; None where Keras has no built-in for it (the catalog's make_loss is used then).

    categorical_crossentropy with softmax or linear outputs (the catalog's log_softmax of the logits):
    CategoricalCrossentropy(from_logits=True, label_smoothing); binary_crossentropy with sigmoid or linear outputs:
    BinaryCrossentropy(from_logits=True, label_smoothing); kl_divergence with softmax or linear outputs and no label
    smoothing (KLDivergence has no argument for it): KLDivergence of the softmax probabilities (Keras clips both to
    [1e-7, 1]); mse: MeanSquaredError of the output activation, keras.activations' own where native_activation
    and Keras has it, else the catalog's. Not built in: categorical_crossentropy and kl_divergence of sigmoid
    outputs (the catalog normalises the sigmoids), kl_divergence with label_smoothing.
    """
    name, output = loss.name, activation.name
    if name == "categorical_crossentropy" and output in ("softmax", "linear"):
        built_in = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=loss.label_smoothing,
                                                        reduction=None, dtype=dtype)
        return NativeLoss(built_in)
    if name == "binary_crossentropy" and output in ("sigmoid", "linear"):
        built_in = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=loss.label_smoothing,
                                                   reduction=None, dtype=dtype)
        return NativeLoss(built_in)
    if name == "kl_divergence" and output in ("softmax", "linear") and not loss.label_smoothing:
        built_in = keras.losses.KLDivergence(reduction=None, dtype=dtype)
        return NativeLoss(built_in, keras.activations.softmax)
    if name == "mse":
        activate = (native_output(activation) if native_activation else None) or output_activation(activation)
        built_in = keras.losses.MeanSquaredError(reduction=None, dtype=dtype)
        return NativeLoss(built_in, activate)
    return None
