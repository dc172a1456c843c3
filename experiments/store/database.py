"""Open the SQLite store, create or check its schema, and write one run's rows in one transaction.

Concurrency: every write is `BEGIN IMMEDIATE` (the write lock taken up front) with a busy
timeout, so writers in other processes queue instead of failing; a deferred transaction that
upgrades from read to write can get SQLITE_BUSY at once, whatever the timeout. Atomicity: the
rows of one run are written and committed together, so an interruption (an exception, a killed
process) leaves the run's previous record or the new one, never part of either. Schema: a store of
an older version is upgraded in place (experiments.store.upgrade) in the transaction of its first
write, or, when it is only read, in a write transaction of its own before the read.
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from experiments.errors import UserError
from experiments.store.paths import cannot_create_in
from experiments.store.schema import (BENCH_COLUMNS, BENCH_UPSERT, COLUMNS, CREATE_BENCH_INDEXES, CREATE_BENCH_TABLE,
                                      CREATE_INDEXES, CREATE_TABLE, SCHEMA_VERSION, UPSERT)
from experiments.store.upgrade import upgrade

BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another to commit before giving up
MOVE_ASIDE = "move it aside (rename it; a new store is created on the next run) or choose another --out"


class StoreError(UserError):
    """The store file itself is unusable (not a database, locked, newer schema, unwritable)."""


def store_error(db_path: Path, error: sqlite3.Error) -> StoreError:
    """One line saying what is wrong with the store file, from SQLite's message."""
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return StoreError(f"results store {db_path}: not a readable SQLite database ({text}); {MOVE_ASIDE}")
    if "locked" in text or "busy" in text:
        return StoreError(f"results store {db_path}: still locked by another process after {BUSY_TIMEOUT_S:.0f} s; try again")
    if "unable to open" in text:
        return StoreError(f"results store {db_path}: cannot open it; check that its folder exists and is writable")
    if "readonly" in text:
        return StoreError(f"results store {db_path}: read-only; cannot register runs in it")
    return StoreError(f"results store {db_path}: {text}")


def _check_schema(connection: sqlite3.Connection, db_path: Path) -> int:
    """The store's schema version; StoreError for a newer store, a SQLite file that is not a store, or a store of
    this version whose runs or bench table lacks columns."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"results store {db_path}: schema version {version} is newer than this mnist-parity's "
                        f"({SCHEMA_VERSION}); upgrade mnist-parity")
    if version == 0 and connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise StoreError(f"results store {db_path}: a SQLite database, but not a results store (no schema version); "
                         f"{MOVE_ASIDE}")
    if version == SCHEMA_VERSION:  # an older store is upgraded first; its steps know its columns
        for table, columns in (("runs", COLUMNS), ("bench", BENCH_COLUMNS)):
            present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            missing = [name for name in columns if name not in present]
            if missing:
                lacks = f"has no {table} table" if not present else f"its {table} table lacks {', '.join(missing)}"
                raise StoreError(f"results store {db_path}: schema version {version}, but {lacks}; not a results store "
                                 f"this mnist-parity can use; {MOVE_ASIDE}")
    return version


def _check_intact(connection: sqlite3.Connection, db_path: Path) -> None:
    """StoreError unless SQLite's quick_check, which reads every page, finds the file intact."""
    problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        lines = [line for problem in problems for line in problem.splitlines()
                 if not line.startswith("*** in database")] or problems  # SQLite's text has a heading and several lines
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise StoreError(f"results store {db_path}: damaged; SQLite's quick_check found: {lines[0]}{more}; {MOVE_ASIDE}")


def check_store(db_path: Path) -> None:
    """Fail early (StoreError, one line) when the store at db_path could not take a run's rows, so a run never trains
    only to lose its registration.

    A missing store is fine when it can be created (on first write); an existing one must be a file that can be
    read and written, in a folder where SQLite can write its journal, intact from end to end (quick_check reads
    every page) and a results store of this or an older schema version.
    """
    db_path = Path(db_path)
    if not os.path.lexists(db_path):
        problem = cannot_create_in(db_path.parent)
        if problem:
            raise StoreError(f"results store {db_path}: cannot be created: {problem}; choose another --out")
        return
    if not db_path.is_file():
        raise StoreError(f"results store {db_path}: not a file (a folder, or a broken link, is in its place); {MOVE_ASIDE}")
    for mode, done in (("rb", "read"), ("r+b", "written")):  # opened only, nothing read or written
        try:
            with open(db_path, mode):
                pass
        except OSError as error:
            raise StoreError(f"results store {db_path}: cannot be {done} ({error.strerror or error}); "
                             "fix its permissions or choose another --out") from None
    problem = cannot_create_in(db_path.parent)
    if problem:  # SQLite writes a journal beside the store in every transaction
        raise StoreError(f"results store {db_path}: cannot be written: {problem}; choose another --out")
    with connect(db_path, read_only=True) as connection:
        _check_intact(connection, db_path)
        _check_schema(connection, db_path)


def _roll_back_unfinished_write(db_path: Path) -> None:
    """A writer killed mid-transaction leaves a journal beside the store ("hot": SQLite must undo it before anyone
    reads). A read-only connection cannot undo it and fails with "attempt to write a readonly database", so the
    store is first opened for writing and read once, which makes SQLite roll the unfinished write back (the
    previous committed state returns; nothing else is written). StoreError when the store cannot be written."""
    if not os.path.lexists(f"{db_path}-journal"):
        return
    try:
        connection = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise StoreError(f"results store {db_path}: a killed write left its journal ({db_path.name}-journal), and "
                         f"rolling it back failed ({error}); open the store once with write access "
                         f"(sqlite3 {db_path.name} 'PRAGMA quick_check') and try again") from None


@contextmanager
def connect(db_path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """An autocommit connection (transactions are explicit) with the busy timeout; SQLite errors become StoreError.
    A read-only connection first rolls back a killed writer's unfinished transaction (_roll_back_unfinished_write)."""
    db_path = Path(db_path)
    if read_only and not db_path.is_file():
        raise StoreError(f"results store {db_path}: no such file; register runs first")
    if read_only:
        _roll_back_unfinished_write(db_path)
    target, uri = (db_path.resolve().as_uri() + "?mode=ro", True) if read_only else (str(db_path), False)
    try:
        connection = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri)
    except sqlite3.Error as error:
        raise store_error(db_path, error) from None
    try:
        yield connection
    except sqlite3.Error as error:
        raise store_error(db_path, error) from None
    finally:
        connection.close()


def _write_row(connection: sqlite3.Connection, row: dict) -> None:
    connection.execute(UPSERT, [row[column] for column in COLUMNS])


@contextmanager
def _write_transaction(connection: sqlite3.Connection, db_path: Path, *, create: bool) -> Iterator[None]:
    """One `BEGIN IMMEDIATE` transaction that first checks the schema and upgrades an older store (and, with create,
    sets up a new one), then runs the body; committed when the body succeeds, rolled back otherwise."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = _check_schema(connection, db_path)  # another process may have created or upgraded it meanwhile
        if version == 0 and create:
            for statement in (CREATE_TABLE, *CREATE_INDEXES, CREATE_BENCH_TABLE, *CREATE_BENCH_INDEXES):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif 0 < version < SCHEMA_VERSION:
            upgrade(connection, db_path, version, SCHEMA_VERSION)
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
            connection.execute("ROLLBACK")
        raise


def write_run(db_path: Path, run_id: str, rows: list[dict]) -> int:
    """Replace run_id's rows with rows (upsert by (run_id, backend); backends no longer present are deleted),
    creating the table on first use; all in one transaction. Returns the number of rows written."""
    with connect(db_path) as connection, _write_transaction(connection, db_path, create=True):
        backends = [row["backend"] for row in rows]
        connection.execute(f"DELETE FROM runs WHERE run_id = ? AND backend NOT IN ({', '.join('?' * len(backends))})",
                           [run_id, *backends])
        for row in rows:
            _write_row(connection, row)
    return len(rows)


def write_bench(db_path: Path, bench_id: str, rows: list[dict]) -> int:
    """Replace bench_id's rows with rows (upsert by (bench_id, preset, backend); pairs no longer present are deleted),
    creating the tables on first use; all in one transaction. Returns the number of rows written."""
    with connect(db_path) as connection, _write_transaction(connection, db_path, create=True):
        kept = {(row["preset"], row["backend"]) for row in rows}
        for preset, backend in connection.execute("SELECT preset, backend FROM bench WHERE bench_id = ?", [bench_id]).fetchall():
            if (preset, backend) not in kept:
                connection.execute("DELETE FROM bench WHERE bench_id = ? AND preset = ? AND backend = ?", [bench_id, preset, backend])
        for row in rows:
            connection.execute(BENCH_UPSERT, [row[column] for column in BENCH_COLUMNS])
    return len(rows)


def _upgrade_file(db_path: Path, version: int) -> None:
    """Upgrade an older store before it is read, in one write transaction; StoreError (one line) when it cannot be written."""
    with connect(db_path) as connection:
        try:
            with _write_transaction(connection, db_path, create=False):
                pass
        except sqlite3.Error as error:
            raise StoreError(f"results store {db_path}: schema version {version} must be upgraded to {SCHEMA_VERSION} "
                             f"before it is read (experiments/store/upgrade.py says what changed), but it cannot be "
                             f"written ({error}); make it writable and try again") from None


TABLES = {"runs": (COLUMNS, "created, run_id, id"), "bench": (BENCH_COLUMNS, "created, bench_id, id")}  # columns, order


def _select(connection: sqlite3.Connection, version: int, table: str, where: str,
            parameters: tuple) -> tuple[list[str], list[tuple]]:
    columns, order = TABLES[table]
    if version == 0:  # an empty store file: no table yet
        return ["id", *columns], []
    cursor = connection.execute(f"SELECT * FROM {table} {where} ORDER BY {order}", parameters)
    return [description[0] for description in cursor.description], cursor.fetchall()


def read_rows(db_path: Path, where: str = "", parameters: tuple = (), table: str = "runs") -> tuple[list[str], list[tuple]]:
    """Column names and rows of `SELECT * FROM {table} {where}` (table "runs" or "bench"), from a store opened
    read-only (an older store is upgraded first, and then reopened)."""
    db_path = Path(db_path)
    with connect(db_path, read_only=True) as connection:
        version = _check_schema(connection, db_path)
        if not 0 < version < SCHEMA_VERSION:
            return _select(connection, version, table, where, parameters)
    _upgrade_file(db_path, version)
    with connect(db_path, read_only=True) as connection:
        return _select(connection, _check_schema(connection, db_path), table, where, parameters)
