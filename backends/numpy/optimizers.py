"""Every catalog optimizer in NumPy, exactly the formulas of experiments.catalog.optimizers (arrays keep their dtype).

Each optimizer keeps its state per parameter name and updates `params` in place by name:
`step(params, grads, lr)`. Global-norm clipping happens before the update (`clip_by_global_norm`).
"""

import numpy as np


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> dict[str, np.ndarray]:
    """The catalog's global-norm clipping (no epsilon); unchanged when max_norm is None."""
    if max_norm is None:
        return grads
    norm = np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return {name: (g * g.dtype.type(scale)) for name, g in grads.items()}


class Optimizer:
    """State by parameter name, the step count t, and the per-parameter update rule."""

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.spec, self.t = spec, 0
        self.state: dict[str, dict[str, np.ndarray]] = {name: self.init(p) for name, p in params.items()}

    def init(self, p: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def step(self, params: dict, grads: dict, lr: float) -> None:
        self.t += 1
        for name, g in clip_by_global_norm(grads, self.spec.clip_global_norm).items():
            params[name] = self.update(params[name], g, self.state[name], lr)

    def update(self, p, g, s, lr):
        raise NotImplementedError


class Sgd(Optimizer):
    """sgd, momentum and nesterov."""

    def init(self, p):
        return {"momentum": np.zeros_like(p)}

    def update(self, p, g, s, lr):
        mu = self.spec.momentum
        if mu == 0.0:
            return p - lr * g
        b = s["momentum"] = mu * s["momentum"] + g
        nesterov = self.spec.name == "nesterov" or getattr(self.spec, "nesterov", False)
        return p - lr * (g + mu * b if nesterov else b)


class Adagrad(Optimizer):
    """adagrad."""

    def init(self, p):
        return {"sum": np.full_like(p, self.spec.initial_accumulator_value)}

    def update(self, p, g, s, lr):
        total = s["sum"] = s["sum"] + g * g
        return p - lr * g / (np.sqrt(total) + self.spec.epsilon)


class Rmsprop(Optimizer):
    """rmsprop: plain, centered, with momentum."""

    def init(self, p):
        return {"square": np.zeros_like(p), "mean": np.zeros_like(p), "momentum": np.zeros_like(p)}

    def update(self, p, g, s, lr):
        rho, spec = self.spec.rho, self.spec
        v = s["square"] = rho * s["square"] + (1 - rho) * g * g
        if spec.centered:
            mean = s["mean"] = rho * s["mean"] + (1 - rho) * g
            denominator = np.sqrt(v - mean * mean) + spec.epsilon
        else:
            denominator = np.sqrt(v) + spec.epsilon
        if spec.momentum > 0:
            b = s["momentum"] = spec.momentum * s["momentum"] + g / denominator
            return p - lr * b
        return p - lr * g / denominator


class Adam(Optimizer):
    """adam and adamw."""

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p)}

    def update(self, p, g, s, lr):
        b1, b2, eps = self.spec.beta_1, self.spec.beta_2, self.spec.epsilon
        if self.spec.name == "adamw":
            p = p - lr * self.spec.weight_decay * p
        m = s["m"] = b1 * s["m"] + (1 - b1) * g
        v = s["v"] = b2 * s["v"] + (1 - b2) * g * g
        return p - lr * (m / (1 - b1**self.t)) / (np.sqrt(v / (1 - b2**self.t)) + eps)


class Adadelta(Optimizer):
    """adadelta."""

    def init(self, p):
        return {"square": np.zeros_like(p), "delta": np.zeros_like(p)}

    def update(self, p, g, s, lr):
        rho, eps = self.spec.rho, self.spec.epsilon
        v = s["square"] = rho * s["square"] + (1 - rho) * g * g
        d = np.sqrt(s["delta"] + eps) / np.sqrt(v + eps) * g
        s["delta"] = rho * s["delta"] + (1 - rho) * d * d
        return p - lr * d


class Adamax(Optimizer):
    """adamax."""

    def init(self, p):
        return {"m": np.zeros_like(p), "u": np.zeros_like(p)}

    def update(self, p, g, s, lr):
        b1, b2, eps = self.spec.beta_1, self.spec.beta_2, self.spec.epsilon
        m = s["m"] = b1 * s["m"] + (1 - b1) * g
        u = s["u"] = np.maximum(b2 * s["u"], np.abs(g) + eps)
        return p - lr / (1 - b1**self.t) * m / u


class Nadam(Optimizer):
    """nadam, its momentum schedule and product in float64."""

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.mu_product = 1.0

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p)}

    def mu(self, t: int) -> float:
        return self.spec.beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.spec.momentum_decay))

    def step(self, params, grads, lr):
        self.mu_product *= self.mu(self.t + 1)  # P_t for the coming step t + 1
        super().step(params, grads, lr)

    def update(self, p, g, s, lr):
        b1, b2, eps, t = self.spec.beta_1, self.spec.beta_2, self.spec.epsilon, self.t
        mu, mu_next = self.mu(t), self.mu(t + 1)
        m = s["m"] = b1 * s["m"] + (1 - b1) * g
        v = s["v"] = b2 * s["v"] + (1 - b2) * g * g
        denominator = np.sqrt(v / (1 - b2**t)) + eps
        p = p - lr * (1 - mu) / (1 - self.mu_product) * g / denominator
        return p - lr * mu_next / (1 - self.mu_product * mu_next) * m / denominator


OPTIMIZERS = {
    "sgd": Sgd, "momentum": Sgd, "nesterov": Sgd, "adagrad": Adagrad, "rmsprop": Rmsprop, "adam": Adam,
    "adamw": Adam, "adadelta": Adadelta, "adamax": Adamax, "nadam": Nadam,
}


def make_optimizer(entry, params: dict[str, np.ndarray]) -> Optimizer:
    """The catalog entry's optimizer over params (name -> array), its state keyed by the catalog's slot names."""
    return OPTIMIZERS[entry.name](entry, params)
