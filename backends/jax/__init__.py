"""JAX backend (Flax linen + Optax): what it supports, declared without importing jax."""

SUPPORTED = {
    "layers": frozenset({"dense", "conv2d", "activation", "batch_norm", "max_pool", "dropout", "flatten"}),
    "activations": frozenset({
        "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "softplus", "linear", "maxout",
        "hard_sigmoid", "silu", "gelu", "step", "sign",
    }),
    "output_activations": frozenset({"softmax", "sigmoid", "linear", "step", "sign"}),
    "losses": frozenset({"categorical_crossentropy", "binary_crossentropy", "kl_divergence", "mse"}),
    "optimizers": frozenset({
        "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "adadelta", "adamax", "nadam",
    }),
    "initializer_distributions": frozenset({"constant", "uniform", "normal", "truncated_normal"}),
}
