"""The catalog's losses on logits, per example (the trainer takes the batch mean)."""

from typing import Callable

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def output_fn(output_activation) -> Callable[[jax.Array], jax.Array]:
    """a(z) of the output activation, over the class (last) axis."""
    if output_activation.name == "softmax":
        return lambda z: jax.nn.softmax(z, axis=-1)
    if output_activation.name == "sigmoid":
        return jax.nn.sigmoid
    if output_activation.name == "linear":
        return lambda z: z
    raise ValueError(f"unsupported output activation {output_activation.name!r}")


def per_example_loss(loss, output_activation) -> LossFn:
    """l(z, y) of shape (N,) for logits z (N, C) and one-hot y (N, C).

    categorical_crossentropy: -sum_c y'_c log p_c with y' = optax.smooth_labels(y, eps)
    = (1 - eps) y + eps / C; softmax or linear output: optax.softmax_cross_entropy (log_softmax
    of the logits); sigmoid output: log p = log_sigmoid(z) - logsumexp(log_sigmoid(z)).
    mse: mean over classes of optax.squared_error(a(z), y) (not optax.l2_loss, which halves it).
    """
    if loss.name == "categorical_crossentropy":
        smoothing = loss.label_smoothing
        smooth = (lambda y: optax.smooth_labels(y, smoothing)) if smoothing > 0.0 else (lambda y: y)
        if output_activation.name in ("softmax", "linear"):
            return lambda z, y: optax.softmax_cross_entropy(z, smooth(y), axis=-1)
        if output_activation.name == "sigmoid":

            def sigmoid_normalised(z: jax.Array, y: jax.Array) -> jax.Array:
                log_sigmoid = jax.nn.log_sigmoid(z)
                log_p = log_sigmoid - jax.nn.logsumexp(log_sigmoid, axis=-1, keepdims=True)
                return -jnp.sum(smooth(y) * log_p, axis=-1)

            return sigmoid_normalised
        raise ValueError(f"unsupported output activation {output_activation.name!r}")
    if loss.name == "mse":
        activate = output_fn(output_activation)
        return lambda z, y: jnp.mean(optax.squared_error(activate(z), y), axis=-1)
    raise ValueError(f"unsupported loss {loss.name!r}")
