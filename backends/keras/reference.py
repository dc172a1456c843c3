"""The bench's reference for Keras: the plan as the Keras guides write it (keras.Sequential of built-in layers with
Keras' default initialisers, model.compile with keras.optimizers.Adam, CategoricalCrossentropy(from_logits=True) and
the accuracy metric, then model.fit on arrays, compile's defaults kept: jit_compile="auto"), and a timed TF matmul.

It runs in the bench worker's process after the harness's Trainer, so TF's thread pools and op determinism
(backends.keras.framework.configure_threads) are the same on both sides. fit gets the chunk's samples already in the
harness's batch order (gathered before the clock starts, shuffle=False), so both train on the same batches.
"""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import numpy as np  # noqa: E402

from backends.keras.framework import keras, tf  # noqa: E402
from experiments.bench.flops import gemm_rate  # noqa: E402
from experiments.bench.job import NotExpressible, require_tutorial_model  # noqa: E402
from experiments.spec import plan as P  # noqa: E402


def _activation(entry, dtype: str):
    if entry.name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=entry.negative_slope, dtype=dtype)
    return keras.layers.Activation(entry.name, dtype=dtype)


def build_model(plan, dtype: str) -> keras.Sequential:
    layers = [keras.Input(shape=plan[0].input_shape, dtype=dtype)]
    for layer in plan:
        if isinstance(layer, P.Conv2D):
            layers.append(keras.layers.Conv2D(layer.filters, layer.kernel_size, padding=layer.padding, dtype=dtype))
        elif isinstance(layer, P.Dense):
            layers.append(keras.layers.Dense(layer.units, dtype=dtype))
        elif isinstance(layer, P.Activation):
            layers.append(_activation(layer.activation, dtype))
        elif isinstance(layer, P.BatchNormalization):
            layers.append(keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon, dtype=dtype))
        elif isinstance(layer, P.MaxPool2D):
            layers.append(keras.layers.MaxPooling2D(layer.size, layer.stride, padding=layer.padding, dtype=dtype))
        elif isinstance(layer, P.Dropout):
            layers.append(keras.layers.Dropout(layer.rate, dtype=dtype))
        elif isinstance(layer, P.Flatten):
            layers.append(keras.layers.Flatten(dtype=dtype))
        else:
            raise NotExpressible(f"layer {layer.name} ({type(layer).__name__})")
    return keras.Sequential(layers)


class Reference:
    description = ("keras.Sequential (built-in layers, default init), compile(Adam, CategoricalCrossentropy(from_logits"
                   "=True), metrics=['accuracy']), fit(x, y, batch_size, epochs=1, shuffle=False) on the chunk's samples")

    def __init__(self, spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> None:
        require_tutorial_model(spec, plan)
        keras.utils.set_random_seed(spec.seed)
        self.model = build_model(plan, spec.dtype)
        o = spec.optimizer
        self.model.compile(optimizer=keras.optimizers.Adam(o.learning_rate, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon),
                           loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        self.x, self.y, self.batch_size = x, y, spec.training.batch_size

    def prepare(self, batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        order = np.concatenate(batches)
        return self.x[order], self.y[order]

    def train(self, chunk: tuple[np.ndarray, np.ndarray]) -> None:
        x, y = chunk
        self.model.fit(x, y, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0)


def reference_trainer(spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> Reference:
    """The tutorial-style model and fit for the spec (NotExpressible where it has no simple counterpart)."""
    return Reference(spec, plan, threads, x, y)


def gemm_gflops(size: int, dtype: str, repeats: int = 3) -> float:
    """GFLOP/s of a size x size tf.linalg.matmul (the median of `repeats` after one warm-up; each result is read back
    as one element, so the time includes the whole product and nothing else of note)."""
    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.random((size, size)).astype(dtype)) for _ in range(2))
    return gemm_rate(size, lambda: tf.linalg.matmul(a, b)[0, 0].numpy(), repeats)
