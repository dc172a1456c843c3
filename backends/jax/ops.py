"""Op-level functions for the parity tests (contract in backends.base), built from the very code the JAX Trainer
trains with: activations.ActivationLayer, losses.make_loss, optimizers.make_optimizer and optimizers.step, each
jitted as in training."""

import functools
from typing import Any, Sequence

import numpy as np
from pydantic import TypeAdapter

from backends.jax import losses, optimizers
from backends.jax.activations import ActivationLayer
from backends.jax.framework import jax, jnp
from experiments.catalog import Activation, Loss, Optimizer, OutputActivation


def _entry(kind: Any, value: Any):
    """A catalog entry from an entry, a bare name or a table (as specs write them)."""
    return value if hasattr(value, "name") else TypeAdapter(kind).validate_python(value)


def activation_vjp(entry, x, cotangent, dtype, params=None, training=False, seed=0):
    """(y, dx, dparams); params None: prelu's initial alpha. Training rrelu draws from jax.random.key(seed) as the
    "rrelu" stream."""
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
    """(batch mean of the loss, its gradient with respect to the logits z)."""
    loss, output = _entry(Loss, loss), _entry(OutputActivation, output_activation)
    dtype = np.dtype(dtype)
    value, dz = _loss_vjp(loss, output)(jnp.asarray(z, dtype), jnp.asarray(y, dtype))
    return float(value), np.asarray(dz)


@functools.cache
def _loss_vjp(loss, output):
    per_example = losses.make_loss(loss, output)
    return jax.jit(jax.value_and_grad(lambda z, y: jnp.mean(per_example(z, y))))


def optimizer_steps(optimizer, params, grads: Sequence[dict], learning_rates, dtype) -> list[dict[str, np.ndarray]]:
    """The parameters after each step, through the Trainer's transform and update (clipping included)."""
    optimizer, dtype = _entry(Optimizer, optimizer), np.dtype(dtype)
    tx = optimizers.make_optimizer(optimizer, dtype)
    update = jax.jit(functools.partial(optimizers.step, tx))
    params = {name: jnp.asarray(value, dtype) for name, value in params.items()}
    state = tx.init(params)
    out = []
    for step_grads, rate in zip(grads, np.asarray(learning_rates, np.float64), strict=True):
        step_grads = {name: jnp.asarray(step_grads[name], dtype) for name in params}
        params, state = update(params, step_grads, state, jnp.asarray(rate, dtype))
        out.append({name: np.asarray(value) for name, value in params.items()})
    return out
