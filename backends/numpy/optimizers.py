"""Optimizer updates in NumPy, exactly the formulas of experiments.catalog.optimizers (arrays keep their dtype)."""

import numpy as np


class Sgd:
    """b = momentum * b + g; d = g + momentum * b (nesterov) or b; p -= lr * d."""

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.spec = spec
        self.state = {"momentum": {k: np.zeros_like(v) for k, v in params.items()}}

    def step(self, params: dict, grads: dict, lr: float) -> None:
        mu = self.spec.momentum
        for name, g in grads.items():
            if mu == 0.0:
                params[name] = params[name] - lr * g
                continue
            b = self.state["momentum"][name] = mu * self.state["momentum"][name] + g
            params[name] = params[name] - lr * (g + mu * b if self.spec.nesterov else b)


class Adam:
    """m, v moments; p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)."""

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.spec = spec
        self.t = 0
        self.state = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}

    def step(self, params: dict, grads: dict, lr: float) -> None:
        self.t += 1
        b1, b2, eps = self.spec.beta_1, self.spec.beta_2, self.spec.epsilon
        for name, g in grads.items():
            m = self.state["m"][name] = b1 * self.state["m"][name] + (1 - b1) * g
            v = self.state["v"][name] = b2 * self.state["v"][name] + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1**self.t), v / (1 - b2**self.t)
            params[name] = params[name] - lr * m_hat / (np.sqrt(v_hat) + eps)


OPTIMIZERS = {"sgd": Sgd, "adam": Adam}
