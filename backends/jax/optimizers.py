"""The catalog's optimizers as Optax transforms that stop short of the learning rate.

`direction(optimizer, dtype)` is the chain [clip_global_norm] -> d_t of the catalog formula,
and `step` applies p_t = p_{t-1} - lr_t d_t, with lr_t as data: a changing rate never
retraces. optax's own aliases (optax.sgd, optax.adam, ...) also multiply by -lr_t last, so
d_t is the same transform wherever the alias equals the catalog. Where it does not, the
transform is written here:

- rmsprop with momentum: optax.rmsprop puts scale_by_learning_rate BEFORE the momentum trace
  (b = momentum b + lr g / denominator, Keras' form); the catalog (torch) keeps lr outside the
  buffer, so here it is scale_by_rms -> trace and lr last. Both rmsprop variants take
  eps_in_sqrt=False (optax's default True puts epsilon inside the root).
- adagrad: optax.scale_by_rss computes g / sqrt(s + eps) (epsilon inside the root); the
  catalog has g / (sqrt(s) + eps), so `scale_by_adagrad` is written here.
- nadam: optax.nadam is adam(nesterov=True) with no momentum schedule; the catalog is torch's
  NAdam with mu_t = beta_1 (1 - 0.5 * 0.96^(t psi)), so `scale_by_nadam` is written here.
- clip_global_norm: optax.clip_by_global_norm scales by c / ||g|| only when ||g|| >= c, the same
  factor min(1, c / ||g||) as the catalog but computed as (g / ||g||) * c; `clip_global_norm`
  here multiplies by min(1, c / ||g||) itself.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def direction(optimizer, dtype: Any) -> optax.GradientTransformation:
    """d_t of the catalog formula (clipped first when clip_global_norm is set), every hyperparameter explicit.

    sgd / momentum / nesterov: optax.trace: b_t = g_t + momentum b_{t-1}; d_t = g_t + momentum b_t
    if nesterov else b_t (torch form, dampening 0); momentum 0 is plain SGD (identity).
    adam: optax.scale_by_adam with eps_root=0: d_t = m_hat / (sqrt(v_hat) + eps).
    adamw: scale_by_adam -> optax.add_decayed_weights: d_t = adam_t + weight_decay p_{t-1}, so
    the decay is multiplied by lr_t too (p - lr wd p - lr adam, the catalog's order of terms).
    rmsprop: optax.scale_by_rms (plain) or optax.scale_by_stddev (centered: sqrt(v - gbar^2)),
    eps_in_sqrt=False, initial_scale=0, bias_correction=False; momentum > 0 adds optax.trace.
    adadelta: optax.scale_by_adadelta (rho, eps): the catalog's formula exactly.
    adamax: optax.scale_by_adamax: u_t = max(beta_2 u, |g| + eps), d_t = m_hat / u_t.
    adagrad, nadam: written here (see the module docstring).
    """
    core = _core(optimizer, dtype)
    if optimizer.clip_global_norm is None:
        return core
    return optax.chain(clip_global_norm(optimizer.clip_global_norm), core)


def _core(optimizer, dtype: Any) -> optax.GradientTransformation:
    name = optimizer.name
    if name in ("sgd", "momentum", "nesterov"):
        nesterov = name == "nesterov" or (name == "sgd" and optimizer.nesterov)
        if optimizer.momentum == 0.0:
            return optax.identity()
        return optax.trace(decay=optimizer.momentum, nesterov=nesterov, accumulator_dtype=dtype)
    if name in ("adam", "adamw"):
        adam = optax.scale_by_adam(
            b1=optimizer.beta_1, b2=optimizer.beta_2, eps=optimizer.epsilon, eps_root=0.0, mu_dtype=dtype, nesterov=False
        )
        if name == "adam":
            return adam
        return optax.chain(adam, optax.add_decayed_weights(weight_decay=optimizer.weight_decay, mask=None))
    if name == "rmsprop":
        scale = optax.scale_by_stddev if optimizer.centered else optax.scale_by_rms
        rms = scale(decay=optimizer.rho, eps=optimizer.epsilon, initial_scale=0.0, eps_in_sqrt=False, bias_correction=False)
        if optimizer.momentum == 0.0:
            return rms
        return optax.chain(rms, optax.trace(decay=optimizer.momentum, nesterov=False, accumulator_dtype=dtype))
    if name == "adagrad":
        return scale_by_adagrad(optimizer.initial_accumulator_value, optimizer.epsilon)
    if name == "adadelta":
        return optax.scale_by_adadelta(rho=optimizer.rho, eps=optimizer.epsilon)
    if name == "adamax":
        return optax.scale_by_adamax(b1=optimizer.beta_1, b2=optimizer.beta_2, eps=optimizer.epsilon)
    if name == "nadam":
        return scale_by_nadam(optimizer.beta_1, optimizer.beta_2, optimizer.epsilon, optimizer.momentum_decay, dtype)
    raise ValueError(f"unsupported optimizer {name!r}")


def clip_global_norm(max_norm: float) -> optax.GradientTransformation:
    """g <- g * min(1, c / ||g||), ||g|| the L2 norm over every leaf (the catalog's form: no epsilon).

    ||g|| = 0 gives c / 0 = inf and a factor of 1, so zero gradients pass unchanged.
    """

    def update(updates, state, params=None):
        del params
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(updates)))
        factor = jnp.minimum(1.0, max_norm / norm)
        return jax.tree.map(lambda g: g * factor.astype(g.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class AdagradState(NamedTuple):
    sum_of_squares: Any


def scale_by_adagrad(initial_accumulator_value: float, eps: float) -> optax.GradientTransformation:
    """s_t = s_{t-1} + g^2 (s_0 = initial_accumulator_value); d_t = g / (sqrt(s_t) + eps), torch's form.

    References: Duchi et al., "Adaptive Subgradient Methods", JMLR 2011.
    """

    def init(params):
        return AdagradState(jax.tree.map(lambda p: jnp.full(p.shape, initial_accumulator_value, p.dtype), params))

    def update(updates, state, params=None):
        del params
        sums = jax.tree.map(lambda g, s: s + g * g, updates, state.sum_of_squares)
        return jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), updates, sums), AdagradState(sums)

    return optax.GradientTransformation(init, update)


class NadamState(NamedTuple):
    count: jax.Array  # int32, t - 1 before the update
    mu_product: jax.Array  # prod_{i <= t} mu_i, in the parameters' dtype (torch keeps a tensor too)
    mu: Any
    nu: Any


def scale_by_nadam(b1: float, b2: float, eps: float, momentum_decay: float, dtype: Any) -> optax.GradientTransformation:
    """torch's NAdam: mu_t = b1 (1 - 0.5 * 0.96^(t psi)), P_t = prod_{i<=t} mu_i, denominator
    sqrt(v_t / (1 - b2^t)) + eps, d_t = (1 - mu_t) / (1 - P_t) g / denominator
    + mu_{t+1} / (1 - P_t mu_{t+1}) m_t / denominator.

    The schedule scalars are computed in float64 from the exact step count and cast to dtype
    where they meet the arrays.

    References: Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop 2016.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return NadamState(jnp.zeros([], jnp.int32), jnp.ones([], dtype), zeros, jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params
        count = state.count + 1
        t = count.astype(jnp.float64)
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * momentum_decay))
        mu_product = state.mu_product * mu.astype(dtype)
        product = mu_product.astype(jnp.float64)
        gradient_coefficient = ((1.0 - mu) / (1.0 - product)).astype(dtype)
        momentum_coefficient = (mu_next / (1.0 - product * mu_next)).astype(dtype)
        bias_correction = (1.0 - b2**t).astype(dtype)
        m = optax.tree.update_moment(updates, state.mu, b1, 1)
        v = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)

        def d(g, m, v):
            denominator = jnp.sqrt(v / bias_correction) + eps
            return gradient_coefficient * g / denominator + momentum_coefficient * m / denominator

        return jax.tree.map(d, updates, m, v), NadamState(count, mu_product, m, v)

    return optax.GradientTransformation(init, update)


def step(tx: optax.GradientTransformation, params: Any, grads: Any, opt_state: Any, learning_rate: jax.Array):
    """One optimizer step: (p_t, state_t) with p_t = p_{t-1} + (-lr_t) d_t, leaf by leaf in the parameters' dtype."""
    step_direction, opt_state = tx.update(grads, opt_state, params)
    return apply(params, step_direction, learning_rate), opt_state


def apply(params: Any, step_direction: Any, learning_rate: jax.Array) -> Any:
    """p_t = p_{t-1} + (-lr_t) d_t, leaf by leaf, in the parameters' dtype."""
    return optax.apply_updates(params, jax.tree.map(lambda d: -learning_rate * d, step_direction))


def slots(optimizer, opt_state: Any) -> dict[str, Any]:
    """The optimizer state as the catalog's per-parameter slots {slot: params-shaped tree}, named
    as in backends/numpy/optimizers.py; only the slots the formula uses exist in the state.

    optax.trace's trace -> "momentum" (sgd, and rmsprop's momentum buffer: lr is applied after
    the transform, so it holds b_t = momentum b_{t-1} + g_t / denominator, the catalog's b);
    scale_by_adam mu/nu -> "m"/"v" (scale_by_adamax keeps the same state: mu/nu -> "m"/"u");
    scale_by_rms nu -> "square"; scale_by_stddev mu/nu -> "mean"/"square"; scale_by_adadelta
    e_g/e_x -> "square"/"delta"; AdagradState -> "sum"; NadamState mu/nu -> "m"/"v".
    """
    found: dict[str, Any] = {}

    def visit(state):
        if isinstance(state, optax.TraceState):
            found["momentum"] = state.trace
        elif isinstance(state, optax.ScaleByAdamState):
            found.update(m=state.mu, **({"u": state.nu} if optimizer.name == "adamax" else {"v": state.nu}))
        elif isinstance(state, optax.ScaleByRStdDevState):
            found.update(mean=state.mu, square=state.nu)
        elif isinstance(state, optax.ScaleByRmsState):
            found["square"] = state.nu
        elif isinstance(state, optax.ScaleByAdaDeltaState):
            found.update(square=state.e_g, delta=state.e_x)
        elif isinstance(state, AdagradState):
            found["sum"] = state.sum_of_squares
        elif isinstance(state, NadamState):
            found.update(m=state.mu, v=state.nu)
        elif isinstance(state, (tuple, list)) and not hasattr(state, "_fields"):  # optax.chain: a tuple of states
            for inner in state:
                visit(inner)
        elif not isinstance(state, (optax.EmptyState, optax.AddDecayedWeightsState)):
            raise TypeError(f"unknown optimizer state {type(state).__name__}")

    visit(opt_state)
    return found
