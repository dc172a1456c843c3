"""Every catalog activation in NumPy: value and vector-Jacobian product, formulas as in experiments.catalog.activations.

`activation_vjp(entry, x, cotangent, params, slopes)` returns (y, dx, dparams); params holds
prelu's alpha, slopes rrelu's per-element training slopes (None in eval mode).
"""

import math

import numpy as np
from scipy.special import erf

from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE

GELU_TANH_C = math.sqrt(2.0 / math.pi)
GELU_TANH_K = 0.044715


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _elementwise(name: str, x: np.ndarray, entry) -> tuple[np.ndarray, np.ndarray]:
    """(value, derivative) of an elementwise activation without parameters."""
    one = np.ones_like(x)
    if name == "linear":
        return x, one
    if name == "relu":
        return np.maximum(x, 0.0), (x > 0).astype(x.dtype)
    if name == "sigmoid":
        s = sigmoid(x)
        return s, s * (1.0 - s)
    if name == "tanh":
        t = np.tanh(x)
        return t, 1.0 - t * t
    if name == "leaky_relu":
        slope = x.dtype.type(entry.negative_slope)
        return np.where(x > 0, x, slope * x), np.where(x > 0, one, slope)
    if name in ("elu", "selu"):
        alpha, scale = (entry.alpha, 1.0) if name == "elu" else (SELU_ALPHA, SELU_SCALE)
        alpha, scale = x.dtype.type(alpha), x.dtype.type(scale)
        negative = np.minimum(x, 0.0)  # keeps exp from overflowing on the unused branch
        return scale * np.where(x > 0, x, alpha * np.expm1(negative)), scale * np.where(x > 0, one, alpha * np.exp(negative))
    if name == "softplus":
        beta = x.dtype.type(entry.beta)
        return np.logaddexp(beta * x, x.dtype.type(0.0)) / beta, sigmoid(beta * x)
    if name == "hard_sigmoid":
        inside = (x > -3) & (x < 3)
        return np.clip(x / 6.0 + 0.5, 0.0, 1.0), np.where(inside, x.dtype.type(1.0 / 6.0), x.dtype.type(0.0))
    if name == "silu":
        s = sigmoid(x)
        return x * s, s * (1.0 + x * (1.0 - s))
    if name == "gelu" and entry.approximate == "none":
        cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
        return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    if name == "gelu":
        inner = GELU_TANH_C * (x + GELU_TANH_K * x**3)
        t = np.tanh(inner)
        return 0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_TANH_C * (1.0 + 3.0 * GELU_TANH_K * x * x)
    if name == "step":
        return (x > 0).astype(x.dtype), np.zeros_like(x)
    if name == "sign":
        return np.sign(x), np.zeros_like(x)
    raise KeyError(f"the NumPy backend has no activation {name!r}")


def activation_vjp(entry, x: np.ndarray, cotangent: np.ndarray, params: dict | None = None, slopes: np.ndarray | None = None):
    """(y, dx, dparams) for y = act(x) and the cotangent dL/dy."""
    name = entry.name
    if name == "maxout":
        groups = x.reshape(*x.shape[:-1], x.shape[-1] // entry.pieces, entry.pieces)
        first = groups.argmax(axis=-1)[..., None]  # argmax returns the first maximum
        y = np.take_along_axis(groups, first, axis=-1)[..., 0]
        dx = np.zeros_like(groups)
        np.put_along_axis(dx, first, cotangent[..., None], axis=-1)
        return y, dx.reshape(x.shape), {}
    if name == "prelu":
        alpha = params["alpha"]  # (1,) or (C,), broadcast on the last axis
        y = np.where(x > 0, x, alpha * x)
        dalpha = np.where(x > 0, 0.0, x) * cotangent
        dalpha = dalpha.reshape(-1, x.shape[-1]).sum(axis=0)
        return y, cotangent * np.where(x > 0, 1.0, alpha).astype(x.dtype), {"alpha": dalpha if alpha.size > 1 else dalpha.sum(keepdims=True)}
    if name == "rrelu":
        slope = slopes if slopes is not None else x.dtype.type(entry.eval_slope)
        return np.where(x > 0, x, slope * x), cotangent * np.where(x > 0, 1.0, slope).astype(x.dtype), {}
    y, derivative = _elementwise(name, x, entry)
    return y.astype(x.dtype, copy=False), (cotangent * derivative).astype(x.dtype, copy=False), {}
