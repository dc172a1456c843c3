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



MATRIX_LOSSES = {
    "categorical_crossentropy": ({"name": "categorical_crossentropy"}, {"name": "softmax"}),
    "categorical_crossentropy-smoothing": ({"name": "categorical_crossentropy", "label_smoothing": 0.1}, {"name": "softmax"}),
    "binary_crossentropy": ({"name": "binary_crossentropy"}, {"name": "sigmoid"}),
    "kl_divergence": ({"name": "kl_divergence"}, {"name": "softmax"}),
    "mse-softmax": ({"name": "mse"}, {"name": "softmax"}),
    "mse-sigmoid": ({"name": "mse"}, {"name": "sigmoid"}),
    "mse-linear": ({"name": "mse"}, {"name": "linear"}),
}
"""Every loss with its output activations (the trainable ones: step and sign are forward-only), as (loss, output)."""

MATRIX_SCHEDULES = {
    "constant": {"name": "constant"},
    "exponential": {"name": "exponential", "decay_steps": 20, "decay_rate": 0.5},
    "exponential-staircase": {"name": "exponential", "decay_steps": 20, "decay_rate": 0.5, "staircase": True},
    "inverse_time": {"name": "inverse_time", "decay_steps": 20, "decay_rate": 0.5},
    "polynomial": {"name": "polynomial", "decay_steps": 80, "power": 2.0},
    "cosine": {"name": "cosine", "decay_steps": 40, "alpha": 0.1},
    "piecewise_constant": {"name": "piecewise_constant", "boundaries": [20, 40], "factors": [1.0, 0.5, 0.25]},
}
"""Every schedule, with periods inside level 4's default 100 steps (the cosine's 40 so that what a scheduler does
after its period shows)."""

MATRIX_INITIALIZERS = {
    "zeros": {"name": "zeros"},
    "constant": {"name": "constant", "value": 0.01},
    "normal": {"name": "normal", "mean": 0.0, "stddev": 0.05},
    "truncated_normal": {"name": "truncated_normal", "mean": 0.0, "stddev": 0.05},
    "uniform": {"name": "uniform", "minval": -0.05, "maxval": 0.05},
    "variance_scaling": {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out", "distribution_kind": "truncated_normal"},
    "glorot_uniform": {"name": "glorot_uniform"},
    "glorot_normal": {"name": "glorot_normal"},
    "he_uniform": {"name": "he_uniform"},
    "he_normal": {"name": "he_normal"},
    "lecun_uniform": {"name": "lecun_uniform"},
    "lecun_normal": {"name": "lecun_normal"},
    "torch_default": {"name": "torch_default"},
}
"""Every initializer, for kernels and biases alike (a fan-based bias shows whose fans a framework uses)."""
