"""Op-level functions for the parity tests, built from the very code the JAX Trainer trains with.

activation_vjp runs model.ActivationLayer (the module PlanModel puts in the network),
loss_vjp losses.per_example_loss with the batch mean, optimizer_steps optimizers.direction and
optimizers.step (the Trainer's update). Each is jitted, as in training.
"""

import functools
from typing import Any, Sequence

import numpy as np
from pydantic import TypeAdapter

from backends.jax import trainer as _trainer  # noqa: F401  (x64, full matmul precision, XLA flags: process-wide)
from backends.jax import losses, optimizers
from backends.jax.model import ActivationLayer
from experiments.catalog import Activation, Loss, Optimizer, OutputActivation

import jax  # noqa: E402  (after backends.jax.trainer has set XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402


def _entry(kind: Any, value: Any):
    """A catalog entry from an entry, a bare name or a table (as specs write them)."""
    return value if hasattr(value, "name") else TypeAdapter(kind).validate_python(value)


def activation_vjp(entry, x, cotangent, dtype, params=None, training=False, seed=0):
    """(y, dx, dparams): y = act(x), dx = J^T cotangent, dparams = {"alpha": ...} for prelu, else {}.

    params: {"alpha": (1,) or (C,)} for prelu (None: the entry's initial_value). training
    switches rrelu to its random slopes, drawn from jax.random.key(seed) as the "rrelu" stream.
    """
    entry, dtype = _entry(Activation, entry), np.dtype(dtype)
    x, cotangent = jnp.asarray(x, dtype), jnp.asarray(cotangent, dtype)
    module = ActivationLayer(entry=entry, dtype=dtype)
    if params is None:
        variables = module.init({"params": jax.random.key(0)}, x, train=False)
        params = dict(variables.get("params", {}))
    params = {name: jnp.asarray(value, dtype) for name, value in params.items()}
    y, dx, dparams = _activation_vjp(module, bool(training))(x, cotangent, params, jax.random.key(seed))
    return np.asarray(y), np.asarray(dx), {name: np.asarray(value) for name, value in dparams.items()}


@functools.cache
def _activation_vjp(module: ActivationLayer, training: bool):
    @jax.jit
    def run(x, cotangent, params, key):
        def apply(x, params):
            variables = {"params": params} if params else {}
            return module.apply(variables, x, train=training, rngs={"rrelu": key})

        y, pullback = jax.vjp(apply, x, params)
        dx, dparams = pullback(cotangent)
        return y, dx, dparams

    return run


def loss_vjp(loss, output_activation, z, y, dtype) -> tuple[float, np.ndarray]:
    """(mean over the batch of the loss, d mean / dz) for logits z (N, C) and targets y (N, C)."""
    loss, output = _entry(Loss, loss), _entry(OutputActivation, output_activation)
    dtype = np.dtype(dtype)
    value, dz = _loss_vjp(loss, output)(jnp.asarray(z, dtype), jnp.asarray(y, dtype))
    return float(value), np.asarray(dz)


@functools.cache
def _loss_vjp(loss, output):
    per_example = losses.per_example_loss(loss, output)
    return jax.jit(jax.value_and_grad(lambda z, y: jnp.mean(per_example(z, y))))


def optimizer_steps(optimizer, params, grads: Sequence[dict], learning_rates, dtype) -> list[dict[str, np.ndarray]]:
    """The parameters after each step (one dict per step), from params (name -> array) and one
    gradient dict per step, with the optimizer state the Trainer uses (clipping included)."""
    optimizer, dtype = _entry(Optimizer, optimizer), np.dtype(dtype)
    tx = optimizers.direction(optimizer, dtype)
    update = jax.jit(functools.partial(optimizers.step, tx))
    params = {name: jnp.asarray(value, dtype) for name, value in params.items()}
    state = tx.init(params)
    out = []
    for step_grads, rate in zip(grads, np.asarray(learning_rates, np.float64), strict=True):
        step_grads = {name: jnp.asarray(step_grads[name], dtype) for name in params}
        params, state = update(params, step_grads, state, jnp.asarray(rate, dtype))
        out.append({name: np.asarray(value) for name, value in params.items()})
    return out
