"""What one `run` writes and says: file modes follow the umask, the banner gives the real split, and a single
epoch has no steady-state speed (its time includes compilation)."""

import os
import stat
import subprocess
import sys

import pytest

from tests.cli_helpers import only_run_dir, read_results

UMASK = 0o022
EXPECTED_MODE = 0o644  # 0o666 less UMASK: what any new file gets


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    command = [sys.executable, "-m", "experiments", "run", "mlp-relu-adam", "--backends", "numpy", "--epochs", "1",
               "--dataset", "mnist-subset", "--out", str(out), "--set", 'model.hidden=[{units = 8, activation = "relu"}]']
    result = subprocess.run(["sh", "-c", f'umask {UMASK:03o} && exec "$@"', "sh", *command], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr[-2000:]
    return result, only_run_dir(out)


@pytest.mark.parametrize("name", ["results.json", "history.csv"])
def test_files_get_the_umask_mode(one_epoch, name):
    _, run_dir = one_epoch
    assert stat.S_IMODE((run_dir / name).stat().st_mode) == EXPECTED_MODE


def test_banner_gives_the_split_training_uses(one_epoch):
    result, run_dir = one_epoch
    assert read_results(run_dir)["dataset"]["split"] == {"train": 3600, "validation": 400, "test": 1000}
    assert "(3,600 train / 400 validation / 1,000 test)" in result.stdout


def test_one_epoch_has_no_steady_speed(one_epoch):
    _, run_dir = one_epoch
    metrics = read_results(run_dir)["backends"]["numpy"]["metrics"]
    assert metrics["steady_samples_per_s"] is None and metrics["samples_per_s"] > 0
