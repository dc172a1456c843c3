"""Every backend against the plan and the NumPy oracle, parametrized backend x preset x dtype."""

import numpy as np
import pytest

from backends import BACKENDS, load_trainer
from backends.numpy.forward import forward
from experiments.compare import TOLERANCES, relative_error
from experiments.data import load_dataset, to_model_inputs
from experiments.spec import build_plan, load_spec, parameter_info, trainable_parameter_count

PRESETS = ["mlp-relu-adam", "seed-cnn", "seed-mlp-sigmoid", "seed-mlp-relu"]
DTYPES = ["float32", "float64"]


def make_trainer(backend, preset, dtype):
    spec = load_spec(preset, [f'dtype="{dtype}"'])
    plan = build_plan(spec.model, (28, 28, 1), 10)
    return load_trainer(backend)(spec, plan, 2), plan


def random_canonical_weights(plan, seed=0):
    """Weights with non-trivial batch-norm statistics, in float64."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, info in parameter_info(plan).items():
        if name.endswith("/variance"):
            weights[name] = rng.uniform(0.5, 1.5, info.shape)
        elif name.endswith("/scale"):
            weights[name] = rng.uniform(0.5, 1.5, info.shape)
        else:
            fan = np.prod(info.shape[:-1]) if len(info.shape) > 1 else 1
            weights[name] = rng.normal(0.0, 1.0 / np.sqrt(fan), info.shape) if len(info.shape) > 1 else rng.normal(0.0, 0.1, info.shape)
    return weights


@pytest.fixture(scope="module")
def digits():
    dataset = load_dataset("mnist-subset")
    x, _ = to_model_inputs(dataset.x_test[:16], dataset.y_test[:16], 10, "float64")
    return x


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_parameter_count_matches_plan(backend, preset):
    trainer, plan = make_trainer(backend, preset, "float32")
    assert trainer.parameter_count() == trainable_parameter_count(plan)
    shapes = {name: tuple(value.shape) for name, value in trainer.get_weights().items()}
    assert shapes == {name: info.shape for name, info in parameter_info(plan).items()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_matches_numpy_oracle(backend, preset, dtype, digits):
    trainer, plan = make_trainer(backend, preset, dtype)
    weights = random_canonical_weights(plan)
    trainer.set_weights({k: v.astype(dtype) for k, v in weights.items()})
    x = digits.astype(dtype)
    logits = trainer.predict_logits(x, 8)
    assert logits.dtype == np.dtype(dtype)
    reference = forward(plan, {k: v.astype(dtype) for k, v in weights.items()}, x)  # float64 oracle
    error = relative_error(logits, reference)
    tolerance = TOLERANCES[("forward", dtype)]
    assert error <= tolerance, f"{backend} {preset} {dtype}: forward relative error {error:.3e} > {tolerance:.0e}"
