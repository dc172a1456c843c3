"""The catalog's losses on logits, per example (the trainer takes the batch mean), and correctness."""

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from backends.jax.model import step

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _name(entry) -> str:
    """An entry's name; a bare name string is accepted too (op-level tests pass names)."""
    return entry if isinstance(entry, str) else entry.name


def output_fn(output_activation) -> Callable[[jax.Array], jax.Array]:
    """a(z) of the output activation, over the class (last) axis."""
    name = _name(output_activation)
    if name == "softmax":
        return lambda z: jax.nn.softmax(z, axis=-1)
    if name == "sigmoid":
        return jax.nn.sigmoid
    if name == "linear":
        return lambda z: z
    if name == "step":
        return step
    if name == "sign":
        return jnp.sign
    raise ValueError(f"unsupported output activation {name!r}")


def log_probabilities(output_activation, loss_name: str) -> Callable[[jax.Array], jax.Array]:
    """log p over the class axis: log_softmax(z) for softmax or linear outputs; for sigmoid
    outputs log_sigmoid(z) - logsumexp(log_sigmoid(z)) (Keras' normalised probability form, unclipped)."""
    name = _name(output_activation)
    if name in ("softmax", "linear"):
        return lambda z: jax.nn.log_softmax(z, axis=-1)
    if name == "sigmoid":

        def sigmoid_normalised(z: jax.Array) -> jax.Array:
            log_sigmoid = jax.nn.log_sigmoid(z)
            return log_sigmoid - jax.nn.logsumexp(log_sigmoid, axis=-1, keepdims=True)

        return sigmoid_normalised
    raise ValueError(
        f"{loss_name} needs probabilities, which the catalog defines for softmax, sigmoid and linear outputs, "
        f"not for the forward-only output activation {name!r}"
    )


def per_example_loss(loss, output_activation) -> LossFn:
    """l(z, y) of shape (N,) for logits z (N, C) and targets y (N, C) (one-hot, or 0/1 when C = 1).

    categorical_crossentropy: -sum_c y'_c log p_c, y' = optax.smooth_labels(y, eps)
    = (1 - eps) y + eps / C; softmax or linear output: optax.softmax_cross_entropy (log_softmax
    of the logits); sigmoid output: the normalised log p of `log_probabilities`.
    kl_divergence: optax.kl_divergence(log p, y') = sum_c y'_c (log y'_c - log p_c) with 0 log 0 = 0,
    same y' and log p as categorical_crossentropy.
    binary_crossentropy: mean_c [softplus(z_c) - y'_c z_c], y' = (1 - eps) y + eps / 2, written out
    (optax.sigmoid_binary_cross_entropy is the same function computed as -y' log_sigmoid(z)
    - (1 - y') log_sigmoid(-z)); sigmoid or linear outputs only.
    mse: mean over classes of optax.squared_error(a(z), y) (not optax.l2_loss, which halves it).
    """
    output = _name(output_activation)
    if loss.name == "categorical_crossentropy":
        smooth = _smoothing(loss.label_smoothing)
        if output in ("softmax", "linear"):
            return lambda z, y: optax.softmax_cross_entropy(z, smooth(y), axis=-1)
        log_p = log_probabilities(output, loss.name)
        return lambda z, y: -jnp.sum(smooth(y) * log_p(z), axis=-1)
    if loss.name == "kl_divergence":
        smooth = _smoothing(loss.label_smoothing)
        log_p = log_probabilities(output, loss.name)
        return lambda z, y: optax.kl_divergence(log_p(z), smooth(y), axis=-1)
    if loss.name == "binary_crossentropy":
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"binary_crossentropy takes sigmoid (or linear) outputs, not {output!r}")
        eps = loss.label_smoothing

        def binary(z: jax.Array, y: jax.Array) -> jax.Array:
            target = (1.0 - eps) * y + eps / 2.0 if eps > 0.0 else y
            return jnp.mean(jnp.logaddexp(z, 0.0) - target * z, axis=-1)

        return binary
    if loss.name == "mse":
        activate = output_fn(output)
        return lambda z, y: jnp.mean(optax.squared_error(activate(z), y), axis=-1)
    raise ValueError(f"unsupported loss {loss.name!r}")


def _smoothing(eps: float) -> Callable[[jax.Array], jax.Array]:
    """y -> (1 - eps) y + eps / C over the last axis (optax.smooth_labels), the identity for eps = 0."""
    return (lambda y: optax.smooth_labels(y, eps, axis=-1)) if eps > 0.0 else (lambda y: y)


def correct(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Per-sample correctness (N,): argmax(logits) == argmax(y) with C > 1 outputs;
    (logit > 0) == (y > 0.5) for a binary task's single output."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0) == (y[..., 0] > 0.5)
    return jnp.argmax(logits, axis=-1) == jnp.argmax(y, axis=-1)
