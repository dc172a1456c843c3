"""Op-level functions of the parity tests (contract in backends.base), built from the very layers,
losses and optimizers the Trainer trains with."""

import numpy as np

from backends.keras.activations import activation_layer
from backends.keras.framework import keras, tf
from backends.keras.losses import make_loss
from backends.keras.optimizers import make_optimizer
from experiments.catalog.base import Entry


def _zeros_if_none(gradient, like: tf.Tensor) -> np.ndarray:
    """A gradient as NumPy; a path without gradient (step, sign outputs) gives zeros."""
    return (tf.zeros_like(like) if gradient is None else tf.convert_to_tensor(gradient)).numpy()


def activation_vjp(entry: Entry, x, cotangent, dtype: str, params=None, training: bool = False, seed: int = 0):
    """(y, dx, dparams): y = act(x), dx = J^T cotangent, dparams {"alpha": ...} for prelu, else {}.

    The layer is the Trainer's (`activation_layer`); training switches rrelu to random slopes
    drawn from `seed`. params (prelu only) replaces the layer's initial alpha.
    """
    x = tf.constant(np.asarray(x), dtype=dtype)
    cotangent = tf.constant(np.asarray(cotangent), dtype=dtype)
    layer = activation_layer(entry, "activation", dtype, seed)
    layer.build(tuple(x.shape))
    names = {"alpha": layer.alpha} if entry.name == "prelu" else {}
    params = dict(params or {})
    if set(params) - set(names):
        raise KeyError(f"{entry.name} has parameters {sorted(names)}, got {sorted(params)}")
    for name, value in params.items():
        names[name].assign(np.asarray(value, dtype=dtype))
    variables = [names[name] for name in names]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training) if entry.name == "rrelu" else layer(x)
    gradients = tape.gradient(y, [x, *variables], output_gradients=cotangent)
    dx = _zeros_if_none(gradients[0], x)
    dparams = {name: _zeros_if_none(g, v.value) for name, v, g in zip(names, variables, gradients[1:])}
    return y.numpy(), dx, dparams


def loss_vjp(loss: Entry, output_activation: Entry, z, y, dtype: str) -> tuple[float, np.ndarray]:
    """(batch mean loss, d loss / dz) of logits z (N, C) and targets y (N, C), with the Trainer's loss."""
    z = tf.constant(np.asarray(z), dtype=dtype)
    y = tf.constant(np.asarray(y), dtype=dtype)
    per_sample = make_loss(loss, output_activation)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = tf.reduce_mean(per_sample(z, y))
    return float(value.numpy()), _zeros_if_none(tape.gradient(value, z), z)


def optimizer_steps(optimizer: Entry, params: dict, grads: list, learning_rates, dtype: str) -> list[dict]:
    """The params after each step of the Trainer's optimizer, given each step's gradients and rate.

    params: name -> array; grads: one dict name -> array per step; learning_rates: one per step.
    """
    names = list(params)
    variables = [
        keras.Variable(np.asarray(params[name]), dtype=dtype, trainable=True, name=f"parameter_{i}")
        for i, name in enumerate(names)
    ]
    keras_optimizer = make_optimizer(optimizer)
    keras_optimizer.build(variables)
    if len(grads) != len(learning_rates):
        raise ValueError(f"optimizer_steps: {len(grads)} gradient sets but {len(learning_rates)} learning rates")
    history = []
    for step_grads, rate in zip(grads, learning_rates):
        keras_optimizer.rate.assign(float(rate))
        keras_optimizer.apply([tf.constant(np.asarray(step_grads[name]), dtype=dtype) for name in names], variables)
        history.append({name: np.array(v.numpy(), copy=True) for name, v in zip(names, variables)})
    return history
