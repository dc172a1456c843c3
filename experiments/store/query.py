"""Read the store back as DataFrames: the runs (optionally only one sweep or some run directories) and the benches."""

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from experiments.store.database import read_rows
from experiments.store.schema import BENCH_COLUMNS, BENCH_JSON_COLUMNS, COLUMNS, JSON_COLUMNS

# pandas' nullable dtypes, so a missing seed or epoch stays an integer column instead of turning it into floats
INTEGER_COLUMNS = ["id", *(name for name, declaration in COLUMNS.items() if declaration.startswith("INTEGER"))]
BENCH_INTEGER_COLUMNS = ["id", *(name for name, declaration in BENCH_COLUMNS.items() if declaration.startswith("INTEGER"))]


def _decoded(value):
    return json.loads(value) if isinstance(value, str) else value


def _stored(value):
    """The value as SQLite gives it back: a float NaN is stored as NULL."""
    return None if isinstance(value, float) and math.isnan(value) else value


def rows_frame(columns: Sequence[str], rows: Iterable[Sequence]) -> pd.DataFrame:
    """Rows of the runs table (e.g. rows.document_rows' values in COLUMNS order) as load_runs returns them:
    columns ending in _json decoded, integer columns nullable Int64, parity_passed a nullable boolean."""
    json_at = {i for i, name in enumerate(columns) if name in JSON_COLUMNS}
    records = [[_decoded(value) if i in json_at else _stored(value) for i, value in enumerate(row)] for row in rows]
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    frame = frame.astype({name: "Int64" for name in INTEGER_COLUMNS if name in frame.columns})
    return frame.astype({"parity_passed": "boolean"}) if "parity_passed" in frame.columns else frame


def load_runs(db_path: Path, *, sweep: str | None = None, run_dirs: Iterable[Path] | None = None) -> pd.DataFrame:
    """One row per run and backend, oldest first; columns ending in _json hold decoded objects (dicts, lists),
    integer columns are nullable Int64 and parity_passed is a nullable boolean.

    Args:
        sweep: only the cells of this sweep.
        run_dirs: only these run directories (compared resolved).
    """
    clauses, parameters = [], []
    if sweep is not None:
        clauses.append("sweep = ?")
        parameters.append(sweep)
    if run_dirs is not None:
        wanted = [str(Path(path).resolve()) for path in run_dirs]
        clauses.append(f"run_dir IN ({', '.join('?' * len(wanted))})")
        parameters += wanted
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    columns, rows = read_rows(Path(db_path), where, tuple(parameters))
    return rows_frame(columns, rows)


def bench_frame(columns: Sequence[str], rows: Iterable[Sequence]) -> pd.DataFrame:
    """Rows of the bench table (e.g. rows.bench_rows' values in BENCH_COLUMNS order) as load_bench returns them:
    columns ending in _json decoded, integer columns nullable Int64."""
    json_at = {i for i, name in enumerate(columns) if name in BENCH_JSON_COLUMNS}
    records = [[_decoded(value) if i in json_at else _stored(value) for i, value in enumerate(row)] for row in rows]
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    return frame.astype({name: "Int64" for name in BENCH_INTEGER_COLUMNS if name in frame.columns})


def load_bench(db_path: Path, *, bench_dirs: Iterable[Path] | None = None) -> pd.DataFrame:
    """One row per bench folder, preset and backend, oldest first (bench_frame's types).

    Args:
        bench_dirs: only these bench folders (compared resolved).
    """
    where, parameters = "", ()
    if bench_dirs is not None:
        wanted = [str(Path(path).resolve()) for path in bench_dirs]
        where, parameters = f"WHERE bench_dir IN ({', '.join('?' * len(wanted))})", tuple(wanted)
    columns, rows = read_rows(Path(db_path), where, parameters, table="bench")
    return bench_frame(columns, rows)
