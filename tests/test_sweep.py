"""`mnist-parity sweep`: grid expansion, bad sweep files, and a sweep killed mid-way then rerun (no lost, no duplicated cells)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.errors import SpecError
from experiments.store import load_runs, store_path
from experiments.sweep import SweepDefinition, expand_cells, load_sweep, sweep_names
from tests.cli_helpers import mnist_parity
from tests.data_fixtures import write_npz

SEEDS = list(range(8))
KILL_AFTER_PUBLISHED = 2  # cells finished before the kill; the rest are in flight or not started
CELL_WAIT_S = 120.0  # the longest a tiny numpy cell may take to publish on a loaded 2-core machine


def tiny_sweep(tmp_path: Path, name: str = "tiny", grid: str = "", seeds=SEEDS, backends=("numpy",)) -> Path:
    """A sweep of a 16-unit MLP trained for one epoch on 60 random digits: about a second per cell."""
    data = tmp_path / "digits.npz"
    if not data.exists():
        write_npz(data, n_train=60, n_test=20)
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
name = "{name}"
base = "mlp-relu-adam"
backends = {json.dumps(list(backends))}
seeds = {json.dumps(list(seeds))}
[set]
"model.hidden" = [{{ units = 16, activation = "relu" }}]
"training.epochs" = 1
"training.batch_size" = 20
"data.dataset" = "npz:{data}"
{grid}
""")
    return path


def published(sweep_root: Path) -> dict[str, int]:
    """Published cell key -> mtime_ns of its results.json."""
    cells = sweep_root / "cells"
    return {p.parent.name: p.stat().st_mtime_ns for p in cells.glob("*/results.json")} if cells.exists() else {}


def test_grid_expands_to_every_combination_with_stable_keys(tmp_path):
    path = tiny_sweep(tmp_path, grid='[grid]\n"model.hidden[*].activation" = ["relu", "tanh"]', seeds=[0, 1],
                      backends=("numpy", "torch"))
    sweep = load_sweep(str(path))
    cells = expand_cells(sweep)
    assert len(cells) == 2 * 2 * 2
    assert len({c.key for c in cells}) == len(cells)
    assert [c.key for c in expand_cells(load_sweep(str(path)))] == [c.key for c in cells]
    tanh = next(c for c in cells if c.factors["model.hidden[*].activation"] == "tanh")
    assert tanh.spec["model"]["hidden"][0]["activation"]["name"] == "tanh"
    assert tanh.key.endswith(f"-{tanh.backend}")
    json.dumps([c.to_dict() for c in cells])  # plain data: a distributed engine could ship it


def test_identical_specs_become_one_cell(tmp_path):
    grid = '[grid."training.epochs"]\none = 1\nalso-one = 1'
    cells = expand_cells(load_sweep(str(tiny_sweep(tmp_path, grid=grid, seeds=[0]))))
    assert len(cells) == 1


@pytest.mark.parametrize("name", ["study-activations", "study-optimizers", "study-seed-cnn"])
def test_shipped_study_sweeps_expand(name):
    assert name in sweep_names()
    cells = expand_cells(load_sweep(name))
    assert {c.backend for c in cells} == {"torch", "keras", "jax"}
    assert len({c.key for c in cells}) == len(cells)


@pytest.mark.parametrize("text, message", [
    ('name = "x"\nbase = "mlp-relu-adam"\nbackends = ["tensorflow"]', "unknown backend 'tensorflow'"),
    ('name = "bad name!"\nbase = "mlp-relu-adam"\nbackends = ["numpy"]', "name"),
    ('name = "x"\nbase = "mlp-relu-adam"\nbackends = ["numpy"]\nepochs = 3', "epochs"),
    ('name = "x"\nbase = "mlp-relu-adam"\nbackends = ["numpy"]\n[grid]\n"model.hidden[*].activation" = ["swish2"]', "swish2"),
    ('name = "x"\nbase = "mlp-relu-adam"\nbackends = ["numpy"]\n[grid]\n"optimizer" = [{name = "adam"}, {name = "adam"}]', "share a label"),
    ('name = "x"\nbase = "mlp-relu-adam"\nbackends = ["numpy"]\n[grid]\n"model.kind[*]" = [1]', "not a list"),
    ('name = "x"\nbase = "no-such-preset"\nbackends = ["numpy"]', "unknown preset"),
    ('name = "x"\nbase = [', "not valid TOML"),
])
def test_bad_sweep_file_is_one_line_exit_2_and_writes_nothing(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "runs"
    result = mnist_parity("sweep", str(path), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_unknown_sweep_name_lists_the_shipped_ones(tmp_path):
    result = mnist_parity("sweep", "study-nothing", "--out", str(tmp_path))
    assert result.returncode == 2 and "study-activations" in result.stderr


def test_definition_rejects_duplicate_labels_in_code():
    with pytest.raises(ValueError):
        SweepDefinition(name="x", base="mlp-relu-adam", backends=["numpy"], grid={"seed": [1, "1"]})
    with pytest.raises(SpecError):
        load_sweep("/no/such/sweep.toml")


def test_killed_sweep_reruns_to_completion_without_lost_or_duplicated_cells(tmp_path):
    path = tiny_sweep(tmp_path)
    out = tmp_path / "runs"
    sweep_root = out / "sweeps" / "tiny"
    expected = {c.key for c in expand_cells(load_sweep(str(path)))}
    assert len(expected) == len(SEEDS)

    process = subprocess.Popen([sys.executable, "-m", "experiments", "sweep", str(path), "--out", str(out), "--threads", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + CELL_WAIT_S
    while len(published(sweep_root)) < KILL_AFTER_PUBLISHED and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and its in-flight worker, mid-cell
    process.wait()
    before = published(sweep_root)
    assert KILL_AFTER_PUBLISHED <= len(before) < len(expected), "the kill must land mid-sweep"
    assert set(before) <= expected

    result = mnist_parity("sweep", str(path), "--out", str(out), "--threads", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    after = published(sweep_root)
    assert set(after) == expected
    assert {key: after[key] for key in before} == before, "finished cells must not be rerun"
    assert not list((sweep_root / "cells").glob(".partial-*"))
    rows = load_runs(store_path(out), sweep="tiny")
    assert sorted(rows["cell_key"]) == sorted(expected)
    assert (rows["status"] == "ok").all()
    document = json.loads((sweep_root / "sweep.json").read_text())
    assert {c["key"] for c in document["cells"]} == expected
    assert f"{len(before)} already finished" in result.stderr

    again = mnist_parity("sweep", str(path), "--out", str(out), "--threads", "1")
    assert again.returncode == 0 and f"{len(expected)} already finished" in again.stderr
    assert published(sweep_root) == after
    assert len(load_runs(store_path(out), sweep="tiny")) == len(expected)


def test_failing_cell_costs_only_itself_and_reruns_only_when_asked(tmp_path):
    grid = '[grid."optimizer.learning_rate"]\nsane = 0.001\nexploding = 1e30'  # 1e30 makes the loss non-finite
    path = tiny_sweep(tmp_path, grid=grid, seeds=[0])
    out = tmp_path / "runs"
    first = mnist_parity("sweep", str(path), "--out", str(out), "--threads", "1", "--workers", "2")
    assert first.returncode == 1, first.stderr[-2000:]
    rows = load_runs(store_path(out), sweep="tiny").set_index("cell_key")
    statuses = {r.factors_json["optimizer.learning_rate"]: r.status for r in rows.itertuples()}
    assert statuses == {"sane": "ok", "exploding": "failed"}
    assert "FAILED:" in first.stdout and "1 of 2 cells ok" in " ".join(first.stdout.split())
    failed_dir = next(p for p in (out / "sweeps" / "tiny" / "cells").iterdir() if rows.loc[p.name, "status"] == "failed")
    log = Path(json.loads((failed_dir / "results.json").read_text())["backends"]["numpy"]["log"])
    assert log.is_file() and failed_dir in log.parents  # the log moved with the published cell
    before = published(out / "sweeps" / "tiny")

    resumed = mnist_parity("sweep", str(path), "--out", str(out), "--threads", "1")
    assert resumed.returncode == 1 and "2 already finished" in resumed.stderr
    assert published(out / "sweeps" / "tiny") == before

    retried = mnist_parity("sweep", str(path), "--out", str(out), "--threads", "1", "--retry-failed")
    assert retried.returncode == 1 and "1 already finished, 1 to run" in retried.stderr
    after = published(out / "sweeps" / "tiny")
    assert after[failed_dir.name] != before[failed_dir.name]
    assert {k: v for k, v in after.items() if k != failed_dir.name} == {k: v for k, v in before.items() if k != failed_dir.name}
    assert len(load_runs(store_path(out), sweep="tiny")) == 2


def test_damaged_cell_is_moved_aside_and_rerun(tmp_path):
    path = tiny_sweep(tmp_path, seeds=[0, 1])
    out = tmp_path / "runs"
    assert mnist_parity("sweep", str(path), "--out", str(out), "--threads", "1").returncode == 0
    cells = out / "sweeps" / "tiny" / "cells"
    damaged = sorted(p for p in cells.iterdir() if not p.name.startswith("."))[0]
    (damaged / "results.json").write_text('{"truncated')
    result = mnist_parity("sweep", str(path), "--out", str(out), "--threads", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "moved aside" in result.stderr and "1 already finished, 1 to run" in result.stderr
    assert json.loads((damaged / "results.json").read_text())["backends"]["numpy"]["status"] == "ok"
    assert len(list(cells.glob(".damaged-*"))) == 1
    assert len(load_runs(store_path(out), sweep="tiny")) == 2


def test_second_run_of_a_running_sweep_is_refused(tmp_path):
    import fcntl

    path = tiny_sweep(tmp_path, seeds=[0])
    out = tmp_path / "runs"
    root = out / "sweeps" / "tiny"
    root.mkdir(parents=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running sweep holds it
        result = mnist_parity("sweep", str(path), "--out", str(out))
    assert result.returncode == 2 and "already running" in result.stderr and "Traceback" not in result.stderr
    assert not published(root)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers"),
    (["--threads", "0"], "--threads"),
    (["--no-download", "--set-dataset", "npz:/no/such/file.npz"], "no/such/file.npz"),
])
def test_bad_run_options_and_missing_data_fail_before_any_cell(tmp_path, args, message):
    path = tiny_sweep(tmp_path, seeds=[0])
    if "--set-dataset" in args:
        path.write_text(path.read_text().replace(str(tmp_path / "digits.npz"), args[-1]))
        args = args[:-2]
    out = tmp_path / "runs"
    result = mnist_parity("sweep", str(path), "--out", str(out), *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (out / "sweeps").exists()


def test_dry_run_lists_cells_and_trains_nothing(tmp_path):
    path = tiny_sweep(tmp_path, seeds=[0, 1], backends=("numpy", "torch"))
    out = tmp_path / "runs"
    result = mnist_parity("sweep", str(path), "--dry-run", "--out", str(out))
    assert result.returncode == 0 and "4 cells" in result.stdout
    assert {c.key for c in expand_cells(load_sweep(str(path)))} <= set(result.stdout.split())
    assert not out.exists()


def test_time_left_follows_epochs_and_drops_the_work_of_a_failed_cell():
    from experiments.sweep.display import SweepDisplay
    from experiments.sweep.local import SweepState

    display = SweepDisplay()
    state = SweepState(total=2)
    pending = [{"key": k, "factors": {}, "spec": {"training": {"epochs": 3}}} for k in ("a", "b")]
    display(state, "start", {"pending": pending})
    for _ in range(2):
        display(state, "epoch", {"key": "a", "event": "epoch"})
    display.started -= 10.0 - (time.perf_counter() - display.started)  # 10 s elapsed for 2 of 6 epochs
    assert display.eta_seconds() == pytest.approx(20.0, rel=0.01)
    state.done, state.failed = 1, 1
    display(state, "cell-finished", {"key": "a", "status": "failed", "reason": "boom", "seconds": 10.0})
    assert display.epochs_total == 5  # a's unrun epoch is gone; b's three remain
    assert display.eta_seconds() == pytest.approx(15.0, rel=0.01)
