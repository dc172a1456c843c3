"""Eval-mode forward pass of a layer plan in NumPy, written for readability (the oracle).

Shapes: x is (N, H, W, C) channels-last; kernels are canonical, dense (in, out) and conv
(kh, kw, in, out). "same" padding puts the extra pixel at the end (TF/Keras/lax rule):
pad_total = max((out - 1) * stride + k - n, 0), pad_lo = pad_total // 2.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from experiments.spec import plan as P


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis for "same": out = ceil(size / stride)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, window: int, stride: int, padding: str, fill: float) -> np.ndarray:
    """(N, Ho, Wo, C, k, k) sliding windows of an (N, H, W, C) array."""
    if padding == "same":
        (top, bottom), (left, right) = same_padding(x.shape[1], window, stride), same_padding(x.shape[2], window, stride)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    return sliding_window_view(x, (window, window), axis=(1, 2))[:, ::stride, ::stride]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), evaluated without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def activation(name: str, x: np.ndarray, params: dict) -> np.ndarray:
    """Hidden-layer activation by catalog name."""
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "leaky_relu":
        return np.where(x >= 0, x, params["negative_slope"] * x)
    if name == "linear":
        return x
    raise KeyError(f"the NumPy reference has no activation {name!r}")


def layer_forward(layer: P.Layer, weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """One primitive layer in eval mode (running statistics, dropout off)."""
    w = lambda key: weights[f"{layer.name}/{key}"]  # noqa: E731
    if isinstance(layer, P.Flatten):
        return x.reshape(x.shape[0], -1)  # (N, H*W*C) in (H, W, C) order
    if isinstance(layer, P.Dense):
        return x @ w("kernel") + w("bias")
    if isinstance(layer, P.Conv2D):
        patches = _windows(x, layer.kernel_size, 1, layer.padding, 0.0)  # (N, Ho, Wo, C, kh, kw)
        return np.einsum("nhwcij,ijcf->nhwf", patches, w("kernel"), optimize=True) + w("bias")
    if isinstance(layer, P.Activation):
        params = layer.activation.model_dump(exclude={"name"})
        return activation(layer.activation.name, x, params)
    if isinstance(layer, P.BatchNormalization):
        return (x - w("mean")) / np.sqrt(w("variance") + layer.epsilon) * w("scale") + w("offset")
    if isinstance(layer, P.MaxPool2D):
        return _windows(x, layer.size, layer.stride, layer.padding, -np.inf).max(axis=(-2, -1))
    if isinstance(layer, P.Dropout):
        return x
    raise TypeError(f"the NumPy reference cannot run layer {layer.name} ({type(layer).__name__})")


def forward(plan: tuple[P.Layer, ...], weights: dict[str, np.ndarray], x: np.ndarray, *, outputs: bool = False):
    """Eval-mode logits (N, C) of x (N, 28, 28, 1) in float64; with outputs=True also every layer's output."""
    h = np.asarray(x, dtype=np.float64)
    weights = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    per_layer = {}
    for layer in plan:
        h = layer_forward(layer, weights, h)
        per_layer[layer.name] = h
    return (h, per_layer) if outputs else h
