"""The catalog's optimizers as Optax transforms that stop short of the learning rate."""

from typing import Any

import jax
import optax


def direction(optimizer, dtype: Any) -> optax.GradientTransformation:
    """d_t of the catalog formula, every hyperparameter explicit; `apply` then takes the rate.

    The per-step rate enters the compiled step as data, so a changing rate never retraces;
    optax.sgd / optax.adam with a schedule also multiply by -lr_t last, so this is the same.

    sgd: optax.trace: b_t = g_t + momentum b_{t-1}; d_t = g_t + momentum b_t if nesterov else
    b_t, the catalog's (torch) form; momentum 0 is plain SGD (identity, d_t = g_t).
    adam: optax.scale_by_adam with eps_root=0: d_t = m_hat / (sqrt(v_hat) + eps), epsilon
    outside the root as in torch and the catalog (not Keras' epsilon hat).
    """
    if optimizer.name == "sgd":
        if optimizer.momentum == 0.0:
            return optax.identity()
        return optax.trace(decay=optimizer.momentum, nesterov=optimizer.nesterov, accumulator_dtype=dtype)
    if optimizer.name == "adam":
        return optax.scale_by_adam(
            b1=optimizer.beta_1, b2=optimizer.beta_2, eps=optimizer.epsilon, eps_root=0.0, mu_dtype=dtype, nesterov=False
        )
    raise ValueError(f"unsupported optimizer {optimizer.name!r}")


def apply(params: Any, step_direction: Any, learning_rate: jax.Array) -> Any:
    """p_t = p_{t-1} + (-lr_t) d_t, leaf by leaf, in the parameters' dtype."""
    return optax.apply_updates(params, jax.tree.map(lambda d: -learning_rate * d, step_direction))
