"""The catalog's optimizers as Optax transforms that stop short of the learning rate; `step` applies -lr_t.

optax's own aliases also multiply by -lr_t last, so the transform is optax's wherever its alias is the catalog's
formula; the rest is written here (see make_optimizer).
"""

from typing import Any, NamedTuple

import numpy as np

from backends.jax.framework import jax, jnp, optax
from experiments.catalog.optimizers import state_slots as used_slots


def make_optimizer(optimizer, dtype: Any, native: bool = False, native_clipping: bool = False) -> optax.GradientTransformation:
    """The catalog entry's update direction, clipped first when clip_global_norm is set; every argument explicit.

    native (implementation "native"): optax's own alias instead (`native_alias`), which applies the learning rate
    itself: step with `native_step`. native_clipping: optax.clip_by_global_norm instead of the catalog's factor.

    Where optax differs from the catalog, and what pins it:
    - adam, adamw: eps_root=0; adamw chains add_decayed_weights, so lr_t multiplies the decay too.
    - rmsprop: eps_in_sqrt=False (optax's default puts epsilon inside the root), initial_scale=0,
      bias_correction=False; optax.rmsprop scales by the rate BEFORE the momentum trace (Keras' form), so here the
      trace follows scale_by_rms / scale_by_stddev and the rate comes last.
    - adagrad: optax.scale_by_rss puts epsilon inside the root: `scale_by_adagrad` is written here.
    - nadam: optax.nadam has no momentum schedule: `scale_by_nadam` is written here.
    - clip_global_norm: optax.clip_by_global_norm computes its factor another way: `clip_global_norm` here.
    """
    core = native_alias(optimizer) if native else _core(optimizer, dtype)
    if optimizer.clip_global_norm is None:
        return core
    clip = optax.clip_by_global_norm if native_clipping else clip_global_norm
    return optax.chain(clip(optimizer.clip_global_norm), core)


def native_alias(optimizer) -> optax.GradientTransformation:
    """optax's alias for the entry with every value the spec states, in optax's parameterisation, and optax's
    defaults for the rest (eps_root, eps_in_sqrt, initial_scale, bias_correction, mu_dtype, ...). The learning rate
    is the one hyperparameter injected as state (optax.inject_hyperparams), so `native_step` sets each step's rate
    without retracing; the others are static, as if passed to the alias directly.

    What differs from the catalog is optax's own doing: adagrad and rmsprop put epsilon inside the root, rmsprop
    scales by the rate before its momentum trace (so its "momentum" slot holds -lr-scaled values), nadam is
    Adam with a Nesterov step and no momentum schedule (momentum_decay has no optax parameter; it is not used).
    """
    factory, kwargs = _ALIASES[optimizer.name](optimizer)
    return optax.inject_hyperparams(factory, static_args=tuple(kwargs))(learning_rate=0.0, **kwargs)


_ALIASES = {
    "sgd": lambda o: (optax.sgd, {"momentum": o.momentum, "nesterov": o.nesterov}),
    "momentum": lambda o: (optax.sgd, {"momentum": o.momentum, "nesterov": False}),
    "nesterov": lambda o: (optax.sgd, {"momentum": o.momentum, "nesterov": True}),
    "adagrad": lambda o: (optax.adagrad, {"initial_accumulator_value": o.initial_accumulator_value, "eps": o.epsilon}),
    "rmsprop": lambda o: (optax.rmsprop, {"decay": o.rho, "eps": o.epsilon, "momentum": o.momentum,
                                          "centered": o.centered}),
    "adam": lambda o: (optax.adam, {"b1": o.beta_1, "b2": o.beta_2, "eps": o.epsilon}),
    "adamw": lambda o: (optax.adamw, {"b1": o.beta_1, "b2": o.beta_2, "eps": o.epsilon, "weight_decay": o.weight_decay}),
    "adadelta": lambda o: (optax.adadelta, {"rho": o.rho, "eps": o.epsilon}),
    "adamax": lambda o: (optax.adamax, {"b1": o.beta_1, "b2": o.beta_2, "eps": o.epsilon}),
    "nadam": lambda o: (optax.nadam, {"b1": o.beta_1, "b2": o.beta_2, "eps": o.epsilon}),
}


def native_step(tx: optax.GradientTransformation, params: Any, grads: Any, opt_state: Any, learning_rate: jax.Array):
    """One update through a native_alias transform: the step's rate goes into the injected hyperparameter (in the
    dtype optax chose for it, the parameters'), then optax's update and apply_updates."""
    updates, opt_state = tx.update(grads, _with_learning_rate(opt_state, learning_rate), params)
    return optax.apply_updates(params, updates), opt_state


def _with_learning_rate(state: Any, learning_rate: jax.Array) -> Any:
    if isinstance(state, optax.InjectStatefulHyperparamsState):
        hyperparams = dict(state.hyperparams)
        hyperparams["learning_rate"] = jnp.asarray(learning_rate, hyperparams["learning_rate"].dtype)
        return state._replace(hyperparams=hyperparams)
    if isinstance(state, tuple) and not hasattr(state, "_fields"):  # optax.chain
        return tuple(_with_learning_rate(inner, learning_rate) for inner in state)
    return state


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
    """The catalog's factor, multiplied in (optax.clip_by_global_norm computes (g / ||g||) max_norm). A zero
    gradient gives max_norm / 0 = inf and a factor of 1."""

    def update(updates, state, params=None):
        del params
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(updates)))
        factor = jnp.minimum(1.0, max_norm / norm)
        return jax.tree.map(lambda g: g * factor.astype(g.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class AdagradState(NamedTuple):
    sum_of_squares: Any


def scale_by_adagrad(initial_accumulator_value: float, eps: float) -> optax.GradientTransformation:
    """The catalog's adagrad direction, epsilon outside the root (torch's form)."""

    def init(params):
        return AdagradState(jax.tree.map(lambda p: jnp.full(p.shape, initial_accumulator_value, p.dtype), params))

    def update(updates, state, params=None):
        del params
        sums = jax.tree.map(lambda g, s: s + g * g, updates, state.sum_of_squares)
        return jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), updates, sums), AdagradState(sums)

    return optax.GradientTransformation(init, update)


class NadamState(NamedTuple):
    count: jax.Array  # int32, t - 1 before the update
    mu_product: jax.Array  # in the parameters' dtype (torch keeps a tensor too)
    mu: Any
    nu: Any


def scale_by_nadam(b1: float, b2: float, eps: float, momentum_decay: float, dtype: Any) -> optax.GradientTransformation:
    """The catalog's nadam direction (torch's momentum schedule). The schedule scalars are computed in float64 from
    the exact step count and cast to dtype where they meet the arrays."""

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
    """One update (params, opt_state): the direction times -lr_t added leaf by leaf, in the parameters' dtype."""
    direction, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, jax.tree.map(lambda d: -learning_rate * d, direction)), opt_state


_FIELD = {  # catalog slot -> the optax state field that holds it (adadelta's square: e_g)
    "momentum": "trace", "m": "mu", "v": "nu", "u": "nu", "mean": "mu", "square": "nu", "delta": "e_x",
    "sum": "sum_of_squares",
}


def state_slots(optimizer, opt_state: Any) -> dict[str, Any]:
    """{catalog slot: params-shaped tree} for the slots experiments.catalog.optimizers.state_slots names."""
    fields: dict[str, Any] = {}

    def visit(state):
        if isinstance(state, optax.InjectStatefulHyperparamsState):  # a native alias: optax's state inside
            visit(state.inner_state)
        elif hasattr(state, "_fields"):  # one transform's state (a NamedTuple)
            fields.update(state._asdict())
        else:  # optax.chain: a tuple of states
            for inner in state:
                visit(inner)

    visit(opt_state)
    return {slot: fields["e_g" if (optimizer.name, slot) == ("adadelta", "square") else _FIELD[slot]]
            for slot in used_slots(optimizer)}


def native_schedule(schedule, base_rate: float, steps_per_epoch: int):
    """implementation = "native": optax's own schedule for the spec's schedule (constant_schedule, exponential_decay,
    polynomial_schedule, cosine_decay_schedule, piecewise_constant_schedule), evaluated at each step count as an
    optax optimizer evaluates it, as a function of an int64 array of steps to their rates; None where optax has no
    built-in (inverse_time; piecewise factors with a 0 before the last, or a boundary that is not a whole step).

    optax's piecewise_constant_schedule multiplies the initial value by each boundary's scale (the ratio of
    consecutive factors here), where the catalog indexes the factor directly."""
    name = schedule.name
    period = schedule.period(steps_per_epoch) if hasattr(schedule, "period") else None
    if name == "constant":
        function = optax.constant_schedule(base_rate)
    elif name == "exponential":
        function = optax.exponential_decay(base_rate, transition_steps=period, decay_rate=schedule.decay_rate,
                                           staircase=schedule.staircase)
    elif name == "polynomial":
        function = optax.polynomial_schedule(base_rate, end_value=schedule.end_factor * base_rate, power=schedule.power,
                                             transition_steps=period)
    elif name == "cosine":
        function = optax.cosine_decay_schedule(base_rate, decay_steps=period, alpha=schedule.alpha)
    elif name == "piecewise_constant":
        bounds = schedule.boundaries if schedule.boundaries is not None else [b * steps_per_epoch for b in schedule.boundary_epochs]
        factors = schedule.factors_
        if any(f == 0.0 for f in factors[:-1]) or not all(float(b).is_integer() for b in bounds) or len(set(bounds)) < len(bounds):
            return None
        scales = {int(b): factors[k + 1] / factors[k] for k, b in enumerate(bounds)}
        function = optax.piecewise_constant_schedule(base_rate * factors[0], scales)
    else:
        return None
    def rates(steps):  # optax counts in int32; constant_schedule returns one number whatever it is given
        return np.broadcast_to(np.asarray(function(jnp.asarray(steps, dtype=jnp.int32)), dtype=np.float64), np.shape(steps))

    return rates
