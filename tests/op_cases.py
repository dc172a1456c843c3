"""The op-level cases as data: every catalog activation, loss and optimizer with the settings tested."""

import numpy as np
from pydantic import TypeAdapter

from experiments.catalog import Schedule
from experiments.catalog.schedules import learning_rates


def entry(kind, table):
    return TypeAdapter(kind).validate_python(table)


ACTIVATION_CASES = {
    "sigmoid": {"name": "sigmoid"},
    "tanh": {"name": "tanh"},
    "relu": {"name": "relu"},
    "leaky_relu": {"name": "leaky_relu", "negative_slope": 0.1},
    "prelu-shared": {"name": "prelu", "initial_value": 0.25, "per_channel": False},
    "prelu-per-channel": {"name": "prelu", "initial_value": 0.25, "per_channel": True},
    "rrelu-eval": {"name": "rrelu", "lower": 0.125, "upper": 1.0 / 3.0},
    "elu": {"name": "elu", "alpha": 0.7},
    "selu": {"name": "selu"},
    "softplus": {"name": "softplus", "beta": 1.0},
    "softplus-beta2": {"name": "softplus", "beta": 2.0},
    "linear": {"name": "linear"},
    "maxout": {"name": "maxout", "pieces": 3},
    "hard_sigmoid": {"name": "hard_sigmoid"},
    "silu": {"name": "silu"},
    "gelu-exact": {"name": "gelu", "approximate": "none"},
    "gelu-tanh": {"name": "gelu", "approximate": "tanh"},
    "step": {"name": "step"},
    "sign": {"name": "sign"},
}

# 0, the kinks (0, +-3), values around them, and large inputs of both signs.
GRID = np.array([-40.0, -20.0, -5.0, -3.0, -2.5, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.5, 3.0, 5.0, 20.0, 40.0, -0.0, 7.0])


def activation_inputs():
    """x (3, 18): the grid, then two random rows; a fixed cotangent; per-channel prelu alphas."""
    rng = np.random.default_rng(11)
    x = np.stack([GRID, rng.normal(0, 3, GRID.size), rng.normal(0, 1, GRID.size)])
    cotangent = rng.normal(0, 1, x.shape)
    return x, cotangent


def prelu_params(case, features):
    if case == "prelu-per-channel":
        return {"alpha": np.linspace(-0.2, 0.6, features)}
    if case == "prelu-shared":
        return {"alpha": np.array([0.3])}
    return None


LOSS_CASES = {
    "cce-softmax": ({"name": "categorical_crossentropy"}, "softmax", 10),
    "cce-softmax-smoothing": ({"name": "categorical_crossentropy", "label_smoothing": 0.1}, "softmax", 10),
    "cce-sigmoid": ({"name": "categorical_crossentropy"}, "sigmoid", 10),
    "cce-linear": ({"name": "categorical_crossentropy"}, "linear", 10),
    "bce-binary": ({"name": "binary_crossentropy"}, "sigmoid", 1),
    "bce-binary-smoothing": ({"name": "binary_crossentropy", "label_smoothing": 0.2}, "sigmoid", 1),
    "bce-multilabel": ({"name": "binary_crossentropy"}, "sigmoid", 10),
    "kl-softmax": ({"name": "kl_divergence"}, "softmax", 10),
    "kl-softmax-smoothing": ({"name": "kl_divergence", "label_smoothing": 0.1}, "softmax", 10),
    "mse-softmax": ({"name": "mse"}, "softmax", 10),
    "mse-sigmoid": ({"name": "mse"}, "sigmoid", 10),
    "mse-linear": ({"name": "mse"}, "linear", 10),
    "mse-binary": ({"name": "mse"}, "sigmoid", 1),
}


def loss_inputs(classes):
    rng = np.random.default_rng(5)
    z = rng.normal(0, 3, (16, classes))
    z[0, 0] = 30.0  # a confident logit
    labels = rng.integers(0, classes if classes > 1 else 2, 16)
    y = labels.reshape(-1, 1).astype(float) if classes == 1 else np.eye(classes)[labels]
    return z, y


OPTIMIZER_CASES = {
    "sgd": {"name": "sgd", "learning_rate": 0.1},
    "momentum": {"name": "momentum", "learning_rate": 0.1, "momentum": 0.9},
    "nesterov": {"name": "nesterov", "learning_rate": 0.1, "momentum": 0.9},
    "sgd-clipped": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5, "clip_global_norm": 1.0},
    "adagrad": {"name": "adagrad", "learning_rate": 0.1, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "adagrad-zero-start": {"name": "adagrad", "learning_rate": 0.1, "initial_accumulator_value": 0.0, "epsilon": 1e-10},
    "rmsprop": {"name": "rmsprop", "learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-8},
    "rmsprop-momentum": {"name": "rmsprop", "learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-8, "momentum": 0.9},
    "rmsprop-centered": {"name": "rmsprop", "learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-8, "centered": True},
    "rmsprop-centered-momentum": {"name": "rmsprop", "learning_rate": 0.01, "rho": 0.95, "epsilon": 1e-6, "centered": True, "momentum": 0.5},
    "adam": {"name": "adam", "learning_rate": 0.01, "epsilon": 1e-8},
    "adam-clipped": {"name": "adam", "learning_rate": 0.01, "epsilon": 1e-7, "clip_global_norm": 0.5},
    "adamw": {"name": "adamw", "learning_rate": 0.01, "epsilon": 1e-8, "weight_decay": 0.05},
    "adadelta": {"name": "adadelta", "learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6},
    "adamax": {"name": "adamax", "learning_rate": 0.02, "epsilon": 1e-8},
    "nadam": {"name": "nadam", "learning_rate": 0.01, "epsilon": 1e-8, "momentum_decay": 0.004},
    "nadam-keras-schedule": {"name": "nadam", "learning_rate": 0.01, "epsilon": 1e-7, "momentum_decay": 1.0},
}
OPTIMIZER_STEPS = 10
# A schedule makes every step's rate different (the seed's staircase, 2 steps per epoch).
STEP_SCHEDULE = {"name": "exponential", "decay_rate": 0.9, "decay_epochs": 1, "staircase": True}


def optimizer_inputs(case):
    """Fixed parameters, a fixed sequence of 10 gradient dicts and the scheduled rates."""
    rng = np.random.default_rng(3)
    params = {"dense_0/kernel": rng.normal(0, 0.5, (4, 3)), "dense_0/bias": rng.normal(0, 0.5, (3,))}
    grads = [{k: rng.normal(0, 1.0, v.shape) * (3.0 if step % 4 == 0 else 1.0) for k, v in params.items()} for step in range(OPTIMIZER_STEPS)]
    base = OPTIMIZER_CASES[case]["learning_rate"]
    rates = learning_rates(base, entry(Schedule, STEP_SCHEDULE), 0, OPTIMIZER_STEPS, 2)
    return params, grads, rates


