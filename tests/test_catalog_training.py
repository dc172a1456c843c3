"""Every catalog entry trains through each backend's real training path, matching the oracle in float64.

Each case starts torch, keras and jax from the oracle's initial weights and takes two
optimizer steps on the same two batches; weights must then agree with the NumPy oracle.
rrelu's training noise comes from each framework's own stream, so its case injects the
oracle's slopes into both (train_epoch's noise argument) and checks the same as every other.
"""

import numpy as np
import pytest

from backends import load_trainer
from backends.numpy.trainer import Trainer as OracleTrainer
from experiments.compare import relative_error
from experiments.errors import SpecError
from experiments.spec import build_plan, load_spec
from experiments.spec.loading import require_trainable, toml_value
from tests.op_cases import ACTIVATION_CASES, LOSS_CASES, OPTIMIZER_CASES

TWO_STEP_FLOAT64_RTOL = 1e-10
BACKENDS = ["torch", "keras", "jax"]
TINY = ['dtype="float64"', "training.batch_size=8"]


def activation_overrides(case):
    table = ACTIVATION_CASES[case]
    units = 12
    return [f"model.hidden=[{{units = {units}, activation = {toml_value(table)}}}]"]


def loss_overrides(case):
    table, output, classes = LOSS_CASES[case]
    overrides = [f"loss={toml_value(table)}", f'model.output_activation="{output}"', 'model.hidden=[{units = 12, activation = "tanh"}]']
    if classes == 1:
        overrides.append('data.task="digit_3"')
    return overrides


def optimizer_overrides(case):
    return [f"optimizer={toml_value(OPTIMIZER_CASES[case])}", 'model.hidden=[{units = 12, activation = "tanh"}]',
            'schedule={name = "exponential", decay_rate = 0.5, decay_steps = 1}']


# One case per distinct entry (the op-level tests cover every hyperparameter variant); the
# variants kept here exercise paths the training loop adds: smoothing, the binary task, clipping.
LOSS_TRAINING_CASES = ["cce-sigmoid", "cce-softmax-smoothing", "bce-binary-smoothing", "bce-multilabel", "kl-softmax-smoothing", "mse-softmax", "mse-binary"]
OPTIMIZER_TRAINING_CASES = ["sgd-clipped", "momentum", "nesterov", "adagrad", "rmsprop-centered-momentum", "adam-clipped", "adamw", "adadelta", "adamax", "nadam"]

CASES = (
    [("activation", c, activation_overrides(c)) for c in ACTIVATION_CASES if ACTIVATION_CASES[c]["name"] not in ("step", "sign")]
    + [("loss", c, loss_overrides(c)) for c in LOSS_TRAINING_CASES]
    + [("optimizer", c, optimizer_overrides(c)) for c in OPTIMIZER_TRAINING_CASES]
    + [("cnn", "prelu-maxout-cnn", [
        'model.conv=[{filters = 6, kernel_size = 3, padding = "same", activation = {name = "maxout", pieces = 2},'
        ' post_activation = {name = "prelu", initial_value = 0.2, per_channel = true}, pool = {size = 2, stride = 2, padding = "same"}}]',
        'model.hidden=[{units = 8, activation = {name = "elu", alpha = 1.0}}]'])]
)


def data(spec, rng):
    x = rng.random((16, 28, 28, 1))
    outputs = spec.data.num_outputs
    labels = rng.integers(0, 2 if outputs == 1 else 10, 16)
    y = labels.reshape(-1, 1).astype(float) if outputs == 1 else np.eye(10)[labels]
    return x, y


@pytest.mark.parametrize("kind, case, overrides", CASES, ids=[f"{k}-{c}" for k, c, _ in CASES])
@pytest.mark.parametrize("backend", BACKENDS)
def test_entry_trains_like_the_oracle(backend, kind, case, overrides):
    preset = "seed-cnn" if kind == "cnn" else "mlp-relu-adam"
    spec = load_spec(preset, overrides + TINY)
    require_trainable(spec)
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    x, y = data(spec, np.random.default_rng(0))
    batches, rates = [np.arange(0, 8), np.arange(8, 16)], np.array([spec.optimizer.learning_rate, spec.optimizer.learning_rate * 0.5])
    oracle = OracleTrainer(spec, plan, 1)
    trainer = load_trainer(backend)(spec, plan, 1)
    trainer.set_weights(oracle.get_weights())
    for t in (trainer, oracle):
        t.load_training_data(x, y)
    # rrelu draws its training slopes from each framework's own stream: inject the oracle's instead.
    noise = [oracle.training_noise(len(batch)) for batch in batches] if case == "rrelu-eval" else None
    assert (noise is not None) == any(noise or [])  # rrelu's slopes are the only noise in these models
    stats = trainer.train_epoch(batches, rates, noise) if noise else trainer.train_epoch(batches, rates)
    assert np.all(np.isfinite(stats.loss))
    reference = oracle.train_epoch(batches, rates, noise) if noise else oracle.train_epoch(batches, rates)
    assert relative_error(stats.loss, reference.loss) <= TWO_STEP_FLOAT64_RTOL, f"{backend} {case}: losses"
    got, want = trainer.get_weights(), oracle.get_weights()
    for name in want:
        error = relative_error(got[name], want[name])
        assert error <= TWO_STEP_FLOAT64_RTOL, f"{backend} {case}: {name} differs by {error:.2e} after two steps"


@pytest.mark.parametrize("name", ["step", "sign"])
def test_forward_only_activations_are_refused_for_training(name):
    spec = load_spec("mlp-relu-adam", [f'model.hidden=[{{units = 12, activation = "{name}"}}]'])
    with pytest.raises(SpecError, match="forward-only activation cannot be trained: its derivative is 0"):
        require_trainable(spec)
