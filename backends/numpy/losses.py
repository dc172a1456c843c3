"""Losses and their gradients with respect to the logits, in NumPy float64 (formulas in experiments.catalog.losses)."""

import numpy as np

from backends.numpy.layers import sigmoid


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log(sigmoid(z)) = -softplus(-z), stable for large |z|."""
    return -np.logaddexp(0.0, -z)


def output_activation(name: str, z: np.ndarray) -> np.ndarray:
    if name == "softmax":
        return softmax(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "linear":
        return z
    raise KeyError(f"the NumPy backend has no output activation {name!r}")


def loss_and_gradient(loss, output: str, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example losses (N,) and d(mean loss)/dz (N, C)."""
    n, classes = z.shape
    if loss.name == "categorical_crossentropy":
        target = (1.0 - loss.label_smoothing) * y + loss.label_smoothing / classes
        if output in ("softmax", "linear"):
            log_p = log_softmax(z)
            return -(target * log_p).sum(axis=-1), (np.exp(log_p) * target.sum(axis=-1, keepdims=True) - target) / n
        # sigmoid: s = log sigmoid(z), log p = s - logsumexp(s); ds/dz = 1 - sigmoid(z)
        s = log_sigmoid(z)
        log_p = log_softmax(s)
        dl_ds = np.exp(log_p) * target.sum(axis=-1, keepdims=True) - target
        return -(target * log_p).sum(axis=-1), dl_ds * (1.0 - sigmoid(z)) / n
    if loss.name == "mse":
        a = output_activation(output, z)
        per_example = ((a - y) ** 2).mean(axis=-1)
        g = 2.0 * (a - y) / (classes * n)  # d(mean loss)/da
        if output == "softmax":
            return per_example, a * (g - (g * a).sum(axis=-1, keepdims=True))
        if output == "sigmoid":
            return per_example, g * a * (1.0 - a)
        return per_example, g
    raise KeyError(f"the NumPy backend has no loss {loss.name!r}")
