"""Backends: one subpackage per framework with the same `Trainer` surface, imported lazily."""

import importlib
from types import ModuleType

BACKENDS = ("torch", "keras", "jax", "numpy")
"""Backend names in display order; each is the subpackage `backends.<name>`."""

DEFAULT_BACKENDS = ("torch", "keras", "jax")
"""What `run` uses without --backends; numpy is the float64 oracle: exact, readable and slow."""


def backend_package(name: str) -> ModuleType:
    """The backend's package (its `SUPPORTED` table), without importing its framework."""
    if name not in BACKENDS:
        raise KeyError(name)
    return importlib.import_module(f"backends.{name}")


def load_trainer(name: str) -> type:
    """The backend's `Trainer` class; this imports the framework."""
    if name not in BACKENDS:
        raise KeyError(name)
    return importlib.import_module(f"backends.{name}.trainer").Trainer
