"""mnist-parity: one experiment spec, trained and compared on PyTorch, Keras 3 and JAX/Flax (framework-neutral code)."""

__version__ = "0.1.0"
