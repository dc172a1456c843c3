"""Losses and their gradients with respect to the logits, in NumPy (formulas in experiments.catalog.losses)."""

import numpy as np

from backends.numpy.activations import sigmoid


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log(sigmoid(z)) = -softplus(-z), stable for large |z|."""
    return -np.logaddexp(z.dtype.type(0.0), -z)


def output_activation(name: str, z: np.ndarray) -> np.ndarray:
    """The output activation applied to logits (step and sign: forward only)."""
    if name == "softmax":
        return np.exp(log_softmax(z))
    if name == "sigmoid":
        return sigmoid(z)
    if name == "linear":
        return z
    if name == "step":
        return (z > 0).astype(z.dtype)
    if name == "sign":
        return np.sign(z)
    raise KeyError(f"the NumPy backend has no output activation {name!r}")


def log_probabilities(output: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p, d log p / dz applied later): returns log p and the per-element factor of the chain rule.

    softmax/linear: log p = log_softmax(z); sigmoid: log p = log_softmax(log_sigmoid(z)), whose
    derivative brings the extra factor 1 - sigmoid(z).
    """
    if output in ("softmax", "linear"):
        return log_softmax(z), np.ones_like(z)
    if output == "sigmoid":
        return log_softmax(log_sigmoid(z)), 1.0 - sigmoid(z)
    raise KeyError(f"categorical losses need a softmax, sigmoid or linear output, not {output!r}")


def make_loss(loss, output_activation):
    """The loss of the catalog entry through the output activation entry, as a function (z, y) -> (per-example
    losses (N,), d(mean loss)/dz (N, C)); the backward is written by hand."""
    return lambda z, y: _loss_and_gradient(loss, output_activation.name, z, y)


def _loss_and_gradient(loss, output: str, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, classes = z.shape
    if loss.name in ("categorical_crossentropy", "kl_divergence"):
        target = (1.0 - loss.label_smoothing) * y + loss.label_smoothing / classes
        log_p, factor = log_probabilities(output, z)
        per_example = -(target * log_p).sum(axis=-1)
        if loss.name == "kl_divergence":  # + sum y' log y', with 0 log 0 = 0
            safe = np.where(target > 0, target, 1.0)
            per_example = per_example + (target * np.log(safe)).sum(axis=-1)
        gradient = (np.exp(log_p) * target.sum(axis=-1, keepdims=True) - target) * factor / n
        return per_example, gradient
    if loss.name == "binary_crossentropy":
        target = (1.0 - loss.label_smoothing) * y + loss.label_smoothing / 2.0
        per_example = (np.logaddexp(z.dtype.type(0.0), z) - target * z).mean(axis=-1)
        return per_example, (sigmoid(z) - target) / (classes * n)
    if loss.name == "mse":
        a = output_activation(output, z)
        per_example = ((a - y) ** 2).mean(axis=-1)
        g = 2.0 * (a - y) / (classes * n)  # d(mean loss)/da
        if output == "softmax":
            return per_example, a * (g - (g * a).sum(axis=-1, keepdims=True))
        if output == "sigmoid":
            return per_example, g * a * (1.0 - a)
        if output == "linear":
            return per_example, g
        raise KeyError(f"mse cannot train through the forward-only output {output!r}")
    raise KeyError(f"the NumPy backend has no loss {loss.name!r}")
