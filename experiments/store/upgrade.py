"""Upgrade an older store in place, inside the caller's write transaction (all of it or nothing).

Version 1 -> 2: final_val_accuracy held the last *finite* validation accuracy, so a run whose last epoch diverged
kept an earlier epoch's value; since version 2 it is the last epoch's (the model that was tested), NULL when that
epoch has none or a non-finite one. Every row is recomputed from its run's results.json, read at run_dir or, for a
folder moved together with its store, at run_id beside the store. A row whose document is gone or unreadable gets
NULL: its version-1 value cannot be told apart from the new meaning, and NULL says "unknown" honestly. Verify rows
never held a value.

Version 2 -> 3: the implementation column, from the row's recorded spec ("catalog" where the spec predates it).

Version 3 -> 4: the bench table (empty until a bench registers: `mnist-parity bench`, or `register_tree` for older
bench folders) and the runs' load_json column, NULL for every row (not measured: the mnist-parity that wrote a
version-3 store did not record the load; `register_tree` rewrites the rows of any results.json that has one).
"""

import sqlite3
from pathlib import Path

from experiments.errors import UserError
from experiments.store.documents import read_run_document
from experiments.store.rows import final_val_accuracy
from experiments.store.schema import CREATE_BENCH_INDEXES, CREATE_BENCH_TABLE


def _document(db_path: Path, run_dir: str, run_id: str) -> dict | None:
    """The run's results.json as a dict, or None when neither place holds a readable one."""
    for folder in dict.fromkeys((Path(run_dir), Path(db_path).resolve().parent / run_id)):
        try:
            document = read_run_document(folder)
        except UserError:
            continue
        return document.data if document.kind != "verify" else None
    return None


def _version_1_to_2(connection: sqlite3.Connection, db_path: Path) -> None:
    rows = connection.execute("SELECT id, run_id, run_dir, backend, kind FROM runs").fetchall()
    cache: dict[tuple[str, str], dict | None] = {}
    for row_id, run_id, run_dir, backend, kind in rows:
        value = None
        if kind != "verify":
            if (run_dir, run_id) not in cache:
                cache[run_dir, run_id] = _document(db_path, run_dir, run_id)
            data = cache[run_dir, run_id]
            outcome = (data or {}).get("backends", {}).get(backend)
            value = final_val_accuracy(outcome) if isinstance(outcome, dict) else None
        connection.execute("UPDATE runs SET final_val_accuracy = ? WHERE id = ?", (value, row_id))


def _version_2_to_3(connection: sqlite3.Connection, db_path: Path) -> None:
    """The implementation column, read from each row's spec (catalog for a spec from before the field)."""
    connection.execute("ALTER TABLE runs ADD COLUMN implementation TEXT")
    connection.execute("UPDATE runs SET implementation = coalesce(json_extract(spec_json, '$.implementation'), 'catalog') "
                       "WHERE spec_json IS NOT NULL")


def _version_3_to_4(connection: sqlite3.Connection, db_path: Path) -> None:
    """The bench table, and the runs' load_json column (NULL: not measured)."""
    connection.execute("ALTER TABLE runs ADD COLUMN load_json TEXT")
    for statement in (CREATE_BENCH_TABLE, *CREATE_BENCH_INDEXES):
        connection.execute(statement)


STEPS = {1: _version_1_to_2, 2: _version_2_to_3, 3: _version_3_to_4}  # from version N to N + 1


def upgrade(connection: sqlite3.Connection, db_path: Path, version: int, target: int) -> None:
    """Run every step from version to target on connection (already in a write transaction), then set target."""
    for step in range(version, target):
        STEPS[step](connection, db_path)
    connection.execute(f"PRAGMA user_version = {target}")
