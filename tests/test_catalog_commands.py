"""Issue 3 at the command level: a full support matrix, live framework defaults, exotic entries through `run --set`."""

import json
import subprocess
import sys

import pytest

from backends import BACKENDS
from experiments.support import CATEGORIES, support_matrix
from tests.cli_helpers import mnist_parity, only_run_dir, read_results


@pytest.mark.parametrize("category", CATEGORIES)
def test_support_matrix_has_no_empty_cell(category):
    missing = [(row["name"], b) for row in support_matrix(category) for b in BACKENDS if not row[b]]
    assert not missing, f"{category}: unsupported {missing}"


@pytest.fixture(scope="module")
def defaults_output():
    return mnist_parity("defaults", timeout=600)


def test_defaults_command_reads_every_framework(defaults_output):
    assert defaults_output.returncode == 0, defaults_output.stderr[-1500:]
    text = defaults_output.stdout
    # LeakyReLU: torch 0.01, Keras layer 0.3, Keras function 0.2, Flax 0.01; the suite requires it.
    for fragment in ("torch.nn.LeakyReLU", "keras.layers.LeakyReLU", "jax.nn.leaky_relu", "from spec: required"):
        assert fragment in text, fragment


@pytest.fixture(scope="module")
def framework_rows():
    """`python -m backends.<name>.defaults` once per backend (each imports its framework)."""
    cache = {}

    def rows(backend):
        if backend not in cache:
            result = subprocess.run([sys.executable, "-m", f"backends.{backend}.defaults"], capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr[-1000:]
            cache[backend] = json.loads(result.stdout)
        return cache[backend]

    return rows


@pytest.mark.parametrize(
    "backend, entry, parameter, value",
    [
        ("torch", "leaky_relu", "negative_slope", 0.01),
        ("keras", "leaky_relu", "negative_slope", 0.3),
        ("jax", "leaky_relu", "negative_slope", 0.01),
        ("torch", "adam", "epsilon", 1e-8),
        ("keras", "adam", "epsilon", 1e-7),
        ("jax", "adam", "epsilon", 1e-8),
        ("keras", "batch_norm", "epsilon", 1e-3),
        ("torch", "batch_norm", "epsilon", 1e-5),
    ],
)
def test_framework_defaults_are_read_from_the_installed_framework(framework_rows, backend, entry, parameter, value):
    values = [row["value"] for row in framework_rows(backend) if row["entry"] == entry and row["parameter"] == parameter]
    assert value in values, (backend, entry, parameter, values)


def test_run_accepts_exotic_entries_through_set(tmp_path):
    result = mnist_parity(
        "run", "mlp-relu-adam", "--epochs", "1", "--dataset", "mnist-subset", "--out", str(tmp_path),
        "--set", 'model.hidden=[{units = 64, activation = {name = "prelu", initial_value = 0.25, per_channel = true}},'
                 ' {units = 48, activation = {name = "maxout", pieces = 3}}, {units = 32, activation = "rrelu", dropout = 0.1},'
                 ' {units = 16, activation = {name = "gelu", approximate = "tanh"}}]',
        "--set", 'loss={name = "kl_divergence", label_smoothing = 0.05}',
        "--set", 'optimizer={name = "nadam", learning_rate = 0.002, epsilon = 1e-8, momentum_decay = 0.004, clip_global_norm = 5.0}',
        "--set", 'schedule={name = "cosine", decay_epochs = 1, alpha = 0.1}',
    )
    assert result.returncode == 0, result.stderr[-2000:]
    document = read_results(only_run_dir(tmp_path))
    assert {o["status"] for o in document["backends"].values()} == {"ok"}
    assert len({o["parameter_count"] for o in document["backends"].values()}) == 1
    assert document["spec"]["optimizer"]["name"] == "nadam"


def test_training_through_step_is_refused(tmp_path):
    result = mnist_parity("run", "mlp-relu-adam", "--set", 'model.hidden[0].activation="step"', "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and "forward-only activation cannot be trained" in result.stderr
    assert not (tmp_path / "runs").exists()
