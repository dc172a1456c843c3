"""The SQLite results store: one row per run and backend, idempotent, atomic, safe with concurrent writers, clear errors."""

import copy
import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from experiments.data.dataset import Dataset, DatasetRecord
from experiments.environment import PROJECT_ROOT
from experiments.errors import UserError
from experiments.outcome import BackendOutcome
from experiments.results import results_document
from experiments.runner import RunResult
from experiments.spec import load_spec
from experiments.store import database, load_runs, register_run, register_tree, store_path
from experiments.store.schema import SCHEMA_VERSION
from experiments.verify.ladder import compare_all, summarize
from experiments.verify.statistical import equivalence
from experiments.verify.statistical import summarize as accuracy_summary

SHA = "ab" * 32
TORCH_LOAD = {"mean": 0.25, "max": 0.75, "cores": 2, "threads": 2, "seconds": 3.5, "window": "epochs 2 to the last"}
VAL_ACCURACY = [0.91, 0.93, 0.92]  # best at epoch 2, final 0.92
FRAMEWORKS = ["torch", "tensorflow", "keras", "jax", "flax", "optax"]


def _outcome(backend: str, accuracy: float) -> BackendOutcome:
    outcome = BackendOutcome(backend)
    outcome.apply({"event": "started", "versions": {backend: "1.0"}, "parameter_count": 235146,
                   "settings": {"threads": 2, "deterministic": True, "dtype": "float32"}})
    for epoch, val in enumerate(VAL_ACCURACY, start=1):
        outcome.apply({"event": "epoch", "epoch": epoch, "train_loss": 0.5, "val_accuracy": val, "val_loss": 0.3})
    outcome.apply({"event": "finished", "test_accuracy": accuracy, "test_loss": 0.25, "train_time_s": 1.5,
                   "samples_per_s": 1000.0, "steady_samples_per_s": 1200.0})
    return outcome


@pytest.fixture(scope="module")
def run_document() -> dict:
    """A results.json document written by the project's own results_document: numpy and torch ok, jax failed; only
    torch has a measured load (numpy's entry is as a results.json from before the field)."""
    spec = load_spec("mlp-relu-adam", ["training.epochs=3", "seed=7"])
    images, labels = np.zeros((20, 28, 28), np.uint8), np.arange(20, dtype=np.int64) % 10
    record = DatasetRecord("mnist-subset", "test arrays", {"train": 20, "test": 20}, {"mnist_5k.csv.gz": SHA}, "")
    dataset = Dataset("mnist-subset", images, labels, images, labels, 10, record)
    failed = BackendOutcome("jax", status="failed", reason="unsupported: something")
    result = RunResult(spec, dataset, {"train": 18, "validation": 2, "test": 20},
                       [_outcome("numpy", 0.88), _outcome("torch", 0.90), failed], loads={"torch": TORCH_LOAD})
    return json.loads(json.dumps(results_document(result, ["mnist-parity", "run", "mlp-relu-adam"]), default=float))


def write_run(run_dir: Path, document: dict, filename: str = "results.json") -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / filename).write_text(json.dumps(document))
    return run_dir


def sweep_cell(out: Path, document: dict, sweep: str, key: str, factors: dict) -> Path:
    cell = {**copy.deepcopy(document), "sweep": {"name": sweep, "key": key, "factors": factors}}
    cell["backends"] = {"torch": cell["backends"]["torch"]}
    return write_run(out / "sweeps" / sweep / "cells" / key, cell)


def rows(db_path: Path) -> list[dict]:
    with closing(sqlite3.connect(db_path)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM runs ORDER BY id")]


def test_store_sits_beside_the_runs(tmp_path, run_document):
    run_dir = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    register_run(run_dir)
    assert (tmp_path / "results.sqlite").is_file()


def test_one_row_per_backend_with_status_and_metrics(tmp_path, run_document):
    run_dir = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    assert register_run(run_dir) == 3
    by_backend = {row["backend"]: row for row in rows(store_path(tmp_path))}
    assert list(by_backend) == ["numpy", "torch", "jax"]
    torch, jax = by_backend["torch"], by_backend["jax"]
    assert (torch["status"], torch["reason"], torch["kind"]) == ("ok", None, "run")
    assert (jax["status"], jax["reason"], jax["test_accuracy"]) == ("failed", "unsupported: something", None)
    assert torch["test_accuracy"] == 0.90 and torch["test_loss"] == 0.25 and torch["train_time_s"] == 1.5
    assert (torch["samples_per_s"], torch["steady_samples_per_s"], torch["parameter_count"]) == (1000.0, 1200.0, 235146)
    assert (torch["best_val_accuracy"], torch["best_val_epoch"], torch["final_val_accuracy"], torch["epochs_run"]) == (0.93, 2, 0.92, 3)
    assert json.loads(torch["settings_json"]) == {"threads": 2, "deterministic": True, "dtype": "float32"}
    assert json.loads(torch["versions_json"]) == {"torch": "1.0"}


def test_the_load_is_stored_and_a_backend_without_one_reads_as_null(tmp_path, run_document):
    assert run_document["backends"]["torch"]["load"] == TORCH_LOAD and "load" not in run_document["backends"]["numpy"]
    register_run(write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document))
    by_backend = {row["backend"]: row for row in rows(store_path(tmp_path))}
    assert json.loads(by_backend["torch"]["load_json"]) == TORCH_LOAD
    assert by_backend["numpy"]["load_json"] is None and by_backend["jax"]["load_json"] is None
    frame = load_runs(store_path(tmp_path)).set_index("backend")
    assert frame.loc["torch", "load_json"] == TORCH_LOAD and frame.loc["numpy", "load_json"] is None


def test_spec_dataset_and_provenance_columns_are_filled(tmp_path, run_document):
    run_dir = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    register_run(run_dir)
    row = rows(store_path(tmp_path))[0]
    environment = run_document["environment"]
    assert (row["python"], row["platform"], row["cpu"], row["cpu_count"]) == (
        environment["python"], environment["platform"], environment["cpu"], environment["cpu_count"])
    assert row["project_commit"] == environment["project_commit"]
    assert json.loads(row["packages_json"]) == environment["packages"]
    assert (row["spec_name"], row["spec_hash"], row["dtype"], row["seed"], row["epochs"]) == (
        "mlp-relu-adam", run_document["spec_hash"], "float32", 7, 3)
    assert (row["model_kind"], row["optimizer"], row["loss"], row["batch_size"]) == ("mlp", "adam", "categorical_crossentropy", 64)
    assert json.loads(row["spec_json"]) == run_document["spec"]
    assert row["dataset"] == "mnist-subset" and json.loads(row["dataset_sha256_json"]) == {"mnist_5k.csv.gz": SHA}
    assert (row["split_train"], row["split_validation"], row["split_test"]) == (18, 2, 20)
    assert row["command"] == "mnist-parity run mlp-relu-adam" and row["created"] == run_document["created"]
    assert row["run_dir"] == str(run_dir.resolve())


def test_registering_twice_writes_the_same_rows(tmp_path, run_document):
    run_dir = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    register_run(run_dir)
    first = rows(store_path(tmp_path))
    assert register_run(run_dir) == 3
    second = rows(store_path(tmp_path))
    assert [{k: v for k, v in r.items() if k != "registered"} for r in second] == \
        [{k: v for k, v in r.items() if k != "registered"} for r in first]


def test_registering_again_drops_a_backend_the_run_no_longer_has(tmp_path, run_document):
    run_dir = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    register_run(run_dir)
    fewer = {**run_document, "backends": {"torch": run_document["backends"]["torch"]}}
    (run_dir / "results.json").write_text(json.dumps(fewer))
    assert register_run(run_dir) == 1
    assert [row["backend"] for row in rows(store_path(tmp_path))] == ["torch"]


def test_run_id_is_the_directory_relative_to_the_store(tmp_path, run_document):
    out = tmp_path / "runs"
    plain = write_run(out / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    cell = sweep_cell(out, run_document, "lr", "lr=0.01", {"optimizer.learning_rate": 0.01})
    elsewhere = write_run(tmp_path / "other" / "20260101-000000-x", run_document)
    for run_dir in (plain, cell, elsewhere):
        register_run(run_dir, store_path(out))
    run_ids = list(dict.fromkeys(row["run_id"] for row in rows(store_path(out))))
    assert run_ids == ["20260101-000000-mlp-relu-adam-813c4f", "sweeps/lr/cells/lr=0.01", str(elsewhere.resolve())]


def test_sweep_cell_rows_carry_sweep_key_and_factors(tmp_path, run_document):
    cell = sweep_cell(tmp_path, run_document, "lr", "lr=0.01", {"optimizer.learning_rate": 0.01})
    assert register_run(cell, store_path(tmp_path)) == 1
    (row,) = rows(store_path(tmp_path))
    assert (row["kind"], row["sweep"], row["cell_key"]) == ("sweep-cell", "lr", "lr=0.01")
    assert json.loads(row["factors_json"]) == {"optimizer.learning_rate": 0.01}


def test_final_validation_accuracy_is_the_last_epochs_even_when_it_diverged(tmp_path, run_document):
    """final_val_accuracy is the tested (last) model's: a NaN last epoch gives NULL, not an earlier epoch's value;
    best_val_accuracy still skips the NaN."""
    document = copy.deepcopy(run_document)
    document["backends"]["torch"]["history"][-1]["val_accuracy"] = float("nan")
    document["backends"]["numpy"]["history"][-1]["val_accuracy"] = None
    register_run(write_run(tmp_path / "20260101-000000-nan", document))
    by_backend = {row["backend"]: row for row in rows(store_path(tmp_path))}
    for backend in ("torch", "numpy"):
        row = by_backend[backend]
        assert (row["final_val_accuracy"], row["best_val_accuracy"], row["best_val_epoch"], row["epochs_run"]) == (None, 0.93, 2, 3)
    assert by_backend["jax"]["final_val_accuracy"] is None and by_backend["jax"]["epochs_run"] == 0


def test_factors_versions_and_settings_keep_the_documents_order(tmp_path, run_document):
    """A report lists these as written (the grid's order, the backend's own order), so the store does not sort them."""
    document = copy.deepcopy(run_document)
    document["backends"]["torch"]["versions"] = {"torch": "2.0", "numpy": "2.1", "cuda": None}
    document["backends"]["torch"]["settings"] = {"threads": 2, "device": "cpu", "dtype": "float32"}
    factors = {"optimizer": "sgd", "model.hidden[*].activation": "relu", "seed": 0, "backend": "torch"}
    cell = sweep_cell(tmp_path, document, "study", "abc-torch", factors)
    register_run(cell, store_path(tmp_path))
    (row,) = load_runs(store_path(tmp_path)).to_dict("records")
    assert list(row["factors_json"].items()) == list(factors.items())
    assert list(row["versions_json"]) == ["torch", "numpy", "cuda"] and row["versions_json"]["cuda"] is None
    assert list(row["settings_json"]) == ["threads", "device", "dtype"]
    assert list(json.loads(rows(store_path(tmp_path))[0]["spec_json"])) == sorted(document["spec"])  # spec: canonical


# --- verify runs -------------------------------------------------------------------------------------------

def _level(number: int, name: str, lines: list[dict], rows_, failures: dict) -> dict:
    """A numeric level as experiments.commands.verify._level_documents writes it."""
    level_lines = [line for line in lines if line["level"] == name]
    return {"name": name, "summary": level_lines, "rows": [r.to_dict() for r in rows_ if r.level == name], "failures": failures,
            "passed": not failures and bool(level_lines) and all(line["passed"] for line in level_lines)}


def _ladder_levels(planted_in: str | None = None, failures: dict | None = None) -> dict:
    """Levels 1-2 compared by the ladder's own code; planted_in gets a forward output off by 1e-3."""
    rng = np.random.default_rng(0)
    truth = {"forward/dense_0": rng.normal(size=(4, 8)), "gradients/dense_0/kernel": rng.normal(size=(8, 3))}
    results = {backend: {key: value.copy() for key, value in truth.items()} for backend in ("numpy", "torch", "jax")}
    if planted_in:
        results[planted_in]["forward/dense_0"] *= 1 + 1e-3
    for backend in failures or {}:
        results.pop(backend)
    compared = compare_all(results, "float64")
    lines = summarize(compared, ["dense_0"])
    return {"1": _level(1, "forward", lines, compared, failures or {}), "2": _level(2, "gradients", lines, compared, failures or {})}


def _verify_document(run_document: dict, levels: dict) -> dict:
    spec = {**run_document["spec"], "dtype": "float64"}
    document = {"spec": spec, "dataset": {k: v for k, v in run_document["dataset"].items() if k != "split"}, "levels": levels}
    document["passed"] = all(level["passed"] for level in levels.values())
    return document


def _by_backend(db_path: Path) -> dict[str, dict]:
    return {row["backend"]: {**row, "parity": json.loads(row["parity_json"])} for row in rows(db_path)}


def test_verify_run_gives_each_backend_its_own_comparisons(tmp_path, run_document):
    run_dir = write_run(tmp_path / "20260102-030405-verify-mlp-relu-adam-1251d2",
                        _verify_document(run_document, _ladder_levels(planted_in="jax")), "verify.json")
    assert register_run(run_dir) == 3
    by_backend = _by_backend(store_path(tmp_path))
    assert set(by_backend) == {"numpy", "torch", "jax"}
    assert {name: bool(row["parity_passed"]) for name, row in by_backend.items()} == {"numpy": False, "torch": False, "jax": False}
    torch = by_backend["torch"]
    assert (torch["kind"], torch["status"], torch["dtype"], torch["created"]) == ("verify", "ok", "float64", "2026-01-02T03:04:05+00:00")
    forward = torch["parity"]["levels"]["1"]
    assert {(line["first"], line["second"]) for line in forward["lines"]} == {("torch", "numpy"), ("torch", "jax")}
    failing = [line for line in forward["lines"] if not line["passed"]]
    assert [(line["first"], line["second"], line["first_failure"]) for line in failing] == [("torch", "jax", "dense_0")]
    assert torch["parity"]["levels"]["2"]["passed"] is True
    assert torch["spec_hash"] is not None and torch["test_accuracy"] is None


def test_verify_backend_whose_probe_crashed_is_failed_and_others_pass(tmp_path, run_document):
    failures = {"jax": "probe exited with code 1: boom"}
    run_dir = write_run(tmp_path / "20260102-030405-verify-x", _verify_document(run_document, _ladder_levels(failures=failures)),
                        "verify.json")
    register_run(run_dir)
    by_backend = _by_backend(store_path(tmp_path))
    assert (by_backend["jax"]["status"], by_backend["jax"]["reason"], by_backend["jax"]["parity_passed"]) == (
        "failed", "probe exited with code 1: boom", 0)
    assert by_backend["torch"]["status"] == "ok" and by_backend["torch"]["parity_passed"] == 1


def test_verify_level5_keeps_each_backends_pairwise_verdicts(tmp_path, run_document):
    accuracies = {"numpy": [0.90, 0.91, 0.92], "torch": [0.901, 0.909, 0.921], "jax": [0.80, 0.81, 0.82]}
    pairs = [equivalence("numpy", accuracies["numpy"], "torch", accuracies["torch"]),
             equivalence("numpy", accuracies["numpy"], "jax", accuracies["jax"]),
             equivalence("torch", accuracies["torch"], "jax", accuracies["jax"])]
    level5 = {"seeds": [0, 1, 2], "margin_points": 0.3, "backends": [asdict(accuracy_summary(b, a)) for b, a in accuracies.items()],
              "pairs": [p.to_dict() for p in pairs], "failures": [], "passed": False}
    run_dir = write_run(tmp_path / "20260102-030405-verify-x", _verify_document(run_document, {"5": level5}), "verify.json")
    register_run(run_dir)
    by_backend = _by_backend(store_path(tmp_path))
    verdicts = {(p["first"], p["second"]): p["verdict"] for p in by_backend["torch"]["parity"]["levels"]["5"]["pairs"]}
    assert verdicts == {("numpy", "torch"): "equivalent", ("torch", "jax"): "different"}
    assert by_backend["torch"]["parity"]["levels"]["5"]["accuracy"]["accuracies"] == accuracies["torch"]
    assert {name: row["parity_passed"] for name, row in by_backend.items()} == {"numpy": 0, "torch": 0, "jax": 0}


def test_verify_matrix_rows_take_dtype_from_cell_overrides(tmp_path, run_document):
    cell = {"model": "mlp", "axis": "activation", "entry": "relu", "overrides": ['dtype="float64"', 'model.kind="mlp"'],
            "levels": _ladder_levels()}
    cell["passed"] = True
    document = {"base": "mlp-relu-adam", "dataset": run_document["dataset"], "matrix": {"mlp-activation-relu": cell}, "passed": True}
    register_run(write_run(tmp_path / "20260102-030405-verify-matrix-b68ef2", document, "verify.json"))
    torch = _by_backend(store_path(tmp_path))["torch"]
    assert (torch["spec_name"], torch["dtype"], torch["parity_passed"]) == ("mlp-relu-adam", "float64", 1)
    assert torch["parity"]["matrix"]["mlp-activation-relu"]["levels"]["1"]["passed"] is True


# --- atomicity and concurrency -----------------------------------------------------------------------------

def _fail_after_first_row(monkeypatch):
    original, calls = database._write_row, []

    def write_then_fail(connection, row):
        calls.append(row["backend"])
        if len(calls) > 1:
            raise RuntimeError("interrupted")
        original(connection, row)

    monkeypatch.setattr(database, "_write_row", write_then_fail)
    return calls


def test_interrupted_registration_writes_nothing(tmp_path, run_document, monkeypatch):
    run_dir = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    calls = _fail_after_first_row(monkeypatch)
    with pytest.raises(RuntimeError, match="interrupted"):
        register_run(run_dir)
    assert calls == ["numpy", "torch"]
    assert _user_version(store_path(tmp_path)) == 0  # not even the table: its creation was part of the transaction
    with closing(sqlite3.connect(store_path(tmp_path))) as connection:
        assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'runs'").fetchall() == []


def test_interrupted_reregistration_keeps_the_previous_record(tmp_path, run_document, monkeypatch):
    run_dir = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    register_run(run_dir)
    before = rows(store_path(tmp_path))
    changed = copy.deepcopy(run_document)
    changed["backends"]["numpy"]["metrics"]["test_accuracy"] = 0.5
    (run_dir / "results.json").write_text(json.dumps(changed))
    _fail_after_first_row(monkeypatch)
    with pytest.raises(RuntimeError):
        register_run(run_dir)
    assert rows(store_path(tmp_path)) == before


WRITER = """
import sys
from pathlib import Path
from experiments.store import register_run
print("ready", flush=True)
for run_dir in sys.argv[2:]:
    register_run(Path(run_dir), Path(sys.argv[1]))
"""


def test_concurrent_writers_all_succeed(tmp_path, run_document):
    """Three processes register different runs while this test holds the write lock; they wait, then all land."""
    db_path = store_path(tmp_path)
    register_run(write_run(tmp_path / "first", run_document), db_path)  # the table exists
    groups = [[write_run(tmp_path / f"writer{w}-run{r}", run_document) for r in range(5)] for w in range(3)]
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), *map(str, group)], cwd=PROJECT_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for group in groups]
    assert [writer.stdout.readline().strip() for writer in writers] == ["ready"] * 3
    time.sleep(0.5)  # they are now waiting on the lock (far below the busy timeout)
    assert all(writer.poll() is None for writer in writers)
    blocker.execute("COMMIT")
    blocker.close()
    for writer in writers:
        assert writer.wait(timeout=60) == 0, writer.stderr.read()
    assert len(rows(db_path)) == 3 * (1 + 3 * 5)


def test_threads_creating_the_store_at_once(tmp_path, run_document):
    from concurrent.futures import ThreadPoolExecutor

    runs = [write_run(tmp_path / f"run{i}", run_document) for i in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert sum(pool.map(register_run, runs)) == 18
    assert len(rows(store_path(tmp_path))) == 18


# --- errors the user sees ----------------------------------------------------------------------------------

def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and text
    return text


@pytest.mark.parametrize("content, expected", [
    ('{"spec": {}, "backends": {"torch": {"status": "ok"', "not valid JSON"),
    ("[1, 2]", "not a run document"),
    ('{"schema": 1, "spec": {}}', "'backends' is missing"),
    ('{"schema": 1, "spec": {}, "backends": {"torch": {}}}', "backend 'torch' has no status"),
    ('{"schema": 1, "spec": {}, "backends": {}, "sweep": {"name": "s"}}', "'key' is missing"),
])
def test_corrupt_results_json_is_a_one_line_user_error(tmp_path, content, expected):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(content)
    with pytest.raises(UserError) as error:
        register_run(run_dir)
    assert expected in _one_line(error) and str(run_dir / "results.json") in str(error.value)
    assert not store_path(tmp_path).exists()


def test_directory_without_a_document_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as error:
        register_run(tmp_path / "empty")
    assert "no results.json or verify.json" in _one_line(error)
    with pytest.raises(UserError, match="no such run directory"):
        register_run(tmp_path / "missing")


def test_non_database_file_at_the_store_path_is_a_user_error(tmp_path, run_document):
    run_dir = write_run(tmp_path / "run", run_document)
    store_path(tmp_path).write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(UserError) as error:
        register_run(run_dir)
    assert "not a readable SQLite database" in _one_line(error)
    with pytest.raises(UserError, match="not a readable SQLite database"):
        load_runs(store_path(tmp_path))
    with pytest.raises(UserError, match="not a readable SQLite database"):  # backfilling stops at once
        register_tree(tmp_path)


def test_other_sqlite_database_or_newer_store_is_refused(tmp_path, run_document):
    run_dir = write_run(tmp_path / "run", run_document)
    with closing(sqlite3.connect(store_path(tmp_path))) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(UserError, match="not a results store"):
        register_run(run_dir)
    newer = tmp_path / "newer.sqlite"
    register_run(run_dir, newer)
    with closing(sqlite3.connect(newer)) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="newer than this mnist-parity"):
        register_run(run_dir, newer)
    with pytest.raises(UserError, match="newer than this mnist-parity"):
        load_runs(newer)


def test_missing_store_and_missing_folder_are_user_errors(tmp_path, run_document):
    with pytest.raises(UserError) as error:
        load_runs(tmp_path / "results.sqlite")
    assert "no such file" in _one_line(error)
    with pytest.raises(UserError, match="cannot open it"):
        register_run(write_run(tmp_path / "run", run_document), tmp_path / "no" / "such" / "results.sqlite")


# --- schema versions ---------------------------------------------------------------------------------------

V1_LAST_FINITE = 0.93  # what version 1 stored for a run whose last epoch diverged: an earlier epoch's value


def _as_version(connection: sqlite3.Connection, version: int) -> None:
    """Reshape a store this version wrote into what `version` wrote: version 4 added the bench table and the runs'
    load_json, version 3 the implementation column."""
    if version < 4:
        connection.execute("DROP TABLE bench")
        connection.execute("ALTER TABLE runs DROP COLUMN load_json")
    if version < 3:
        connection.execute("ALTER TABLE runs DROP COLUMN implementation")
    connection.execute(f"PRAGMA user_version = {version}")


def _version_1_store(tmp_path: Path, run_document: dict) -> tuple[Path, Path, Path]:
    """A store as version 1 left it: a run whose numpy backend diverged in its last epoch (v1 kept 0.93, the last
    finite value), that run's folder since moved beside the store (run_dir is stale, run_id still finds it), and a
    run whose folder is gone."""
    document = copy.deepcopy(run_document)
    document["backends"]["numpy"]["history"][-1]["val_accuracy"] = float("nan")
    diverged = write_run(tmp_path / "20260101-000000-diverged", document)
    gone = write_run(tmp_path / "20260101-000001-gone", run_document)
    db_path = store_path(tmp_path)
    for run_dir in (diverged, gone):
        register_run(run_dir, db_path)
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute("UPDATE runs SET final_val_accuracy = ? WHERE backend = 'numpy' AND run_id = ?",
                           (V1_LAST_FINITE, diverged.name))
        connection.execute("UPDATE runs SET run_dir = ? WHERE run_id = ?", (str(tmp_path / "moved-away"), diverged.name))
        _as_version(connection, 1)
    for path in gone.iterdir():
        path.unlink()
    gone.rmdir()
    return db_path, diverged, gone


def _final_values(db_path: Path) -> dict[tuple[str, str], float | None]:
    return {(row["run_id"], row["backend"]): row["final_val_accuracy"] for row in rows(db_path)}


def _user_version(db_path: Path) -> int:
    with closing(sqlite3.connect(db_path)) as connection:
        return connection.execute("PRAGMA user_version").fetchone()[0]


def test_a_version_1_store_is_upgraded_when_read(tmp_path, run_document):
    """final_val_accuracy is recomputed from each run's results.json (the last epoch's value, NULL when not finite);
    a row whose document is gone gets NULL."""
    db_path, diverged, gone = _version_1_store(tmp_path, run_document)
    frame = load_runs(db_path)
    assert _user_version(db_path) == SCHEMA_VERSION
    final = _final_values(db_path)
    assert final[diverged.name, "numpy"] is None  # v1's 0.93 came from an earlier epoch, not the tested model
    assert final[diverged.name, "torch"] == VAL_ACCURACY[-1]
    assert final[gone.name, "numpy"] is None and final[gone.name, "torch"] is None
    assert frame["final_val_accuracy"].isna().sum() == 5  # both jax rows failed, plus the three above
    assert _final_values(db_path) == final and len(load_runs(db_path)) == 6  # reading again changes nothing


def test_a_version_1_store_is_upgraded_by_the_next_registration(tmp_path, run_document):
    db_path, diverged, _ = _version_1_store(tmp_path, run_document)
    register_run(write_run(tmp_path / "20260101-000002-new", run_document), db_path)
    assert _user_version(db_path) == SCHEMA_VERSION
    assert _final_values(db_path)[diverged.name, "numpy"] is None
    assert _final_values(db_path)["20260101-000002-new", "torch"] == VAL_ACCURACY[-1]


def test_a_version_1_store_that_cannot_be_written_is_a_one_line_store_error(tmp_path, run_document, monkeypatch):
    """The upgrade needs to write; a store that cannot be written says so and is left as it was."""
    db_path, diverged, _ = _version_1_store(tmp_path, run_document)
    real = database.connect

    def read_only_connect(path, *, read_only=False):
        return real(path, read_only=True)
    monkeypatch.setattr(database, "connect", read_only_connect)
    with pytest.raises(database.StoreError) as error:
        load_runs(db_path)
    assert f"schema version 1 must be upgraded to {SCHEMA_VERSION}" in _one_line(error)
    assert "make it writable" in str(error.value)
    assert _user_version(db_path) == 1 and _final_values(db_path)[diverged.name, "numpy"] == V1_LAST_FINITE


def test_a_version_2_store_gains_the_implementation_column_from_each_rows_spec(tmp_path, run_document):
    """Version 3 adds `implementation`: read from the recorded spec, "catalog" for a spec from before the field."""
    native = copy.deepcopy(run_document)
    native["spec"]["implementation"] = "native"
    old, new = write_run(tmp_path / "20260101-000000-old", run_document), write_run(tmp_path / "20260101-000001-native", native)
    db_path = store_path(tmp_path)
    for run_dir in (old, new):
        register_run(run_dir, db_path)
    with closing(sqlite3.connect(db_path)) as connection, connection:
        _as_version(connection, 2)
    frame = load_runs(db_path)
    assert _user_version(db_path) == SCHEMA_VERSION
    assert dict(zip(frame["run_id"], frame["implementation"])) == {old.name: "catalog", new.name: "native"}


def test_a_version_3_store_gains_the_bench_table_and_the_load_column(tmp_path, run_document):
    """Version 4 adds the bench table (empty) and the runs' load_json (NULL: not measured); the runs are kept, and a
    bench registers into the upgraded store, whether the upgrade came from reading or from that registration."""
    from tests.test_bench_store import PRESET, write_bench
    from experiments.store import load_bench, register_bench

    for upgrade_by in ("reading", "registering"):
        folder = tmp_path / upgrade_by
        register_run(write_run(folder / "20260101-000000-old", run_document))
        db_path = store_path(folder)
        with closing(sqlite3.connect(db_path)) as connection, connection:
            _as_version(connection, 3)
        before = {(row["run_id"], row["backend"]): row["test_accuracy"] for row in rows(db_path)}
        bench = write_bench(folder / "bench-1", {"results": {PRESET: {"torch": {"status": "ok", "harness_samples_per_s": 5.0}}}})
        if upgrade_by == "reading":
            assert load_bench(db_path).empty and _user_version(db_path) == SCHEMA_VERSION
        assert register_bench(bench, db_path) == 1
        assert _user_version(db_path) == SCHEMA_VERSION
        after = rows(db_path)
        assert {(row["run_id"], row["backend"]): row["test_accuracy"] for row in after} == before
        assert all(row["load_json"] is None for row in after)  # not read back from results.json: NULL
        assert list(load_bench(db_path)["harness_samples_per_s"]) == [5.0]


# --- reading back and backfilling --------------------------------------------------------------------------

def test_load_runs_filters_by_sweep_and_run_dirs(tmp_path, run_document):
    plain = write_run(tmp_path / "20260101-000000-mlp-relu-adam-813c4f", run_document)
    cells = [sweep_cell(tmp_path, run_document, "lr", f"lr={lr}", {"optimizer.learning_rate": lr}) for lr in (0.01, 0.1)]
    other = sweep_cell(tmp_path, run_document, "batch", "batch=32", {"training.batch_size": 32})
    for run_dir in (plain, *cells, other):
        register_run(run_dir, store_path(tmp_path))
    db_path = store_path(tmp_path)
    assert len(load_runs(db_path)) == 3 + 3
    swept = load_runs(db_path, sweep="lr")
    assert sorted(swept["cell_key"]) == ["lr=0.01", "lr=0.1"]
    assert sorted(factors["optimizer.learning_rate"] for factors in swept["factors_json"]) == [0.01, 0.1]
    picked = load_runs(db_path, run_dirs=[plain, cells[0]])
    assert sorted(picked["run_id"].unique()) == ["20260101-000000-mlp-relu-adam-813c4f", "sweeps/lr/cells/lr=0.01"]
    assert str(picked["seed"].dtype) == "Int64" and set(picked["seed"]) == {7}
    assert load_runs(db_path, sweep="lr", run_dirs=[plain]).empty
    assert "test_accuracy" in load_runs(db_path, sweep="none").columns


def test_register_tree_backfills_every_run_and_names_unreadable_ones(tmp_path, run_document):
    write_run(tmp_path / "20260101-000000-a", run_document)
    sweep_cell(tmp_path, run_document, "lr", "lr=0.01", {"optimizer.learning_rate": 0.01})
    verify_dir = write_run(tmp_path / "20260102-000000-verify-x", _verify_document(run_document, _ladder_levels()), "verify.json")
    (verify_dir / "seed-0" / "logs").mkdir(parents=True)  # a level-5 seed folder holds logs only
    assert register_tree(tmp_path) == 3 + 1 + 3
    assert register_tree(tmp_path) == 7 and len(rows(store_path(tmp_path))) == 7
    write_run(tmp_path / "20260103-000000-broken", {"spec": {}})
    with pytest.raises(UserError) as error:
        register_tree(tmp_path)
    assert "registered 7 rows" in _one_line(error) and "20260103-000000-broken" in str(error.value)


def test_store_imports_no_framework():
    code = f"import sys, experiments.store; print([m for m in {FRAMEWORKS!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert result.stdout.strip() == "[]", result.stderr[-1000:]
