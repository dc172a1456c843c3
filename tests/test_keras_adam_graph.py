"""Keras backend, catalog Adam: the compiled update (a tf.function, as the trainer's step runs it) computes exactly the
formula the class writes, bit for bit the eager update, in float32 and float64.

Grappler's arithmetic optimizer rewrites some expressions inside a tf.function: Div(x, Sqrt(y)) becomes
Mul(x, Rsqrt(y)) when that Sqrt has no other consumer, and a chain like c * (g * g) is reassociated to (c * g) * g.
Adam computes its per-step scalars once per step (shared by every variable, so the root correction's Sqrt has many
consumers) and writes v's update as (1 - beta_2) * g * g, torch's addcmul and the NumPy oracle's order, so neither
rewrite changes a value. Plants checked: the per-variable scalars of before (float64 fails), and
(1 - beta_2) * (g * g) (float32 and float64 fail).
"""

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from pydantic import TypeAdapter  # noqa: E402

from backends.keras.framework import keras, tf  # noqa: E402
from backends.keras.optimizers import apply_gradients, make_optimizer, set_learning_rate  # noqa: E402
from experiments.catalog import Optimizer  # noqa: E402

ENTRIES = {
    "adam": {"name": "adam", "learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamw": {"name": "adamw", "learning_rate": 1e-2, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-7, "weight_decay": 0.01},
}
SHAPES = [(3, 3, 1, 4), (4,), (4,), (4,), (36, 10), (10,)]  # conv kernel and bias, batch norm, dense kernel and bias
STEPS = 12


def run(entry, dtype: str, compiled: bool, seed: int = 0) -> list[np.ndarray]:
    """The parameters and both slots after STEPS updates with random gradients and rates."""
    rng = np.random.default_rng(seed)
    variables = [keras.Variable(rng.normal(size=shape).astype(dtype)) for shape in SHAPES]
    optimizer = make_optimizer(entry)
    optimizer.build(variables)

    def step(grads, rate):
        set_learning_rate(optimizer, rate)
        apply_gradients(optimizer, grads, variables)

    update = tf.function(step, autograph=False) if compiled else step
    for _ in range(STEPS):
        grads = [tf.constant((1e-2 * rng.normal(size=shape)).astype(dtype)) for shape in SHAPES]
        update(grads, tf.constant(rng.uniform(1e-4, 1e-2), tf.float64))
    slots = [optimizer.slot(name, v) for name in ("m", "v") for v in variables]
    return [np.array(v.numpy(), copy=True) for v in [*variables, *slots]]


def numpy_adam(entry, dtype: str, seed: int = 0) -> list[np.ndarray]:
    """The class's formula in NumPy, in its order of operations (scalars in float64, then cast)."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=shape).astype(dtype) for shape in SHAPES]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, decay = entry.beta_1, entry.beta_2, entry.epsilon, getattr(entry, "weight_decay", 0.0)
    cast = np.dtype(dtype).type
    for t in range(1, STEPS + 1):
        grads = [(1e-2 * rng.normal(size=shape)).astype(dtype) for shape in SHAPES]
        rate = rng.uniform(1e-4, 1e-2)
        step_size, root = cast(rate / (1.0 - b1**t)), cast(np.sqrt(1.0 - b2**t))
        for i, g in enumerate(grads):
            m[i] = cast(b1) * m[i] + cast(1.0 - b1) * g
            v[i] = cast(b2) * v[i] + cast(1.0 - b2) * g * g
            update = step_size * m[i] / (np.sqrt(v[i]) / root + cast(eps))
            params[i] = (params[i] - cast(rate * decay) * params[i]) - update if decay else params[i] - update
    return [*params, *m, *v]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ENTRIES)
def test_compiled_adam_is_the_eager_update_bit_for_bit(name, dtype):
    entry = TypeAdapter(Optimizer).validate_python(ENTRIES[name])
    eager, compiled = run(entry, dtype, compiled=False), run(entry, dtype, compiled=True)
    for index, (a, b) in enumerate(zip(eager, compiled)):
        np.testing.assert_array_equal(b, a, err_msg=f"{name} {dtype}: array {index} differs compiled vs eager")


@pytest.mark.parametrize("name", ENTRIES)
def test_eager_adam_is_the_formula_in_numpy_float64(name):
    entry = TypeAdapter(Optimizer).validate_python(ENTRIES[name])
    for index, (a, b) in enumerate(zip(run(entry, "float64", compiled=False), numpy_adam(entry, "float64"))):
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: array {index} differs from the NumPy formula")
