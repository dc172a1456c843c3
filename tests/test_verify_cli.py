"""`mnist-parity verify` through the command line: the seed CNN at its own Adam epsilon passes levels 1-4
in float64, and a planted difference in the oracle makes the command fail (exit 1, passed: false)."""

import json

import pytest

from experiments.spec import load_spec
from experiments.verify.tolerances import tolerance
from tests.cli_helpers import mnist_parity, only_run_dir

BACKENDS = ["torch", "keras", "jax"]
LEVELS = {"1": "forward", "2": "gradients", "3": "step", "4": "trajectory"}

SEED_CNN_STEPS = 5
"""The README's `verify seed-cnn --levels 1-4 --dtype float64` runs 100 steps (58 s on 2 cores;
trajectory 1.7e-9). The suite runs 5 (checkpoints 1, 2 and 5, about 25 s) at the preset's own Adam
epsilon 1e-7, against the project's own float64 tolerances (experiments/verify/tolerances.py)."""


@pytest.fixture(scope="module")
def seed_cnn_run(tmp_path_factory):
    """(printed output, verify.json) of `verify seed-cnn --levels 1-4 --dtype float64` on torch, keras and jax."""
    out = tmp_path_factory.mktemp("seed-cnn")
    result = mnist_parity("verify", "seed-cnn", "--levels", "1-4", "--dtype", "float64", "--steps", str(SEED_CNN_STEPS),
                          "--backends", ",".join(BACKENDS), "--dataset", "mnist-subset", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout, json.loads((only_run_dir(out) / "verify.json").read_text())


@pytest.fixture(scope="module")
def seed_cnn_document(seed_cnn_run):
    return seed_cnn_run[1]


def test_every_pair_is_compared_at_every_level_and_the_growth_is_printed(seed_cnn_run):
    stdout, document = seed_cnn_run
    for number, name in LEVELS.items():
        pairs = {(line["first"], line["second"]) for line in document["levels"][number]["summary"]}
        assert pairs == {(b, "numpy") for b in BACKENDS} | {("torch", "keras"), ("torch", "jax"), ("keras", "jax")}, name
    layers = {row["quantity"] for row in document["levels"]["1"]["rows"]}
    assert {"conv2d_0", "batch_norm_0", "flatten_0", "logits", "init/conv2d_0/kernel"} <= layers
    growth = document["levels"]["4"]["growth"]
    assert set(growth) == {f"{first} vs {second}" for first, second in pairs}
    assert all(0 <= e <= tolerance("trajectory", "float64") for pair in growth.values() for e in pair.values())
    assert "worst parameter error after each checkpoint step" in " ".join(stdout.split())


def test_seed_cnn_runs_at_the_presets_own_adam_epsilon(seed_cnn_document):
    preset = load_spec("seed-cnn").optimizer
    assert preset.name == "adam" and preset.epsilon == 1e-7  # the epsilon the trajectory tests swap for 1e-3
    assert seed_cnn_document["spec"]["optimizer"]["epsilon"] == preset.epsilon
    assert seed_cnn_document["spec"]["dtype"] == "float64"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("number", LEVELS)
def test_seed_cnn_levels_1_to_4_float64_pass_against_the_oracle(seed_cnn_document, backend, number):
    """Every backend against the NumPy oracle, level by level, within the project's float64 tolerance."""
    name = LEVELS[number]
    level = seed_cnn_document["levels"][number]
    line = next(line for line in level["summary"] if (line["first"], line["second"]) == (backend, "numpy"))
    assert line["compared"] > 0, f"{backend} {name}: nothing compared"
    assert line["tolerance"] == tolerance(name, "float64")
    assert line["passed"] and 0 <= line["worst_error"] <= tolerance(name, "float64"), f"{backend} {name}: {line}"
    if name == "trajectory":
        assert list(level["growth"][f"{backend} vs numpy"]) == ["1", "2", str(SEED_CNN_STEPS)]
    assert seed_cnn_document["passed"] is True


ADAM_EPSILON_HAT = '''
import numpy as np
from backends.numpy import optimizers as numpy_optimizers


def update(self, p, g, s, lr):  # Keras' built-in Adam (epsilon hat), as tests/test_verify_planted.py plants it
    b1, b2, eps = self.spec.beta_1, self.spec.beta_2, self.spec.epsilon
    m = s["m"] = b1 * s["m"] + (1 - b1) * g
    v = s["v"] = b2 * s["v"] + (1 - b2) * g * g
    return p - lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t) * m / (np.sqrt(v) + eps)


numpy_optimizers.Adam.update = update
'''


def test_a_planted_oracle_difference_fails_verify_with_exit_1(tmp_path):
    """The oracle's Adam replaced by the epsilon-hat form in every process the command starts (a
    sitecustomize on PYTHONPATH): forward and gradients still pass, the step level fails naming Adam's
    weights, the command exits 1 and verify.json says passed: false."""
    import os
    from pathlib import Path

    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(ADAM_EPSILON_HAT)
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join([str(plant), root, *filter(None, [os.environ.get("PYTHONPATH")])])
    result = mnist_parity("verify", "mlp-relu-adam", "--levels", "1-3", "--dtype", "float64", "--backends", "torch",
                          "--dataset", "mnist-subset", "--out", str(tmp_path / "runs"), env={"PYTHONPATH": path})
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    document = json.loads((only_run_dir(tmp_path / "runs") / "verify.json").read_text())
    assert document["passed"] is False
    assert document["levels"]["1"]["passed"] and document["levels"]["2"]["passed"]
    step = document["levels"]["3"]
    assert not step["passed"]
    (line,) = step["summary"]
    assert (line["first"], line["second"], line["passed"]) == ("torch", "numpy", False)
    assert line["first_failure"].startswith("adam/weights/") and line["worst_error"] > tolerance("step", "float64")
    assert "verify: FAILED" in result.stdout
