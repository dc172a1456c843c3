"""Plant a known difference in one side of the ladder and check that it fails at the right level, naming the right place.

The planted side is the NumPy oracle with one thing changed (a spec field, or a function patched),
run in this process through the probe's own code and compared by the ladder's own comparison.
"""

import numpy as np
import pytest

from backends.numpy import model as numpy_model
from backends.numpy import optimizers as numpy_optimizers
from backends.numpy.trainer import Trainer
from experiments.data import load_dataset, to_model_inputs
from experiments.spec import build_plan, load_spec
from experiments.spec import plan as P
from experiments.verify.cases import LEVEL3_OPTIMIZERS
from experiments.verify.ladder import compare_all, summarize
from experiments.protocol import ProbeJob
from experiments.training import SplitData, train
from experiments.verify.probe import probe_cell

SMALL_CNN = [
    'model.kind="cnn"',
    'model.conv=[{filters = 4, kernel_size = 3, padding = "same", activation = "relu", pool = {size = 2, stride = 2, padding = "same"}}]',
    'model.hidden=[{units = 16, activation = "relu"}]',
]
BATCH_NORM_MLP = ['model.hidden=[{units = 16, activation = "relu", batch_norm = {momentum = 0.9, epsilon = 1e-3}}]']
ADAM = ['optimizer={name = "adam", learning_rate = 0.001, epsilon = 1e-7}']


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    dataset = load_dataset("mnist-subset")
    x, y = to_model_inputs(dataset.x_train[:256], dataset.y_train[:256], 10, "float64")
    path = tmp_path_factory.mktemp("planted") / "data.npz"
    np.savez(path, x=x, y=y)
    return path


def _probe(spec, data_path, gradients_dir, levels):
    job = ProbeJob(backend="numpy", cells={"cell": {"spec": spec.to_dict(), "step_cases": {"adam": LEVEL3_OPTIMIZERS["adam"]}}},
                   data_path=str(data_path), levels=list(levels), steps=3, threads=1, gradients_dir=str(gradients_dir))
    gradients_dir.mkdir(exist_ok=True)
    with np.load(data_path) as arrays:
        return probe_cell(job, "cell", {"x": arrays["x"], "y": arrays["y"]}, lambda what: None)


def _ladder(overrides, planted_overrides, data_path, tmp_path, levels=(1, 2, 3, 4), patch=None):
    """Summary lines of the ladder between the oracle and a planted copy reported as "keras"."""
    spec = load_spec("mlp-relu-adam", ['dtype="float64"', *overrides])
    oracle = _probe(spec, data_path, tmp_path / "oracle", list(levels))
    planted_spec = load_spec("mlp-relu-adam", ['dtype="float64"', *overrides, *planted_overrides])
    with pytest.MonkeyPatch.context() as monkeypatch:
        if patch:
            patch(monkeypatch)
        planted = _probe(planted_spec, data_path, tmp_path / "planted", list(levels))
    rows = compare_all({"numpy": oracle, "keras": planted}, "float64", spec)
    plan = build_plan(spec.model, (28, 28, 1), 10)
    return {line["level"]: line for line in summarize(rows, [layer.name for layer in plan])}


def test_batch_norm_epsilon_fails_at_the_forward_level_naming_the_batch_norm(data_path, tmp_path):
    lines = _ladder(BATCH_NORM_MLP, ['model.hidden=[{units = 16, activation = "relu", batch_norm = {momentum = 0.9, epsilon = 1e-5}}]'],
                    data_path, tmp_path, levels=(1, 2))
    assert not lines["forward"]["passed"]
    assert lines["forward"]["first_failure"] == "batch_norm_0"
    assert "epsilon" in lines["forward"]["hint"]
    assert not lines["gradients"]["passed"]


def _flatten_channels_first(monkeypatch):
    """torch's (C, H, W) flatten order where the canonical order is (H, W, C)."""
    forward = numpy_model.layer_forward

    def planted(layer, params, x, train, noise):
        if isinstance(layer, P.Flatten):
            return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1), x.shape
        return forward(layer, params, x, train, noise)

    monkeypatch.setattr(numpy_model, "layer_forward", planted)


def test_wrong_flatten_order_fails_at_the_forward_level_naming_the_flatten(data_path, tmp_path):
    lines = _ladder(SMALL_CNN, [], data_path, tmp_path, levels=(1,), patch=_flatten_channels_first)
    assert not lines["forward"]["passed"]
    assert lines["forward"]["first_failure"] == "flatten_0"  # conv, activation and pool before it agree
    assert "flatten order" in lines["forward"]["hint"]


def _keras_epsilon_hat(monkeypatch):
    """Keras' built-in Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v) + eps)."""

    def update(self, p, g, s, lr):
        b1, b2, eps = self.spec.beta_1, self.spec.beta_2, self.spec.epsilon
        m = s["m"] = b1 * s["m"] + (1 - b1) * g
        v = s["v"] = b2 * s["v"] + (1 - b2) * g * g
        return p - lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t) * m / (np.sqrt(v) + eps)

    monkeypatch.setattr(numpy_optimizers.Adam, "update", update)


def test_epsilon_hat_passes_forward_and_gradients_and_fails_the_step_naming_adam(data_path, tmp_path):
    lines = _ladder(ADAM, [], data_path, tmp_path, patch=_keras_epsilon_hat)
    assert lines["forward"]["passed"] and lines["gradients"]["passed"]
    assert not lines["step"]["passed"]
    assert lines["step"]["first_failure"].startswith("adam/weights/")
    assert "keras-adam-epsilon-hat (keras)" in lines["step"]["hint"]
    assert not lines["trajectory"]["passed"]


def test_an_unplanted_copy_passes_every_level(data_path, tmp_path):
    lines = _ladder(ADAM, [], data_path, tmp_path)
    assert all(line["passed"] for line in lines.values()), lines
    assert max(line["worst_error"] for line in lines.values()) == 0.0  # same code, same inputs: bit for bit


def test_the_probe_trajectory_steps_through_the_runs_own_batches_with_a_partial_last_batch(data_path, tmp_path):
    """Level 4 follows spec.training.drop_last like a run does (it used to drop the last partial batch whatever the
    spec said): with 256 samples in batches of 100 and drop_last false, each epoch is 100, 100, 56, and the probe's
    step losses, averaged per epoch by batch size, are the run's per-epoch training losses."""
    spec = load_spec("mlp-relu-adam", ["training.batch_size=100", "training.drop_last=false", "training.epochs=2"])
    out = _probe(spec, data_path, tmp_path / "gradients", [4])
    losses = out["trajectory/loss"]
    assert len(losses) == 3  # _probe asks for 3 steps: one whole epoch, its partial last batch included
    with np.load(data_path) as arrays:
        x, y = arrays["x"], arrays["y"]
    trainer = Trainer(spec, build_plan(spec.model, (28, 28, 1), 10), 1)
    history = train(trainer, spec, SplitData(x, y, x[:0], y[:0], x[:10], y[:10]), lambda record: None).history
    sizes = np.array([100, 100, 56])
    assert abs(losses @ sizes / sizes.sum() - history[0].train_loss) <= 1e-15 * abs(history[0].train_loss)
