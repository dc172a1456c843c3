"""check_store, run before anything trains: a store that could not take the run's rows is refused up front with one
line (what is wrong, what to do); a store that can is left untouched. And the line `run` prints when registering
fails after training."""

import json
import shlex
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from experiments.store import StoreError, check_store, load_runs, register_run, registration_failed_message, store_path
from experiments.store.schema import SCHEMA_VERSION
from tests.cli_helpers import mnist_parity
from tests.test_store import run_document, write_run  # noqa: F401 (run_document is a fixture)


def _registered_store(folder: Path, document: dict) -> Path:
    """A real store holding one run (three backends), as `run` leaves it."""
    db_path = store_path(folder)
    register_run(write_run(folder / "20260101-000000-mlp", document), db_path)
    return db_path


def _root_page(db_path: Path, name: str) -> int:
    with closing(sqlite3.connect(db_path)) as connection:
        return connection.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]


def _damage_page(db_path: Path, page: int) -> None:
    """Overwrite the first bytes of a page (its b-tree header) past the file header, which stays valid."""
    with closing(sqlite3.connect(db_path)) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db_path.read_bytes())
    start = (page - 1) * page_size
    data[start:start + 8] = b"\xab" * 8
    db_path.write_bytes(bytes(data))


def _quick_check(db_path: Path) -> list[str]:
    """SQLite's own verdict on the file: ["ok"], its problems, or the error that stopped it."""
    try:
        with closing(sqlite3.connect(db_path)) as connection:
            return [row[0] for row in connection.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as error:
        return [str(error)]


def _user_version(db_path: Path) -> int:
    with closing(sqlite3.connect(db_path)) as connection:
        return connection.execute("PRAGMA user_version").fetchone()[0]


@pytest.mark.parametrize("table", ["runs", "sqlite_autoindex_runs_1"])
def test_a_store_damaged_past_its_header_is_refused_up_front(tmp_path, run_document, table):
    """A damaged table page makes SQLite raise; a damaged index page makes quick_check report it: both refused."""
    db_path = _registered_store(tmp_path, run_document)
    _damage_page(db_path, _root_page(db_path, table))
    assert _quick_check(db_path) != ["ok"]
    assert _user_version(db_path) == SCHEMA_VERSION  # the header still reads: only reading every page tells
    before = db_path.read_bytes()
    with pytest.raises(StoreError) as error:
        check_store(db_path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"results store {db_path}: ")
    assert ("damaged" in message or "not a readable SQLite database" in message) and "move it aside" in message
    assert db_path.read_bytes() == before


def _file(text: str):
    def make(db_path: Path) -> None:
        db_path.write_text(text)
    return make


def _folder(db_path: Path) -> None:
    db_path.mkdir()


def _other_database(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")


def _newer_store(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


def _store_without_columns(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, run_id TEXT, backend TEXT)")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _store_without_table(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _parent_is_a_file(db_path: Path) -> Path:
    (db_path.parent / "out").write_text("a file where --out should be a folder")
    return db_path.parent / "out" / "runs" / db_path.name


@pytest.mark.parametrize("make, expected", [
    (_folder, "not a file (a folder"),
    (_file("these are my notes, not a database\n" * 100), "not a readable SQLite database"),
    (_other_database, "not a results store (no schema version)"),
    (_newer_store, "newer than this mnist-parity's"),
    (_store_without_columns, "its runs table lacks run_dir, kind"),
    (_store_without_table, "has no runs table"),
    (_parent_is_a_file, "is not a folder"),
], ids=["folder-in-its-place", "not-sqlite", "other-sqlite-database", "newer-schema", "runs-table-lacks-columns",
        "no-runs-table", "out-is-a-file"])
def test_an_unusable_store_is_one_line_and_left_as_it_was(tmp_path, make, expected):
    db_path = make(tmp_path / "results.sqlite") or tmp_path / "results.sqlite"
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(StoreError) as error:
        check_store(db_path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"results store {db_path}: ")
    assert expected in message and ("choose another --out" in message or "upgrade mnist-parity" in message)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("db_path", ["/proc/results.sqlite", "/proc/mnist-parity-runs/results.sqlite"])
def test_a_store_that_cannot_be_created_is_refused(db_path):
    """/proc refuses new files even to root."""
    with pytest.raises(StoreError) as error:
        check_store(Path(db_path))
    message = str(error.value)
    assert "\n" not in message and "cannot be created: cannot create files in /proc" in message
    assert "choose another --out" in message


def _permissions_enforced(tmp_path: Path) -> bool:
    """False for a user whom file modes do not stop (root): those cases cannot be set up with chmod."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        probe.read_text()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o600)
        probe.unlink()
    return False


@pytest.mark.parametrize("file_mode, folder_mode, existing, expected", [
    (0o000, 0o755, True, "cannot be read (Permission denied)"),
    (0o444, 0o755, True, "cannot be written (Permission denied)"),
    (None, 0o555, True, "cannot be written: cannot create files in"),
    (None, 0o555, False, "cannot be created: cannot create files in"),
], ids=["unreadable-store", "read-only-store", "store-in-read-only-folder", "new-store-in-read-only-folder"])
def test_a_store_without_the_permissions_it_needs_is_refused(tmp_path, run_document, file_mode, folder_mode, existing,
                                                             expected):
    if not _permissions_enforced(tmp_path):
        pytest.skip("file modes do not stop this user (root)")
    folder = tmp_path / "runs"
    folder.mkdir()
    db_path = _registered_store(folder, run_document) if existing else store_path(folder)
    try:
        if file_mode is not None:
            db_path.chmod(file_mode)
        folder.chmod(folder_mode)
        with pytest.raises(StoreError) as error:
            check_store(db_path)
    finally:
        folder.chmod(0o755)
        if existing:
            db_path.chmod(0o644)
    message = str(error.value)
    assert "\n" not in message and expected in message and "choose another --out" in message


def _empty_file(folder: Path, document: dict) -> Path:
    (folder / "results.sqlite").touch()
    return folder / "results.sqlite"


@pytest.mark.parametrize("make", [
    lambda folder, document: store_path(folder),
    lambda folder, document: store_path(folder / "not" / "yet"),
    _empty_file,
    _registered_store,
], ids=["missing", "missing-with-its-folder", "empty-file", "registered"])
def test_a_usable_store_passes_and_nothing_is_written(tmp_path, run_document, make):
    db_path = make(tmp_path, run_document)
    before = {path: path.read_bytes() if path.is_file() else None for path in tmp_path.rglob("*")}
    check_store(db_path)
    assert {path: path.read_bytes() if path.is_file() else None for path in tmp_path.rglob("*")} == before


def test_run_refuses_a_damaged_store_before_training(tmp_path, run_document):
    out = tmp_path / "runs"
    out.mkdir()
    db_path = _registered_store(out, run_document)
    _damage_page(db_path, _root_page(db_path, "runs"))
    before = sorted(out.iterdir())
    result = mnist_parity("run", "mlp-relu-adam", "--backends", "numpy", "--dataset", "mnist-subset", "--no-download",
                          "--epochs", "1", "--threads", "1", "--out", str(out))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and f"results store {db_path}" in lines[0]
    assert "epoch" not in result.stdout  # nothing trained
    assert sorted(out.iterdir()) == before  # no run directory


def test_registration_failed_message_says_where_the_results_are_and_how_to_register_them(tmp_path, run_document,
                                                                                         monkeypatch):
    """The command in the line registers the run once the store is moved aside, from any folder (`--out runs` is
    relative to where `run` was started)."""
    monkeypatch.chdir(tmp_path)
    run_dir = write_run(Path("runs") / "20260101-000000-mlp", run_document)
    db_path = store_path(Path("runs"))
    db_path.write_text("not a database\n" * 100)
    with pytest.raises(StoreError) as error:
        register_run(run_dir, db_path)
    message = registration_failed_message(run_dir, db_path, error.value)
    assert "\n" not in message
    assert message.startswith(f"{run_dir / 'results.json'} kept but not registered in {db_path}: not a readable SQLite database")
    command = message.split("register it with: ", 1)[1]
    db_path.rename(tmp_path / "results.sqlite.damaged")  # the user moves the store aside, then runs the command
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = load_runs(db_path)
    assert sorted(rows["backend"]) == ["jax", "numpy", "torch"] and set(rows["run_id"]) == {run_dir.name}


def test_registration_failed_message_names_a_verify_document(tmp_path):
    run_dir = tmp_path / "verify-mlp"
    run_dir.mkdir()
    (run_dir / "verify.json").write_text(json.dumps({"matrix": {}, "passed": True}))
    message = registration_failed_message(run_dir, tmp_path / "results.sqlite", OSError("disk full"))
    assert message.startswith(f"{run_dir / 'verify.json'} kept but not registered in {tmp_path / 'results.sqlite'}: disk full;")



KILLED_WRITER = """
import os, signal, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA cache_size = 1")  # dirty pages spill to the store file before the commit
connection.execute("BEGIN IMMEDIATE")
connection.execute("DELETE FROM runs")
connection.execute("CREATE TABLE half_written (blob)")
for _ in range(300):
    connection.execute("INSERT INTO half_written VALUES (randomblob(2000))")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_write_killed_mid_transaction_is_rolled_back_before_the_store_is_checked_or_read(tmp_path, run_document):
    """SIGKILL inside a write transaction leaves a hot journal; a read-only open cannot undo it ("attempt to write a
    readonly database"), which made the next sweep refuse the store as read-only. The check and the reads roll it
    back first, and the committed runs are all there."""
    db_path = _registered_store(tmp_path, run_document)
    before = sorted((row["run_id"], row["backend"]) for row in load_runs(db_path).to_dict("records"))
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db_path)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert Path(f"{db_path}-journal").exists(), "the kill must leave a hot journal"
    check_store(db_path)
    assert not Path(f"{db_path}-journal").exists()
    assert sorted((row["run_id"], row["backend"]) for row in load_runs(db_path).to_dict("records")) == before
    assert _quick_check(db_path) == ["ok"]
