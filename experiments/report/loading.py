"""Read run, sweep and verify directories into Inputs, each run's rows from a temporary results store; bad input raises UserError."""

# Per-backend results (status, metrics, validation accuracies, versions, settings, factors, split) are not read from
# the documents: every run directory, sweep cells included, is registered in a temporary results store
# (experiments.store, the one place that flattens a run document into rows) and each Run carries its rows of
# `load_runs`. The documents give what the store does not hold: the per-epoch history for the curves, the spec as
# written, the dataset note, and verify.json. history.csv is not read: results.json holds the same per-epoch records.

import json
import math
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from experiments.errors import UserError
from experiments.report.inputs import Inputs, Run, Sweep, Verify, concat
from experiments.report.schemas import ResultsDocument, SweepDocument, SweepTag, VerifyDocument
from experiments.store import load_runs, register_run

RESULTS_FILE = "results.json"
SWEEP_FILE = "sweep.json"
VERIFY_FILE = "verify.json"
CELL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"report: cannot read {path}: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"report: {path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                        "is the file truncated?") from None


def _parse(model: type[BaseModel], path: Path) -> Any:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"report: {path}: expected a JSON object, found {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise UserError(f"report: {path} is not a {path.name} this version writes: {_one_line(error)}") from None


def load_run(path: Path, label: str | None = None) -> Run:
    """The validated results.json; its rows are filled in by load_inputs, from the store."""
    document: ResultsDocument = _parse(ResultsDocument, path / RESULTS_FILE)
    if not document.backends:
        raise UserError(f"report: {path / RESULTS_FILE} lists no backends")
    return Run(path, document, label or path.name, concat([]))


def load_sweep(path: Path) -> Sweep:
    """The sweep's cells that have results; a cell never run (or still running) is listed as missing."""
    document: SweepDocument = _parse(SweepDocument, path / SWEEP_FILE)
    runs, missing = [], []
    for cell in document.cells:
        if not CELL_KEY.match(cell.key):
            raise UserError(f"report: {path / SWEEP_FILE}: cell key {cell.key!r} is not a folder name")
        cell_dir = path / "cells" / cell.key
        if not (cell_dir / RESULTS_FILE).is_file():
            missing.append(cell.key)
            continue
        shown = ", ".join(f"{k}={v}" for k, v in cell.factors.items() if k != "backend") or cell.key
        try:
            run = load_run(cell_dir, label=f"{document.name}: {shown}")
        except UserError as error:
            raise UserError(f"{error}; rerunning 'mnist-parity sweep {document.name}' moves a damaged cell aside and "
                            "retrains it") from None
        if run.document.sweep is None:
            tag = SweepTag(name=document.name, key=cell.key, factors=cell.factors)
            run = replace(run, document=run.document.model_copy(update={"sweep": tag}))
        runs.append(run)
    return Sweep(path, document, runs, missing)


def load_verify(path: Path) -> Verify:
    document: VerifyDocument = _parse(VerifyDocument, path / VERIFY_FILE)
    if document.spec is None and document.matrix is None:
        raise UserError(f"report: {path / VERIFY_FILE} has neither a spec with levels nor a matrix")
    return Verify(path, document, path.name)


def store_rows(run_dirs: list[Path]) -> dict[str, pd.DataFrame]:
    """{resolved run directory: its rows}, each backend in the document's order, from a temporary results store.

    Every run is registered afresh, so the report is right for copied or never-registered folders,
    and nothing is written beside the user's runs: the store lives in a temporary folder, deleted
    once it has been read.
    """
    wanted = list(dict.fromkeys(str(Path(path).resolve()) for path in run_dirs))
    if not wanted:
        return {}
    try:
        with tempfile.TemporaryDirectory(prefix="mnist-parity-report-") as folder:
            db_path = Path(folder) / "results.sqlite"
            for run_dir in wanted:
                register_run(Path(run_dir), db_path)
            frame = load_runs(db_path)
    except UserError as error:
        raise UserError(f"report: {error}") from None
    except OSError as error:
        raise UserError(f"report: cannot make a temporary results store in {tempfile.gettempdir()}: "
                        f"{error.strerror or error}; set TMPDIR to a writable folder") from None
    return {run_dir: rows.reset_index(drop=True) for run_dir, rows in frame.groupby("run_dir", sort=False)}


def _last_val_not_finite(document: ResultsDocument, backend: str) -> bool:
    """The backend's last epoch has a validation accuracy, and it is not finite (NaN or infinite: the weights diverged).

    The store holds a non-finite value as NULL, like a missing one, so this is read from the document's history."""
    outcome = document.backends.get(backend)
    history = outcome.history if outcome is not None else []
    last = history[-1].val_accuracy if history else None
    return last is not None and not math.isfinite(last)


def _report_columns(rows: pd.DataFrame, label: str, document: ResultsDocument) -> pd.DataFrame:
    """The store's rows with the run's label, and whether each backend diverged, is usable, or lacks its final
    validation accuracy.

    Diverged: finished, yet the test accuracy is missing or not finite, or the last epoch's validation accuracy is
    present and not finite (as when the weights became NaN). A validation accuracy that is merely missing (no
    validation split, or an epoch that recorded none) is not a divergence: with a validation split it is marked
    val_missing ("no validation accuracy"), and the run's test accuracy still counts. Usable: finished and not
    diverged; only those enter means, intervals and ranks.
    """
    ok = (rows["status"] == "ok").to_numpy(dtype=bool)
    test = pd.to_numeric(rows["test_accuracy"], errors="coerce").to_numpy(dtype=float)
    val_not_finite = np.array([_last_val_not_finite(document, backend) for backend in rows["backend"]], dtype=bool)
    validated = (rows["split_validation"].fillna(0) > 0).to_numpy(dtype=bool) | rows["best_val_accuracy"].notna().to_numpy()
    no_final = ((rows["epochs_run"].fillna(0) > 0).to_numpy(dtype=bool) & rows["final_val_accuracy"].isna().to_numpy()
                & validated)
    diverged = ok & (~np.isfinite(test) | val_not_finite)
    return rows.assign(label=label, diverged=diverged, usable=ok & ~diverged, val_missing=ok & ~diverged & no_final)


def _with_rows(run: Run, rows: dict[str, pd.DataFrame]) -> Run:
    own = rows[str(run.path.resolve())]
    tag = run.document.sweep
    if tag is not None and own["sweep"].isna().all():  # a cell whose results.json predates its sweep tag: sweep.json's
        own = own.assign(sweep=tag.name, cell_key=tag.key, factors_json=[dict(tag.factors)] * len(own))
    return replace(run, rows=_report_columns(own, run.label, run.document))


def load_inputs(paths: list[Path]) -> Inputs:
    """Classify and read every path, then the runs' rows from the store; a path that is none of the three kinds
    raises UserError."""
    if not paths:
        raise UserError("report: name at least one run, sweep or verify directory")
    runs, sweeps, verifies = [], [], []
    seen = set()
    for path in map(Path, paths):
        if not path.is_dir():
            raise UserError(f"report: {path} is not a directory; give run directories (results.json), "
                            f"sweep directories (sweep.json) or verify directories (verify.json)")
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        if (path / SWEEP_FILE).is_file():
            sweeps.append(load_sweep(path))
        elif (path / RESULTS_FILE).is_file():
            runs.append(load_run(path))
        elif (path / VERIFY_FILE).is_file():
            verifies.append(load_verify(path))
        else:
            raise UserError(f"report: {path} is not a run, sweep or verify directory: it holds no {RESULTS_FILE}, "
                            f"{SWEEP_FILE} or {VERIFY_FILE}")
    rows = store_rows([run.path for run in runs] + [run.path for sweep in sweeps for run in sweep.runs])
    runs = [_with_rows(run, rows) for run in runs]
    sweeps = [replace(sweep, runs=[_with_rows(run, rows) for run in sweep.runs]) for sweep in sweeps]
    return Inputs(runs, sweeps, verifies)
