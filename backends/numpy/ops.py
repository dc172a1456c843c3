"""Op-level functions of the NumPy backend (the oracle side of the op parity tests), per backends.base."""

import numpy as np

from backends.numpy.activations import activation_vjp as _activation_vjp
from backends.numpy.losses import make_loss
from backends.numpy.optimizers import make_optimizer


def activation_vjp(entry, x, cotangent, dtype, params=None, training=False, seed=0):
    """(y, dx, dparams); rrelu in training draws its slopes from np.random.default_rng(seed)."""
    x = np.asarray(x, dtype=dtype)
    cotangent = np.asarray(cotangent, dtype=dtype)
    params = {k: np.asarray(v, dtype=dtype) for k, v in (params or {}).items()}
    slopes = None
    if training and entry.name == "rrelu":
        slopes = np.random.default_rng(seed).uniform(entry.lower, entry.upper, x.shape).astype(dtype)
    return _activation_vjp(entry, x, cotangent, params, slopes)


def loss_vjp(loss, output_activation, z, y, dtype):
    """(mean loss, d mean loss / dz)."""
    per_example, gradient = make_loss(loss, output_activation)(np.asarray(z, dtype), np.asarray(y, dtype))
    return float(per_example.mean()), gradient


def optimizer_steps(optimizer, params, grads, learning_rates, dtype):
    """The parameters after each of len(grads) steps."""
    current = {k: np.array(v, dtype=dtype) for k, v in params.items()}
    rule = make_optimizer(optimizer, current)
    history = []
    for step_grads, lr in zip(grads, learning_rates):
        rule.step(current, {k: np.asarray(v, dtype=dtype) for k, v in step_grads.items()}, float(lr))
        history.append({k: v.copy() for k, v in current.items()})
    return history
