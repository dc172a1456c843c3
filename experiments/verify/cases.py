"""The optimizers level 3 steps with: every catalog optimizer, every hyperparameter explicit."""

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
