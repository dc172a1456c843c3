"""Keras 3 backend on TensorFlow; declares what it supports without importing keras or tensorflow."""

SUPPORTED = {
    "layers": frozenset({"dense", "conv2d", "activation", "batch_norm", "max_pool", "dropout", "flatten"}),
    "activations": frozenset({"relu", "sigmoid", "tanh", "leaky_relu", "linear"}),
    "output_activations": frozenset({"softmax", "sigmoid", "linear"}),
    "losses": frozenset({"categorical_crossentropy", "mse"}),
    "optimizers": frozenset({"sgd", "adam"}),
    "initializer_distributions": frozenset({"constant", "uniform", "normal", "truncated_normal"}),
}
