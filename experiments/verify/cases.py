"""The optimizers level 3 steps with, the matrix's activations, and the trajectory's checkpoints."""

ORACLE = "numpy"
"""The backend every other is compared with first: NumPy float64, forward and backward by hand."""

LEVEL3_OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.1},
    "momentum": {"name": "momentum", "learning_rate": 0.1, "momentum": 0.9},
    "nesterov": {"name": "nesterov", "learning_rate": 0.1, "momentum": 0.9},
    "adagrad": {"name": "adagrad", "learning_rate": 0.05, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "rmsprop": {"name": "rmsprop", "learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7},
    "rmsprop-centered-momentum": {"name": "rmsprop", "learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7, "centered": True, "momentum": 0.9},
    "adam": {"name": "adam", "learning_rate": 0.001, "epsilon": 1e-7},
    "adamw": {"name": "adamw", "learning_rate": 0.001, "epsilon": 1e-7, "weight_decay": 0.01},
    "adadelta": {"name": "adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6},
    "adamax": {"name": "adamax", "learning_rate": 0.002, "epsilon": 1e-7},
    "nadam": {"name": "nadam", "learning_rate": 0.002, "epsilon": 1e-7, "momentum_decay": 0.004},
}
"""Adam-family epsilons are 1e-7 on purpose: large enough that Keras' "epsilon hat" would show."""

TRAJECTORY_CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""Steps at which the trajectory level compares every parameter in full; per-tensor norms and
the loss are compared at every step."""


MATRIX_ACTIVATIONS = {
    "sigmoid": {"name": "sigmoid"},
    "tanh": {"name": "tanh"},
    "relu": {"name": "relu"},
    "leaky_relu": {"name": "leaky_relu", "negative_slope": 0.1},
    "prelu": {"name": "prelu", "initial_value": 0.25, "per_channel": True},
    "rrelu": {"name": "rrelu", "lower": 0.125, "upper": 1.0 / 3.0},
    "elu": {"name": "elu", "alpha": 0.7},
    "selu": {"name": "selu"},
    "softplus": {"name": "softplus", "beta": 2.0},
    "linear": {"name": "linear"},
    "maxout": {"name": "maxout", "pieces": 3},
    "hard_sigmoid": {"name": "hard_sigmoid"},
    "silu": {"name": "silu"},
    "gelu": {"name": "gelu", "approximate": "none"},
    "gelu-tanh": {"name": "gelu", "approximate": "tanh"},
}
"""Every trainable hidden activation of the catalog (step and sign are forward-only), hyperparameters explicit."""

