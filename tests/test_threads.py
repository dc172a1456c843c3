"""The worker thread environment (experiments.threads): what it sets, what it keeps, and what the record shows.

Why these variables: see experiments.threads (issue 10). The expected values are spelled out here,
not taken from the module, so a changed or dropped setting fails a test. Timings and the
reproducibility under load are measured by `python -m experiments.stress`, not tested here.
"""

import os
import subprocess
import sys

import pytest

from experiments.threads import seen_settings, thread_settings, worker_environment
from tests.cli_helpers import only_run_dir, read_results
from tests.test_neutral_imports import BLOCKER, FRAMEWORKS

# The environment of a 2-thread worker whose parent set none of these variables.
EXPECTED_TWO_THREADS = {
    "OMP_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
    "OPENBLAS_NUM_THREADS": "2",
    "OMP_DYNAMIC": "FALSE",  # libgomp may not shrink a team (oneMKL reproducibility conditions)
    "MKL_DYNAMIC": "FALSE",  # MKL may not use fewer threads than asked
    "MKL_CBWR": "AUTO",  # MKL conditional numerical reproducibility: deterministic reductions, static scheduling
    "OMP_WAIT_POLICY": "PASSIVE",  # waiting OpenMP threads sleep instead of spinning (no collapse under load)
}
ALL_VARIABLES = [*EXPECTED_TWO_THREADS, "GOMP_SPINCOUNT"]
# A run small enough for a unit-test budget: 3,600 subset digits in batches of 600 is 6 steps.
SMALL_RUN = ["--epochs", "1", "--set", "training.batch_size=600", "--dataset", "mnist-subset", "--no-download"]


@pytest.fixture
def clean_environment(monkeypatch):
    """The parent environment without any of the variables under test (the developer's shell may set some)."""
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_two_thread_worker_gets_every_setting(clean_environment):
    environment = worker_environment(2)
    assert {name: environment.get(name) for name in EXPECTED_TWO_THREADS} == EXPECTED_TWO_THREADS
    assert "GOMP_SPINCOUNT" not in environment  # PASSIVE alone means no spinning


def test_thread_counts_follow_the_argument(clean_environment):
    environment = worker_environment(1)
    assert (environment["OMP_NUM_THREADS"], environment["MKL_NUM_THREADS"], environment["OPENBLAS_NUM_THREADS"]) == ("1", "1", "1")


def test_thread_settings_lists_exactly_what_the_worker_environment_adds(clean_environment):
    parent = dict(os.environ)
    environment = worker_environment(2)
    added = {name: value for name, value in environment.items() if parent.get(name) != value}
    assert added == thread_settings(2) == EXPECTED_TWO_THREADS


def test_reproducibility_settings_replace_the_parents_values(clean_environment):
    for name, value in {"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8", "OMP_DYNAMIC": "TRUE",
                        "MKL_DYNAMIC": "TRUE", "MKL_CBWR": "COMPATIBLE"}.items():
        clean_environment.setenv(name, value)
    environment = worker_environment(2)
    assert {name: environment[name] for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_DYNAMIC", "MKL_DYNAMIC", "MKL_CBWR")} == {
        "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OMP_DYNAMIC": "FALSE", "MKL_DYNAMIC": "FALSE", "MKL_CBWR": "AUTO"}


def test_a_users_wait_policy_is_kept(clean_environment):
    clean_environment.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert worker_environment(2)["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_users_spin_count_is_kept_and_no_policy_overrides_it(clean_environment):
    clean_environment.setenv("GOMP_SPINCOUNT", "10000")
    environment = worker_environment(2)
    assert environment["GOMP_SPINCOUNT"] == "10000" and "OMP_WAIT_POLICY" not in environment


def test_other_parent_variables_pass_through(clean_environment):
    clean_environment.setenv("MNIST_PARITY_TEST_MARKER", "kept")
    assert worker_environment(2)["MNIST_PARITY_TEST_MARKER"] == "kept"


def test_seen_settings_reads_this_process_environment(clean_environment):
    clean_environment.setenv("MKL_CBWR", "AVX2")
    seen = seen_settings()
    assert seen["MKL_CBWR"] == "AVX2" and seen["OMP_DYNAMIC"] is None and list(seen) == ALL_VARIABLES


@pytest.mark.parametrize("module", ["experiments.threads", "experiments.stress"])
def test_module_imports_no_framework(module):
    code = BLOCKER.format(frameworks=set(FRAMEWORKS), module=module)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_torch_worker_records_the_environment_it_ran_with(tmp_path):
    """End to end: the parent sets a conflicting MKL_CBWR and OMP_DYNAMIC (replaced) and its own wait policy (kept)."""
    parent = {name: value for name, value in os.environ.items() if name not in ALL_VARIABLES}
    parent.update(MKL_CBWR="COMPATIBLE", OMP_DYNAMIC="TRUE", OMP_WAIT_POLICY="ACTIVE")
    result = subprocess.run(
        [sys.executable, "-m", "experiments", "run", "mlp-relu-adam", "--backends", "torch", "--threads", "1",
         *SMALL_RUN, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, env=parent)
    assert result.returncode == 0, result.stderr[-2000:]
    torch_record = read_results(only_run_dir(tmp_path))["backends"]["torch"]
    assert torch_record["status"] == "ok", torch_record["reason"]
    settings = torch_record["settings"]
    assert settings["thread_environment"] == {
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_DYNAMIC": "FALSE",
        "MKL_DYNAMIC": "FALSE", "MKL_CBWR": "AUTO", "OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}
    # What the libraries themselves report in the worker: one thread everywhere, libgomp not dynamic.
    assert (settings["threads"], settings["mkl_max_threads"], settings["omp_dynamic"]) == (1, 1, False)
    assert settings["deterministic"] is True
