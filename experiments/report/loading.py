"""Read run, sweep, verify and bench directories into Inputs, each run's (and bench's) rows as the results store
flattens them; bad input raises UserError."""

# Per-backend results (status, metrics, validation accuracies, versions, settings, factors, split) are not read from
# the validated documents: each run's results.json, sweep cells included, is flattened by experiments.store.rows (the
# one place that turns a run document into rows) and each Run carries those rows as load_runs would return them. The
# documents give what the rows do not hold: the per-epoch history for the curves, the spec as written, the dataset
# note, and verify.json. history.csv is not read: results.json holds the same per-epoch records.

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from experiments.errors import UserError
from experiments.report.inputs import Bench, Inputs, Run, Sweep, Verify
from experiments.report.schemas import ResultsDocument, SweepDocument, VerifyDocument
from experiments.store.documents import BENCH_FILENAME, RESULTS_FILENAME, VERIFY_FILENAME, bench_document, load_json, run_document
from experiments.store.query import bench_frame, rows_frame
from experiments.store.rows import bench_rows, document_rows, last_val_not_finite
from experiments.store.schema import BENCH_COLUMNS, COLUMNS

SWEEP_FILE = "sweep.json"
CELL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _read(path: Path) -> dict:
    try:
        data = load_json(path)
    except UserError as error:
        raise UserError(f"report: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"report: {path}: expected a JSON object, found {type(data).__name__}")
    return data


def _validated(model: type[BaseModel], path: Path, data: dict) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise UserError(f"report: {path} is not a {path.name} this version writes: {_one_line(error)}") from None


def _parse(model: type[BaseModel], path: Path) -> Any:
    return _validated(model, path, _read(path))


def load_run(path: Path, label: str | None = None, sweep_tag: dict | None = None) -> Run:
    """The validated results.json and its rows (as load_runs would return them once registered).

    Args:
        sweep_tag: the cell's {"name", "key", "factors"} from sweep.json, for a results.json written without its
            sweep tag; one the document holds is kept.
    """
    results = path / RESULTS_FILENAME
    data = _read(results)
    if sweep_tag is not None and "sweep" not in data:
        data = {**data, "sweep": sweep_tag}
    try:  # first the store's checks, the ones `run` registers with; then what the report reads besides
        raw = run_document(results, data)
    except UserError as error:
        raise UserError(f"report: {error}") from None
    document: ResultsDocument = _validated(ResultsDocument, results, data)
    if not document.backends:
        raise UserError(f"report: {results} lists no backends")
    label = label or path.name
    run_dir = path.resolve()
    rows = rows_frame(list(COLUMNS), ([row[column] for column in COLUMNS] for row in document_rows(raw, run_dir.as_posix(), run_dir)))
    return Run(path, document, label, _report_columns(rows, label, data))


def load_sweep(path: Path) -> Sweep:
    """The sweep's cells that have results; a cell never run (or still running) is listed as missing."""
    document: SweepDocument = _parse(SweepDocument, path / SWEEP_FILE)
    runs, missing = [], []
    for cell in document.cells:
        if not CELL_KEY.match(cell.key):
            raise UserError(f"report: {path / SWEEP_FILE}: cell key {cell.key!r} is not a folder name")
        cell_dir = path / "cells" / cell.key
        if not (cell_dir / RESULTS_FILENAME).is_file():
            missing.append(cell.key)
            continue
        shown = ", ".join(f"{k}={v}" for k, v in cell.factors.items() if k != "backend") or cell.key
        try:
            tag = {"name": document.name, "key": cell.key, "factors": cell.factors}
            run = load_run(cell_dir, label=f"{document.name}: {shown}", sweep_tag=tag)
        except UserError as error:
            raise UserError(f"{error}; rerunning 'mnist-parity sweep {document.name}' moves a damaged cell aside and "
                            "retrains it") from None
        runs.append(run)
    return Sweep(path, document, runs, missing)


def load_verify(path: Path) -> Verify:
    document: VerifyDocument = _parse(VerifyDocument, path / VERIFY_FILENAME)
    if document.spec is None and document.matrix is None:
        raise UserError(f"report: {path / VERIFY_FILENAME} has neither a spec with levels nor a matrix")
    return Verify(path, document, path.name)


def load_bench(path: Path) -> Bench:
    """The bench.json of a `mnist-parity bench` folder, checked as `register_bench` checks it, and its rows."""
    document = path / BENCH_FILENAME
    data = _read(document)
    try:
        raw = bench_document(document, data)
    except UserError as error:
        raise UserError(f"report: {error}") from None
    if not any(data["results"].values()):
        raise UserError(f"report: {document} lists no preset with a backend")
    bench_dir = path.resolve()
    rows = bench_frame(list(BENCH_COLUMNS), ([row[c] for c in BENCH_COLUMNS] for row in bench_rows(raw, bench_dir.as_posix(), bench_dir)))
    return Bench(path, path.name, data, rows)


def _report_columns(rows: pd.DataFrame, label: str, data: dict) -> pd.DataFrame:
    """The run's rows with the run's label, and whether each backend diverged, is usable, or lacks its final
    validation accuracy.

    Diverged: finished, yet the test accuracy is missing or not finite, or the last epoch's validation accuracy is
    present and not finite (as when the weights became NaN). A validation accuracy that is merely missing (no
    validation split, or an epoch that recorded none) is not a divergence: with a validation split it is marked
    val_missing ("no validation accuracy"), and the run's test accuracy still counts. Usable: finished and not
    diverged; only those enter means, intervals and ranks.
    """
    ok = (rows["status"] == "ok").to_numpy(dtype=bool)
    test = pd.to_numeric(rows["test_accuracy"], errors="coerce").to_numpy(dtype=float)
    val_not_finite = np.array([last_val_not_finite(data["backends"][backend]) for backend in rows["backend"]], dtype=bool)
    validated = (rows["split_validation"].fillna(0) > 0).to_numpy(dtype=bool) | rows["best_val_accuracy"].notna().to_numpy()
    no_final = ((rows["epochs_run"].fillna(0) > 0).to_numpy(dtype=bool) & rows["final_val_accuracy"].isna().to_numpy()
                & validated)
    diverged = ok & (~np.isfinite(test) | val_not_finite)
    return rows.assign(label=label, diverged=diverged, usable=ok & ~diverged, val_missing=ok & ~diverged & no_final)


def load_inputs(paths: list[Path]) -> Inputs:
    """Classify and read every path; a path that is none of the four kinds raises UserError."""
    if not paths:
        raise UserError("report: name at least one run, sweep, verify or bench directory")
    runs, sweeps, verifies, benches = [], [], [], []
    seen = set()
    for path in map(Path, paths):
        if not path.is_dir():
            raise UserError(f"report: {path} is not a directory; give run directories (results.json), "
                            f"sweep directories (sweep.json), verify directories (verify.json) or bench folders "
                            f"(bench.json)")
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        if (path / SWEEP_FILE).is_file():
            sweeps.append(load_sweep(path))
        elif (path / RESULTS_FILENAME).is_file():
            runs.append(load_run(path))
        elif (path / VERIFY_FILENAME).is_file():
            verifies.append(load_verify(path))
        elif (path / BENCH_FILENAME).is_file():
            benches.append(load_bench(path))
        else:
            raise UserError(f"report: {path} is not a run, sweep or verify directory, nor a bench folder: it holds no "
                            f"{RESULTS_FILENAME}, {SWEEP_FILE}, {VERIFY_FILENAME} or {BENCH_FILENAME}")
    return Inputs(runs, sweeps, verifies, benches)
