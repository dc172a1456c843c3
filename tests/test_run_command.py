"""`mnist-parity run` end to end: all backends side by side, failures isolated, results written."""

import math
import os

import pandas as pd
import pytest

from backends import DEFAULT_BACKENDS
from experiments.store import load_runs, store_path
from tests.cli_helpers import mnist_parity, only_run_dir, read_results

# After one epoch on 3,600 subset digits an MLP trained with Adam is far above chance (10%).
ONE_EPOCH_MLP_MIN_ACCURACY = 0.80


RUN_BACKENDS = (*DEFAULT_BACKENDS, "numpy")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """Two epochs of mlp-relu-adam on every backend and the oracle, float64 from one shared initial draw: the run
    the tests below read, and the trajectories test_same_init_float64_trajectories_agree compares."""
    out = tmp_path_factory.mktemp("runs")
    result = mnist_parity("run", "mlp-relu-adam", "--epochs", "2", "--dataset", "mnist-subset", "--backends",
                          ",".join(RUN_BACKENDS), "--same-init", "--set", 'dtype="float64"', "--out", str(out))
    return result, only_run_dir(out)


def test_run_succeeds_on_every_backend(mlp_run):
    result, run_dir = mlp_run
    assert result.returncode == 0, result.stderr[-2000:]
    document = read_results(run_dir)
    assert list(document["backends"]) == list(RUN_BACKENDS)
    for name, outcome in document["backends"].items():
        assert outcome["status"] == "ok", (name, outcome["reason"])
        assert outcome["metrics"]["test_accuracy"] >= ONE_EPOCH_MLP_MIN_ACCURACY, name
        assert len(outcome["history"]) == 2
        assert outcome["metrics"]["samples_per_s"] > 0
    counts = {outcome["parameter_count"] for outcome in document["backends"].values()}
    assert counts == {784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10}


def test_results_record_spec_dataset_and_environment(mlp_run):
    _, run_dir = mlp_run
    document = read_results(run_dir)
    assert document["spec"]["name"] == "mlp-relu-adam" and document["spec"]["training"]["epochs"] == 2
    dataset = document["dataset"]
    assert dataset["name"] == "mnist-subset" and dataset["split"] == {"train": 3600, "validation": 400, "test": 1000}
    assert all(len(value) == 64 for value in dataset["sha256"].values())
    assert document["environment"]["python"] and document["environment"]["packages"]["numpy"]
    history = pd.read_csv(run_dir / "history.csv")
    assert sorted(history["backend"].unique()) == sorted(RUN_BACKENDS)
    assert set(history["epoch"]) == {1, 2}


def test_table_is_printed(mlp_run):
    result, _ = mlp_run
    for header in ("test acc", "samples/s", "params", "framework"):
        assert header in result.stdout
    assert "torch 2.13.0" in result.stdout and "keras 3.15.1" in result.stdout and "jax 0.10.2" in result.stdout


def test_a_caption_under_the_table_says_what_samples_per_second_counts(mlp_run):
    result, _ = mlp_run
    lines = result.stdout.splitlines()
    caption = next(i for i, line in enumerate(lines) if line.startswith("samples/s (steady):"))
    assert caption > max(i for i, line in enumerate(lines) if line.startswith("└"))  # under the table
    text = " ".join(lines[caption:caption + 3])  # rich may wrap it
    for words in ("epochs 2 to the last", "optimizer steps only", "compilation", "determinism settings on", "threads:",
                  "torch ", "keras ", "jax XLA's own pool", "numpy ", "others' CPU"):
        assert words in text, text


# /proc's counters tick in jiffies (10 ms) per core: a measured load can exceed the machine's cores by this much
LOAD_SLACK_CORES = 0.1


def test_each_backend_records_the_load_while_it_trained(mlp_run):
    """results.json and the store carry, per backend, the cores other processes kept busy while it trained."""
    _, run_dir = mlp_run
    backends = read_results(run_dir)["backends"]
    rows = load_runs(store_path(run_dir.parent)).set_index("backend")
    for name, outcome in backends.items():
        load = outcome["load"]
        assert load["cores"] == os.cpu_count() and load["threads"] == os.cpu_count(), name
        assert 0 <= load["mean"] <= load["max"] <= load["cores"] + LOAD_SLACK_CORES and load["seconds"] > 0, (name, load)
        assert load["window"] in ("epochs 2 to the last", "the worker's whole run"), (name, load)
        assert rows.loc[name, "load_json"] == load


# One seed-cnn epoch on the subset (56 steps of Adam at 1e-3, each framework's own initialisation), in
# train mode: measured train loss 1.99-2.08 and train accuracy 0.30-0.33 on torch, keras and jax, 3.2
# points apart. (Eval mode is still at chance, 0.10: the batch norms' running statistics, momentum 0.99,
# have not caught up after 56 steps.)
ONE_EPOCH_CNN_MAX_TRAIN_LOSS = 2.2  # below ln 10 = 2.303, the loss of a uniform prediction
ONE_EPOCH_CNN_MIN_TRAIN_ACCURACY = 0.2  # twice chance
ONE_EPOCH_CNN_ACCURACY_BAND = 0.10  # largest train-accuracy gap between backends started from different draws


def test_seed_cnn_one_epoch_on_every_backend(tmp_path):
    result = mnist_parity("run", "seed-cnn", "--epochs", "1", "--dataset", "mnist-subset", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    document = read_results(only_run_dir(tmp_path))
    assert list(document["backends"]) == list(DEFAULT_BACKENDS)
    assert {o["status"] for o in document["backends"].values()} == {"ok"}
    assert {o["parameter_count"] for o in document["backends"].values()} == {344570}
    accuracies = {}
    for name, outcome in document["backends"].items():
        (epoch,) = outcome["history"]
        assert epoch["epoch"] == 1 and math.isfinite(outcome["metrics"]["test_loss"]) and math.isfinite(epoch["val_loss"]), name
        assert epoch["train_loss"] <= ONE_EPOCH_CNN_MAX_TRAIN_LOSS, f"{name}: train loss {epoch['train_loss']:.3f}"
        assert epoch["train_accuracy"] >= ONE_EPOCH_CNN_MIN_TRAIN_ACCURACY, f"{name}: train accuracy {epoch['train_accuracy']:.3f}"
        accuracies[name] = epoch["train_accuracy"]
    assert max(accuracies.values()) - min(accuracies.values()) <= ONE_EPOCH_CNN_ACCURACY_BAND, accuracies


def test_failing_backend_does_not_cost_the_others(tmp_path):
    fake = tmp_path / "fake"
    (fake / "jax").mkdir(parents=True)
    (fake / "jax" / "__init__.py").write_text("raise ImportError('jax is broken on purpose')\n")
    out = tmp_path / "runs"
    result = mnist_parity(
        "run", "mlp-relu-adam", "--epochs", "1", "--dataset", "mnist-subset", "--backends", "torch,jax", "--out", str(out),
        env={"PYTHONPATH": str(fake)},
    )
    assert result.returncode == 1
    backends = read_results(only_run_dir(out))["backends"]
    assert backends["torch"]["status"] == "ok"
    assert backends["jax"]["status"] == "failed" and "jax is broken on purpose" in backends["jax"]["reason"]
    assert "FAILED" in result.stdout


def test_nan_loss_is_reported_as_failure(tmp_path):
    result = mnist_parity(
        "run", "mlp-relu-adam", "--epochs", "1", "--dataset", "mnist-subset", "--backends", "torch",
        "--set", 'optimizer={name="sgd", learning_rate=1e30}', "--out", str(tmp_path),
    )
    assert result.returncode == 1
    outcome = read_results(only_run_dir(tmp_path))["backends"]["torch"]
    assert outcome["status"] == "failed" and "NonFiniteLoss" in outcome["reason"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "no-such-preset"], "unknown preset 'no-such-preset'; available presets:"),
        (["run", "mlp-relu-adam", "--set", "optimizer.learning_rate=nan"], "optimizer.learning_rate: got nan"),
        (["run", "mlp-relu-adam", "--epochs", "-3"], "training.epochs: got -3"),
        (["run", "mlp-relu-adam", "--backends", "torch,mxnet"], "unknown backend 'mxnet'; allowed: torch, keras, jax, numpy"),
        (["run", "mlp-relu-adam", "--dataset", "cifar"], "cifar"),
        (["run", "mlp-relu-adam", "--epochs", "ten"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
        (["run", "missing-file.toml"], "spec file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, expected):
    result = mnist_parity(*args, "--out", str(tmp_path / "runs")) if args[0] == "run" else mnist_parity(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_full_mnist_offline_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = mnist_parity(
        "run", "mlp-relu-adam", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--no-download",
        "--out", str(tmp_path / "runs"), env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "MNIST_PARITY_DATA": ""},
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "mnist-subset" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_list_shows_presets_datasets_and_support():
    result = mnist_parity("list")
    assert result.returncode == 0, result.stderr
    for text in ("seed-cnn", "mlp-relu-adam", "mnist-subset", "leaky_relu", "adam", "categorical_crossentropy"):
        assert text in result.stdout


# float64, identical initial weights and batches, no dropout: 114 Adam steps (two epochs) on every backend
# follow the oracle's trajectory to rounding level: losses measured at most 2.7e-16 relative
# (train, validation and test); 1e-14 leaves room for summation order, and accuracies are equal.
SAME_INIT_FLOAT64_RTOL = 1e-14


def test_same_init_float64_trajectories_agree(mlp_run):
    _, run_dir = mlp_run
    document = read_results(run_dir)
    assert document["initialisation"] == "same NumPy draw for every backend"
    oracle = document["backends"]["numpy"]
    for backend in DEFAULT_BACKENDS:
        outcome = document["backends"][backend]
        assert len(outcome["history"]) == len(oracle["history"]) == 2 and outcome["parameter_count"] == oracle["parameter_count"]
        for epoch in range(2):
            for key in ("train_loss", "val_loss"):
                got, want = outcome["history"][epoch][key], oracle["history"][epoch][key]
                assert abs(got - want) <= SAME_INIT_FLOAT64_RTOL * abs(want), f"{backend} epoch {epoch + 1} {key}: {got!r} vs numpy {want!r}"
            for key in ("train_accuracy", "val_accuracy", "learning_rate"):  # counts of equal predictions; the schedule
                assert outcome["history"][epoch][key] == oracle["history"][epoch][key], f"{backend} epoch {epoch + 1} {key}"
        got, want = outcome["metrics"]["test_loss"], oracle["metrics"]["test_loss"]
        assert abs(got - want) <= SAME_INIT_FLOAT64_RTOL * abs(want), f"{backend} test_loss: {got!r} vs numpy {want!r}"
        assert outcome["metrics"]["test_accuracy"] == oracle["metrics"]["test_accuracy"] > ONE_EPOCH_MLP_MIN_ACCURACY, backend
