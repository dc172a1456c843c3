"""Read stored run, sweep and verify directories into validated documents; bad input raises UserError with one line.

A run directory holds results.json (experiments.results.results_document); a sweep directory
holds sweep.json and cells/<key>/results.json (experiments.sweep.local); a verify directory
holds verify.json (experiments.commands.verify, single spec or --matrix). Only the fields the
report reads are validated; everything else is kept as it was written. history.csv is not
read: results.json holds the same per-epoch records.

Per-backend results (status, metrics, validation accuracies, versions, settings, factors, split)
are not read here: every run directory, sweep cells included, is registered in a temporary
results store (experiments.store, the one place that flattens a run document into rows) and
each Run carries its rows of `load_runs`. The documents give what the store does not hold: the
per-epoch history for the curves, the spec as written, the dataset note, and verify.json.
"""

import json
import math
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from experiments.errors import UserError
from experiments.store import load_runs, register_run
from experiments.store.schema import COLUMNS

RESULTS_FILE = "results.json"
SWEEP_FILE = "sweep.json"
VERIFY_FILE = "verify.json"
CELL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SWEEP_CONTROL_FACTORS = ("backend", "seed")


class _Document(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Epoch(_Document):
    """One per-epoch record of a backend's history."""

    epoch: int
    train_loss: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None
    epoch_time_s: float | None = None
    elapsed_s: float | None = None


class Outcome(_Document):
    """One backend's outcome in results.json (experiments.outcome.BackendOutcome.to_dict), as far as the report reads
    it itself: the history for the curves. Status, metrics, versions and settings come from the store's rows."""

    backend: str
    status: str
    history: list[Epoch] = []


class SpecView(_Document):
    """The parts of a resolved spec the report reads; the rest stays in the raw dict."""

    name: str
    model: dict[str, Any]
    loss: dict[str, Any]
    optimizer: dict[str, Any]
    training: dict[str, Any]
    data: dict[str, Any] = {}
    seed: int | None = None
    dtype: str | None = None


class DatasetView(_Document):
    name: str
    sizes: dict[str, int] = {}
    split: dict[str, int] = {}
    note: str = ""


class SweepTag(_Document):
    name: str
    key: str
    factors: dict[str, Any] = {}


class ResultsDocument(_Document):
    """results.json of one run (or of one sweep cell, which adds `sweep`)."""

    spec: SpecView
    spec_hash: str = ""
    created: str = ""
    dataset: DatasetView
    backends: dict[str, Outcome]
    sweep: SweepTag | None = None


class SweepCell(_Document):
    key: str
    backend: str | None = None
    factors: dict[str, Any] = {}


class SweepDocument(_Document):
    """sweep.json (experiments.sweep.local.write_sweep_document)."""

    name: str
    description: str = ""
    base: str = ""
    grid: dict[str, list[Any] | dict[str, Any]] = {}  # {key: {label: value}}; older sweep.json: {key: [labels]}
    seeds: list[int] | None = None
    cells: list[SweepCell]


class LadderLine(_Document):
    """One summary line of a parity level: a pair of backends, pass/fail and the worst quantity."""

    level: str
    first: str
    second: str
    passed: bool
    compared: int = 0
    worst_quantity: str = ""
    worst_error: float | None = None
    tolerance: float | None = None
    first_failure: str = ""
    hint: str = ""
    failing: int | None = None


class NumericLevel(_Document):
    """One of levels 1-4 in verify.json (the per-quantity rows are not read)."""

    name: str
    summary: list[LadderLine] = []
    failures: dict[str, str] = {}
    passed: bool
    growth: dict[str, dict[int, float]] | None = None
    rounding_floor: dict[str, float | None] | None = None


class BackendAccuracy(_Document):
    backend: str
    accuracies: list[float]
    mean: float
    ci_low: float
    ci_high: float


class EquivalencePair(_Document):
    first: str
    second: str
    mean_difference: float
    ci90_low: float
    ci90_high: float
    p_tost: float
    margin: float
    verdict: str


class StatisticalLevel(_Document):
    """Level 5 in verify.json (experiments.verify.level5.run_level5)."""

    seeds: list[int]
    margin_points: float
    backends: list[BackendAccuracy] = []
    pairs: list[EquivalencePair] = []
    failures: list[str] = []
    passed: bool


class MatrixCell(_Document):
    model: str
    axis: str
    entry: str
    levels: dict[str, NumericLevel]
    passed: bool


class VerifyDocument(_Document):
    """verify.json of `verify SPEC` (levels) or of `verify --matrix` (matrix)."""

    spec: SpecView | None = None
    base: str | None = None
    dataset: DatasetView | None = None
    levels: dict[str, NumericLevel | StatisticalLevel] = {}
    matrix: dict[str, MatrixCell] | None = None
    passed: bool


STORE_COLUMNS = ["id", *COLUMNS]
REPORT_COLUMNS = ["label", "diverged", "usable", "val_missing"]  # added to the store's columns by this module


@dataclass(frozen=True, eq=False)
class Run:
    """One results.json; label is what the report calls it (the directory name); rows are its rows of the
    results store, one per backend in the document's order, with the REPORT_COLUMNS added."""

    path: Path
    document: ResultsDocument
    label: str
    rows: pd.DataFrame

    @property
    def spec(self) -> SpecView:
        return self.document.spec

    @property
    def raw_spec(self) -> dict:
        return self.document.spec.model_dump(mode="json")

    @property
    def factors(self) -> dict[str, Any]:
        """A sweep cell's {spec field: value} as the store read it; {} for a standalone run."""
        return dict(self.rows["factors_json"].iloc[0] or {}) if len(self.rows) else {}


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of several runs, in order; an empty frame with every column when there are none."""
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=STORE_COLUMNS + REPORT_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _plain(value: Any) -> Any:
    """A frame's value as plain Python: None for a missing one (SQL NULL, pandas NA, NaN), numpy scalars unwrapped."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as dicts of plain Python values, for the tables and figures to read."""
    return [{name: _plain(value) for name, value in row.items()} for row in frame.to_dict("records")]


@dataclass(frozen=True)
class Sweep:
    """A sweep directory: its sweep.json, the cells that have results, and the keys of those that do not yet."""

    path: Path
    document: SweepDocument
    runs: list[Run]
    missing: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.document.name

    @property
    def rows(self) -> pd.DataFrame:
        return concat([run.rows for run in self.runs])

    @property
    def study_fields(self) -> list[str]:
        """The grid's fields (e.g. `model.hidden[*].activation`, `optimizer`): what the study compares."""
        if self.document.grid:
            return list(self.document.grid)
        keys = dict.fromkeys(k for run in self.runs for k in run.factors if k not in SWEEP_CONTROL_FACTORS)
        return [k for k in keys if len({str(run.factors.get(k)) for run in self.runs}) > 1]


@dataclass(frozen=True)
class Verify:
    """A verify directory's verify.json."""

    path: Path
    document: VerifyDocument
    label: str

    @property
    def name(self) -> str:
        if self.document.spec is not None:
            return self.document.spec.name
        return f"matrix on {self.document.base or '?'}"


@dataclass(frozen=True)
class Inputs:
    """Everything named on the command line, by kind, in the order given."""

    runs: list[Run]
    sweeps: list[Sweep]
    verifies: list[Verify]

    @property
    def all_runs(self) -> list[Run]:
        """Standalone runs, then every sweep's cells."""
        return self.runs + [run for sweep in self.sweeps for run in sweep.runs]

    @property
    def results(self) -> pd.DataFrame:
        """The store's rows of every run, in the order of all_runs."""
        return concat([run.rows for run in self.all_runs])

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.runs] + [s.name for s in self.sweeps] + [v.label for v in self.verifies]


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
