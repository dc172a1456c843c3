"""The plan's model in NumPy, written to be read: forward and backward of every primitive layer, and the eval-mode
forward of a whole plan (at float64, the oracle the other backends are checked against).

Each layer's pair works on channels-last arrays and canonical parameters:
`layer_forward(layer, params, x, train, noise) -> (y, cache)` and
`layer_backward(layer, params, cache, dy) -> (dx, grads)`, grads keyed like params.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from backends.numpy.activations import activation_vjp
from backends.numpy.weights import layer_params
from experiments.spec import plan as P
from experiments.spec.plan import same_padding


def _pad_hw(x: np.ndarray, window: int, stride: int, padding: str, fill: float) -> tuple[np.ndarray, tuple[int, int]]:
    """x padded on H and W for "same" (nothing for "valid"), and the (top, left) offsets."""
    if padding != "same":
        return x, (0, 0)
    (top, bottom), (left, right) = same_padding(x.shape[1], window, stride), same_padding(x.shape[2], window, stride)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill), (top, left)


def _windows(xp: np.ndarray, window: int, stride: int) -> np.ndarray:
    """(N, Ho, Wo, C, k, k) views of the padded input."""
    return sliding_window_view(xp, (window, window), axis=(1, 2))[:, ::stride, ::stride]


def _patch_matrix(xp: np.ndarray, k: int) -> np.ndarray:
    """im2col: row (n, h, w) holds xp[n, h + i, w + j, c] in (i, j, c) order, the order of a
    (kh, kw, C, F) kernel reshaped to (kh * kw * C, F); stride 1."""
    windows = sliding_window_view(xp, (k, k), axis=(1, 2))  # (N, Ho, Wo, C, kh, kw)
    n, out_h, out_w, c = windows.shape[:4]
    return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(n * out_h * out_w, k * k * c)


def layer_forward(layer: P.Layer, params: dict, x: np.ndarray, train: bool, noise: dict) -> tuple[np.ndarray, object]:
    """One layer forward. noise holds the dropout masks drawn by the trainer (keyed by layer name)."""
    if isinstance(layer, P.Flatten):
        return x.reshape(x.shape[0], -1), x.shape  # (N, H*W*C): (H, W, C) order
    if isinstance(layer, P.Dense):
        return x @ params["kernel"] + params["bias"], x
    if isinstance(layer, P.Conv2D):
        xp, _ = _pad_hw(x, layer.kernel_size, 1, layer.padding, 0.0)
        patches = _patch_matrix(xp, layer.kernel_size)  # (N * Ho * Wo, kh * kw * C)
        n, out_h, out_w = xp.shape[0], xp.shape[1] - layer.kernel_size + 1, xp.shape[2] - layer.kernel_size + 1
        y = (patches @ params["kernel"].reshape(-1, layer.filters)).reshape(n, out_h, out_w, layer.filters) + params["bias"]
        return y, (x.shape, xp.shape, patches)
    if isinstance(layer, P.Activation):
        slopes = None
        if train and layer.activation.name == "rrelu":
            slopes = noise[layer.name]  # per-element slopes drawn by the trainer
        y, _, _ = activation_vjp(layer.activation, x, np.zeros((), dtype=x.dtype), params, slopes)
        return y, (x, slopes)
    if isinstance(layer, P.BatchNormalization):
        return _batch_norm_forward(layer, params, x, train)
    if isinstance(layer, P.MaxPool2D):
        xp, offsets = _pad_hw(x, layer.size, layer.stride, layer.padding, -np.inf)
        windows = _windows(xp, layer.size, layer.stride)  # (N, Ho, Wo, C, k, k)
        y = windows.max(axis=(-2, -1))
        return y, (x.shape, xp.shape, offsets, windows, y)
    if isinstance(layer, P.Dropout):
        if not train:
            return x, None
        mask = noise[layer.name]  # 1/(1-rate) where kept, 0 where dropped (inverted dropout)
        return x * mask, mask
    raise TypeError(f"the NumPy backend cannot run layer {layer.name} ({type(layer).__name__})")


def channel_sum(a: np.ndarray) -> np.ndarray:
    """The sum over every axis but the last (channels), by pairwise summation whatever a's memory layout.

    NumPy sums pairwise only along a contiguous axis; over the outer axes of a C-ordered
    (N, H, W, C) array it adds rows one after another, and for 50,176 values per channel (seed-cnn's
    first layer) that is ~1e-13 relative off in float64 against ~1e-16 here.
    """
    return np.ascontiguousarray(a.reshape(-1, a.shape[-1]).T).sum(axis=1)


def _batch_norm_forward(layer: P.BatchNormalization, params: dict, x: np.ndarray, train: bool):
    """y = scale * (x - mu) / sqrt(var + eps) + offset over all axes but the last.

    Train mode uses the batch's mean and biased variance and returns the new running
    statistics r <- momentum * r + (1 - momentum) * batch (in the cache, applied by the trainer).
    """
    if train:
        count = math.prod(x.shape[:-1])
        mean = channel_sum(x) / count
        var = channel_sum((x - mean) ** 2) / count
    else:
        mean, var = params["mean"], params["variance"]
    inv_std = 1.0 / np.sqrt(var + layer.epsilon)
    x_hat = (x - mean) * inv_std
    y = params["scale"] * x_hat + params["offset"]
    m = layer.momentum
    running = {"mean": m * params["mean"] + (1 - m) * mean, "variance": m * params["variance"] + (1 - m) * var} if train else None
    return y, (x_hat, inv_std, running)


def layer_backward(layer: P.Layer, params: dict, cache: object, dy: np.ndarray) -> tuple[np.ndarray, dict]:
    """One layer backward: the gradient with respect to the input and to each parameter."""
    if isinstance(layer, P.Flatten):
        return dy.reshape(cache), {}
    if isinstance(layer, P.Dense):
        x = cache
        return dy @ params["kernel"].T, {"kernel": x.T @ dy, "bias": channel_sum(dy)}
    if isinstance(layer, P.Conv2D):
        return _conv_backward(layer, params, cache, dy)
    if isinstance(layer, P.Activation):
        x, slopes = cache
        _, dx, dparams = activation_vjp(layer.activation, x, dy, params, slopes)
        return dx, dparams
    if isinstance(layer, P.BatchNormalization):
        x_hat, inv_std, running = cache
        count = math.prod(dy.shape[:-1])
        grads = {"scale": channel_sum(dy * x_hat), "offset": channel_sum(dy)}
        if running is None:  # eval mode: an affine map with fixed statistics
            return dy * params["scale"] * inv_std, grads
        g = dy * params["scale"]  # gradient with respect to x_hat, through the batch statistics:
        dx = inv_std / count * (count * g - channel_sum(g) - x_hat * channel_sum(g * x_hat))
        return dx, grads
    if isinstance(layer, P.MaxPool2D):
        return _max_pool_backward(layer, cache, dy), {}
    if isinstance(layer, P.Dropout):
        return (dy if cache is None else dy * cache), {}
    raise TypeError(f"the NumPy backend cannot run layer {layer.name} ({type(layer).__name__})")


def _conv_backward(layer: P.Conv2D, params: dict, cache, dy: np.ndarray):
    """y[n,h,w,f] = sum_{i,j,c} xp[n,h+i,w+j,c] K[i,j,c,f] + b[f], so
    dK[i,j,c,f] = sum_{n,h,w} xp[n,h+i,w+j,c] dy[n,h,w,f] (patches^T dy) and
    dxp[n,h+i,w+j,c] += sum_f dy[n,h,w,f] K[i,j,c,f] for every tap (i, j)."""
    x_shape, xp_shape, patches = cache
    kernel = params["kernel"]
    k, channels = layer.kernel_size, x_shape[-1]
    dy2 = dy.reshape(-1, layer.filters)
    grads = {"kernel": (patches.T @ dy2).reshape(kernel.shape), "bias": channel_sum(dy)}
    dpatches = (dy2 @ kernel.reshape(-1, layer.filters).T).reshape(*dy.shape[:3], k, k, channels)
    dxp = np.zeros(xp_shape, dtype=dy.dtype)
    out_h, out_w = dy.shape[1], dy.shape[2]
    for i in range(k):
        for j in range(k):
            dxp[:, i : i + out_h, j : j + out_w, :] += dpatches[:, :, :, i, j, :]
    top, left = (same_padding(x_shape[1], k, 1)[0], same_padding(x_shape[2], k, 1)[0]) if layer.padding == "same" else (0, 0)
    return dxp[:, top : top + x_shape[1], left : left + x_shape[2], :], grads


def _max_pool_backward(layer: P.MaxPool2D, cache, dy: np.ndarray) -> np.ndarray:
    """The gradient goes to the first maximum of each window (row-major), as torch and XLA route it."""
    x_shape, xp_shape, (top, left), windows, y = cache
    n, out_h, out_w, c, k, _ = windows.shape
    flat = windows.reshape(n, out_h, out_w, c, k * k)
    first = np.argmax(flat == y[..., None], axis=-1)  # (N, Ho, Wo, C)
    di, dj = np.divmod(first, k)
    rows = np.arange(out_h)[None, :, None, None] * layer.stride + di
    cols = np.arange(out_w)[None, None, :, None] * layer.stride + dj
    dxp = np.zeros(xp_shape, dtype=dy.dtype)
    np.add.at(dxp, (np.arange(n)[:, None, None, None], rows, cols, np.arange(c)[None, None, None, :]), dy)
    return dxp[:, top : top + x_shape[1], left : left + x_shape[2], :]


def forward(plan: tuple[P.Layer, ...], weights: dict[str, np.ndarray], x: np.ndarray, *, outputs: bool = False, dtype="float64"):
    """Eval-mode logits (N, C) of x (N, 28, 28, 1), computed in dtype (float64: the oracle).

    With outputs=True also every layer's output, keyed by layer name.
    """
    h = np.asarray(x, dtype=dtype)
    weights = {k: np.asarray(v, dtype=dtype) for k, v in weights.items()}
    per_layer = {}
    for layer in plan:
        h, _ = layer_forward(layer, layer_params(layer, weights), h, train=False, noise={})
        per_layer[layer.name] = h
    return (h, per_layer) if outputs else h
