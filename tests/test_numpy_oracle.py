"""The NumPy oracle's hand-written gradients against central finite differences, and its optimizer formulas."""

import numpy as np
import pytest

from backends.numpy.trainer import Trainer
from experiments.compare import relative_error
from experiments.spec import build_plan, load_spec

# Central differences with step 1e-6 in float64 are accurate to about 1e-9 relative here;
# a wrong derivative is off by O(1).
FINITE_DIFFERENCE_RTOL = 1e-6
STEP = 1e-6

TINY_CNN = [
    'model.conv=[{filters=3, kernel_size=3, padding="same", activation="tanh", batch_norm={momentum=0.9, epsilon=1e-3},'
    ' post_activation={name="leaky_relu", negative_slope=0.1}, pool={size=2, stride=2, padding="same"}},'
    ' {filters=2, kernel_size=2, padding="valid", activation="sigmoid", pool={size=3, stride=2, padding="same"}}]',
    'model.hidden=[{units=6, activation="relu", batch_norm={momentum=0.9, epsilon=1e-5}}]',
]
CASES = {
    "mlp-softmax-ce": ("mlp-relu-adam", ['model.hidden=[{units=7, activation="tanh"}, {units=5, activation={name="leaky_relu", negative_slope=0.2}}]',
                                          "loss={name=\"categorical_crossentropy\", label_smoothing=0.1}"]),
    "mlp-sigmoid-ce": ("seed-mlp-sigmoid", ['model.hidden=[{units=6, activation="sigmoid"}]']),
    "mlp-softmax-mse": ("mlp-relu-adam", ['model.hidden=[{units=6, activation="sigmoid"}]', 'loss="mse"']),
    "mlp-sigmoid-mse": ("seed-mlp-sigmoid", ['model.hidden=[{units=6, activation="tanh"}]', 'loss="mse"']),
    "mlp-linear-mse": ("mlp-relu-adam", ['model.hidden=[{units=6, activation="tanh"}]', 'loss="mse"', 'model.output_activation="linear"']),
    "cnn-bn-pool": ("seed-cnn", TINY_CNN),
}


def numeric_gradient(trainer, x, y, name, indices):
    values = []
    for index in indices:
        original = trainer.weights[name][index]
        trainer.weights[name][index] = original + STEP
        up = trainer.loss_and_gradients(x, y, {})[0].mean()
        trainer.weights[name][index] = original - STEP
        down = trainer.loss_and_gradients(x, y, {})[0].mean()
        trainer.weights[name][index] = original
        values.append((up - down) / (2 * STEP))
    return np.array(values)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_finite_differences(case):
    preset, overrides = CASES[case]
    spec = load_spec(preset, overrides + ['dtype="float64"'])
    plan = build_plan(spec.model, (28, 28, 1), 10)
    trainer = Trainer(spec, plan, 1)
    rng = np.random.default_rng(1)
    x = rng.random((4, 28, 28, 1))
    y = np.eye(10)[rng.integers(0, 10, 4)]
    _, _, grads, _ = trainer.loss_and_gradients(x, y, {})
    for name in trainer.trainable:
        flat = [np.unravel_index(i, grads[name].shape) for i in rng.choice(grads[name].size, min(12, grads[name].size), replace=False)]
        analytic = np.array([grads[name][i] for i in flat])
        numeric = numeric_gradient(trainer, x, y, name, flat)
        error = relative_error(analytic, numeric) if np.max(np.abs(numeric)) > 1e-8 else float(np.max(np.abs(analytic - numeric)))
        assert error <= FINITE_DIFFERENCE_RTOL, f"{case} {name}: gradient relative error {error:.2e}"


def test_max_pool_same_with_odd_size_routes_gradient_once():
    """7 -> 4 with SAME padding: the padded (-inf) cell never receives gradient."""
    spec = load_spec("seed-cnn", TINY_CNN + ['dtype="float64"'])
    plan = build_plan(spec.model, (28, 28, 1), 10)
    trainer = Trainer(spec, plan, 1)
    x = np.random.default_rng(2).random((2, 28, 28, 1))
    _, _, grads, _ = trainer.loss_and_gradients(x, np.eye(10)[[1, 2]], {})
    assert all(np.all(np.isfinite(g)) for g in grads.values())
