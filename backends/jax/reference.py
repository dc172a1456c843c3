"""The bench's reference for JAX: the plan as the Flax linen and Optax tutorials write it (an nn.Module of nn.Dense,
nn.Conv, nn.BatchNorm, nn.max_pool, nn.Dropout with Flax's default initialisers, a flax.training TrainState with the
batch statistics, optax.adam, optax.softmax_cross_entropy, one jax.jit train step called from a Python loop over
NumPy batches), and a timed jitted matmul.

It runs in the bench worker's process after the harness's Trainer, with the same JAX configuration
(backends.jax.framework: x64 enabled, every dtype explicit, matmul precision "highest"); XLA's CPU thread pool is
sized when XLA starts and is the same for both.
"""

from typing import Any


import numpy as np
from flax.training import train_state

from backends.jax.framework import jax, jnp, nn, optax
from experiments.bench.flops import gemm_rate
from experiments.bench.job import NotExpressible, require_tutorial_model
from experiments.spec import plan as P


def _activation(entry, x):
    if entry.name == "leaky_relu":
        return nn.leaky_relu(x, negative_slope=entry.negative_slope)
    return {"relu": nn.relu, "sigmoid": nn.sigmoid, "tanh": nn.tanh}[entry.name](x)


class Model(nn.Module):
    plan: tuple
    dtype: Any

    @nn.compact
    def __call__(self, x, train: bool):
        for layer in self.plan:
            if isinstance(layer, P.Conv2D):
                k = layer.kernel_size
                x = nn.Conv(layer.filters, (k, k), padding=layer.padding.upper(), dtype=self.dtype, param_dtype=self.dtype)(x)
            elif isinstance(layer, P.Dense):
                x = nn.Dense(layer.units, dtype=self.dtype, param_dtype=self.dtype)(x)
            elif isinstance(layer, P.Activation):
                x = _activation(layer.activation, x)
            elif isinstance(layer, P.BatchNormalization):
                x = nn.BatchNorm(use_running_average=not train, momentum=layer.momentum, epsilon=layer.epsilon,
                                 dtype=self.dtype, param_dtype=self.dtype)(x)
            elif isinstance(layer, P.MaxPool2D):
                window = (layer.size, layer.size)
                x = nn.max_pool(x, window, strides=(layer.stride, layer.stride), padding=layer.padding.upper())
            elif isinstance(layer, P.Dropout):
                x = nn.Dropout(layer.rate, deterministic=not train)(x)
            elif isinstance(layer, P.Flatten):
                x = x.reshape((x.shape[0], -1))
            else:
                raise NotExpressible(f"layer {layer.name} ({type(layer).__name__})")
        return x


class TrainState(train_state.TrainState):
    batch_stats: Any
    key: Any


@jax.jit
def train_step(state: TrainState, x, y):
    dropout_key = jax.random.fold_in(state.key, state.step)

    def loss_fn(params):
        logits, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, x, train=True,
                                         rngs={"dropout": dropout_key}, mutable=["batch_stats"])
        return optax.softmax_cross_entropy(logits, y).mean(), updates

    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    return state.replace(batch_stats=updates.get("batch_stats", {})), loss


class Reference:
    description = ("Flax linen nn.Module (nn.Dense/Conv/BatchNorm/max_pool/Dropout, default init), TrainState, "
                   "optax.adam, optax.softmax_cross_entropy, a jax.jit train step called per NumPy batch")

    def __init__(self, spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> None:
        require_tutorial_model(spec, plan)
        dtype = np.dtype(spec.dtype)
        model = Model(plan=tuple(plan), dtype=dtype)
        init_key, dropout_key = jax.random.split(jax.random.key(spec.seed))
        variables = model.init(init_key, jnp.zeros((1, *plan[0].input_shape), dtype), train=False)
        o = spec.optimizer
        self.state = TrainState.create(apply_fn=model.apply, params=variables["params"],
                                       batch_stats=variables.get("batch_stats", {}), key=dropout_key,
                                       tx=optax.adam(o.learning_rate, b1=o.beta_1, b2=o.beta_2, eps=o.epsilon))
        self.x, self.y = x, y

    def prepare(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        return batches

    def train(self, batches: list[np.ndarray]) -> None:
        state = self.state
        for index in batches:
            state, _ = train_step(state, self.x[index], self.y[index])
        self.state = jax.block_until_ready(state)


def reference_trainer(spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> Reference:
    """The tutorial-style model and loop for the spec (NotExpressible where it has no simple counterpart)."""
    return Reference(spec, plan, threads, x, y)


def gemm_gflops(size: int, dtype: str, repeats: int = 3) -> float:
    """GFLOP/s of a size x size jitted jnp.matmul (the median of `repeats` after one warm-up)."""
    rng = np.random.default_rng(0)
    a, b = (jax.device_put(rng.random((size, size)).astype(dtype)) for _ in range(2))
    matmul = jax.jit(jnp.matmul)
    return gemm_rate(size, lambda: matmul(a, b).block_until_ready(), repeats)
