"""NumPy reference backend: hand-written forward, backward and optimizers (the float64 oracle)."""

from experiments.catalog import ACTIVATIONS, LOSSES, OPTIMIZERS, OUTPUT_ACTIVATIONS

SUPPORTED = {
    "layers": frozenset({"dense", "conv2d", "activation", "batch_norm", "max_pool", "dropout", "flatten"}),
    "activations": frozenset(ACTIVATIONS),
    "output_activations": frozenset(OUTPUT_ACTIVATIONS),
    "losses": frozenset(LOSSES),
    "optimizers": frozenset(OPTIMIZERS),
    "initializer_distributions": frozenset({"constant", "uniform", "normal", "truncated_normal"}),
}
