"""The bench's reference for the NumPy oracle: a plain NumPy loop over the oracle's own layer forward and backward
(backends.numpy.model) and loss (backends.numpy.losses), with dropout masks drawn inline and Adam written out, without
the Trainer's checks and bookkeeping: so the ratio shows what the harness adds around the same arithmetic. And a
timed NumPy matmul (the BLAS NumPy was built with)."""


import numpy as np

from backends.numpy.losses import make_loss
from backends.numpy.model import layer_backward, layer_forward
from backends.numpy.weights import initial_weights, layer_params
from experiments.bench.flops import gemm_rate
from experiments.bench.job import require_tutorial_model
from experiments.spec import plan as P
from experiments.spec.plan import parameter_info


class Reference:
    description = "a NumPy loop over the oracle's layer_forward / layer_backward and loss, Adam written out"

    def __init__(self, spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> None:
        require_tutorial_model(spec, plan)
        self.plan, self.dtype, self.x, self.y = plan, np.dtype(spec.dtype), x, y
        self.weights = initial_weights(plan, spec.seed, self.dtype)
        self.trainable = [name for name, info in parameter_info(plan).items() if info.trainable]
        self.m = {name: np.zeros_like(self.weights[name]) for name in self.trainable}
        self.v = {name: np.zeros_like(self.weights[name]) for name in self.trainable}
        self.t, self.optimizer = 0, spec.optimizer
        self.loss = make_loss(spec.loss, spec.model.output_activation)
        self.rng = np.random.default_rng(spec.seed)

    def prepare(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        return batches

    def train(self, batches: list[np.ndarray]) -> None:
        o = self.optimizer
        for index in batches:
            h, y, caches, noise = self.x[index], self.y[index], [], {}
            for layer in self.plan:
                if isinstance(layer, P.Dropout):
                    keep = self.rng.random(h.shape) >= layer.rate
                    noise[layer.name] = keep.astype(self.dtype) / self.dtype.type(1.0 - layer.rate)
                h, cache = layer_forward(layer, layer_params(layer, self.weights), h, train=True, noise=noise)
                caches.append(cache)
            _, dz = self.loss(h, y)
            grads = {}
            for layer, cache in zip(reversed(self.plan), reversed(caches)):
                dz, layer_grads = layer_backward(layer, layer_params(layer, self.weights), cache, dz)
                grads.update({f"{layer.name}/{k}": v for k, v in layer_grads.items()})
                if isinstance(layer, P.BatchNormalization):
                    self.weights.update({f"{layer.name}/{k}": v for k, v in cache[-1].items()})
            self.t += 1
            for name in self.trainable:
                g = grads[name]
                self.m[name] = o.beta_1 * self.m[name] + (1 - o.beta_1) * g
                self.v[name] = o.beta_2 * self.v[name] + (1 - o.beta_2) * g * g
                step = (self.m[name] / (1 - o.beta_1 ** self.t)) / (np.sqrt(self.v[name] / (1 - o.beta_2 ** self.t)) + o.epsilon)
                self.weights[name] = (self.weights[name] - o.learning_rate * step).astype(self.dtype)


def reference_trainer(spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> Reference:
    """The plain NumPy loop for the spec (NotExpressible where the tutorial-style check refuses it)."""
    return Reference(spec, plan, threads, x, y)


def gemm_gflops(size: int, dtype: str, repeats: int = 3) -> float:
    """GFLOP/s of a size x size matmul in NumPy (the median of `repeats` after one warm-up)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)).astype(dtype), rng.random((size, size)).astype(dtype)
    out = np.empty((size, size), dtype=dtype)
    return gemm_rate(size, lambda: np.matmul(a, b, out=out), repeats)
