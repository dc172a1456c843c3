"""The catalog's losses on logits, per example (the trainer takes the batch mean), and correctness."""

from typing import Callable

from backends.jax.activations import step
from backends.jax.framework import jax, jnp, optax

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def output_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """The output activation over the class (last) axis."""
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


def log_probabilities(name: str, loss_name: str) -> Callable[[jax.Array], jax.Array]:
    """The catalog's log p of an output activation (experiments.catalog.losses); sigmoid's written here, unclipped."""
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


def make_loss(loss, output_activation) -> LossFn:
    """The catalog loss through the output activation, per example: (z (N, C), y (N, C)) -> (N,).

    Label smoothing is optax.smooth_labels (optax's losses take no smoothing argument). categorical_crossentropy:
    optax.softmax_cross_entropy for softmax and linear outputs. kl_divergence: optax.kl_divergence.
    binary_crossentropy is written out (optax.sigmoid_binary_cross_entropy rounds differently, through two
    log_sigmoids, and has no smoothing). mse: optax.squared_error averaged over classes (optax.l2_loss halves it).
    """
    output = output_activation.name
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
    """optax.smooth_labels over the last axis; the identity for eps = 0."""
    return (lambda y: optax.smooth_labels(y, eps, axis=-1)) if eps > 0.0 else (lambda y: y)


def correct(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Per-sample correctness (N,) by backends.base.correct_count's rule, inside the compiled step."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0) == (y[..., 0] > 0.5)
    return jnp.argmax(logits, axis=-1) == jnp.argmax(y, axis=-1)


_NATIVE_OUTPUTS = {  # loss -> output activations optax's loss takes (on logits, or after jax.nn's activation)
    "categorical_crossentropy": ("softmax", "linear"),
    "kl_divergence": ("softmax", "linear"),
    "binary_crossentropy": ("sigmoid", "linear"),
    "mse": ("softmax", "sigmoid", "linear"),
}


def has_native_loss(loss, output_activation) -> bool:
    """Whether optax has a built-in for the pairing: not for cross-entropy or KL through a sigmoid output (the
    catalog's normalised sigmoid), mse through step or sign, nor binary cross-entropy with label smoothing
    (optax.sigmoid_binary_cross_entropy takes none, and optax.smooth_labels spreads over the classes: eps / 1 with
    one output)."""
    if loss.name == "binary_crossentropy" and loss.label_smoothing > 0.0:
        return False
    return output_activation.name in _NATIVE_OUTPUTS.get(loss.name, ())


def make_native_loss(loss, output_activation) -> LossFn:
    """optax's loss for a pairing has_native_loss accepts, per example (mean over classes where optax's is per
    class): softmax_cross_entropy (labels through optax.smooth_labels when smoothing), kl_divergence on
    jax.nn.log_softmax, sigmoid_binary_cross_entropy, squared_error after jax.nn's output activation."""
    if not has_native_loss(loss, output_activation):
        raise ValueError(f"optax has no built-in for {loss.name} through a {output_activation.name} output")
    smooth = _smoothing(getattr(loss, "label_smoothing", 0.0))
    if loss.name == "categorical_crossentropy":
        return lambda z, y: optax.softmax_cross_entropy(z, smooth(y), axis=-1)
    if loss.name == "kl_divergence":
        return lambda z, y: optax.kl_divergence(jax.nn.log_softmax(z, axis=-1), smooth(y), axis=-1)
    if loss.name == "binary_crossentropy":
        return lambda z, y: jnp.mean(optax.sigmoid_binary_cross_entropy(z, y), axis=-1)
    activate = {"softmax": lambda z: jax.nn.softmax(z, axis=-1), "sigmoid": jax.nn.sigmoid,
                "linear": jax.nn.identity}[output_activation.name]
    return lambda z, y: jnp.mean(optax.squared_error(activate(z), y), axis=-1)
