"""implementation = "native": the spec field, --native on run, verify and sweep, and what a run records."""

import json

import pytest

from experiments.errors import SpecError
from experiments.spec import load_spec
from experiments.spec.experiment import COMPONENTS
from experiments.store import load_runs, store_path
from tests.cli_helpers import mnist_parity, only_run_dir


def test_native_is_a_spec_field_whose_components_can_stay_on_the_catalog():
    spec = load_spec("mlp-relu-adam", ['implementation="native"', 'catalog_components=["optimizer", "activation:relu"]'])
    assert not spec.uses_native("optimizer") and not spec.uses_native("activation", "relu")
    assert spec.uses_native("activation", "tanh") and spec.uses_native("batch_norm")
    assert not load_spec("mlp-relu-adam").uses_native("loss")
    assert load_spec("mlp-relu-adam").spec_hash() != spec.spec_hash()


@pytest.mark.parametrize("overrides, message", [
    (['catalog_components=["optimizer"]'], 'catalog_components: only with implementation = "native"'),
    (['implementation="native"', 'catalog_components=["optimiser"]'], "catalog_components: 'optimiser' is not a component"),
    (['implementation="builtin"'], "implementation: got 'builtin'; input should be 'catalog' or 'native'"),
])
def test_bad_implementation_settings_are_one_line(overrides, message):
    with pytest.raises(SpecError) as raised:
        load_spec("mlp-relu-adam", overrides)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_run_native_records_the_implementation_and_what_fell_back(tmp_path):
    """--native is --set implementation="native": results.json, the store row and the backend's settings say so; the
    NumPy oracle has no built-ins and names every component as a fallback."""
    result = mnist_parity("run", "mlp-relu-adam", "--native", "--backends", "numpy", "--epochs", "1", "--dataset",
                          "mnist-subset", "--no-download", "--threads", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads((only_run_dir(tmp_path) / "results.json").read_text())
    assert document["spec"]["implementation"] == "native"
    settings = document["backends"]["numpy"]["settings"]
    assert settings["implementation"] == "native" and settings["native_fallbacks"] == list(COMPONENTS)
    assert list(load_runs(store_path(tmp_path))["implementation"]) == ["native"]
    again = mnist_parity("run", "--resume", str(only_run_dir(tmp_path)), "--native")
    assert again.returncode == 2 and "--resume: --native cannot be combined with it" in again.stderr


def test_sweep_native_is_its_own_sweep(tmp_path):
    catalog = mnist_parity("sweep", "study-optimizers", "--dry-run")
    native = mnist_parity("sweep", "study-optimizers", "--native", "--dry-run")
    assert catalog.returncode == native.returncode == 0, native.stderr
    keys = lambda out: {line.split()[0] for line in out.splitlines() if "backend=" in line}
    assert len(keys(catalog.stdout)) == len(keys(native.stdout)) == 30
    assert not keys(catalog.stdout) & keys(native.stdout)  # other specs, other cells
