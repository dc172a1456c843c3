"""Read stored run, sweep and verify directories into validated documents; bad input raises UserError with one line.

A run directory holds results.json (experiments.results.results_document); a sweep directory
holds sweep.json and cells/<key>/results.json (experiments.sweep.local); a verify directory
holds verify.json (experiments.commands.verify, single spec or --matrix). Only the fields the
report reads are validated; everything else is kept as it was written. history.csv is not
read: results.json holds the same per-epoch records.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from experiments.errors import UserError

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


class Metrics(_Document):
    """A finished backend's final figures (empty for a failed one)."""

    test_accuracy: float | None = None
    test_loss: float | None = None
    train_time_s: float | None = None
    samples_per_s: float | None = None
    steady_samples_per_s: float | None = None


class Outcome(_Document):
    """One backend's outcome in results.json (experiments.outcome.BackendOutcome.to_dict)."""

    backend: str
    status: str
    reason: str = ""
    versions: dict[str, str | None] = {}
    settings: dict[str, Any] = {}
    parameter_count: int | None = None
    metrics: Metrics = Metrics()
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


@dataclass(frozen=True)
class BackendRun:
    """One backend of one run: the unit every results table row, curve and gate is about."""

    run: "Run"
    backend: str
    outcome: Outcome

    @property
    def ok(self) -> bool:
        return self.outcome.status == "ok"

    @property
    def final_val_accuracy(self) -> float | None:
        """The last epoch's validation accuracy: the model that was tested is the last one."""
        history = self.outcome.history
        value = history[-1].val_accuracy if history else None
        return None if value is None or math.isnan(value) else value

    @property
    def diverged(self) -> bool:
        """Finished, yet without a usable accuracy: the test accuracy (or, with a validation split, the last
        epoch's validation accuracy) is missing or not finite, as when the weights became NaN."""
        if not self.ok:
            return False
        test = self.outcome.metrics.test_accuracy
        if test is None or not math.isfinite(test):
            return True
        history = self.outcome.history
        if not history:
            return False
        value = history[-1].val_accuracy
        if value is None:
            return self.run.document.dataset.split.get("validation", 0) > 0
        return not math.isfinite(value)

    @property
    def usable(self) -> bool:
        """Finished and not diverged: its accuracies enter means, intervals and ranks."""
        return self.ok and not self.diverged


@dataclass(frozen=True)
class Run:
    """One results.json; label is what the report calls it (the directory name)."""

    path: Path
    document: ResultsDocument
    label: str

    @property
    def spec(self) -> SpecView:
        return self.document.spec

    @property
    def raw_spec(self) -> dict:
        return self.document.spec.model_dump(mode="json")

    @property
    def train_size(self) -> int | None:
        """Training digits actually used (after the validation hold-out)."""
        return self.document.dataset.split.get("train")

    @property
    def factors(self) -> dict[str, Any]:
        return dict(self.document.sweep.factors) if self.document.sweep else {}

    def backend_runs(self) -> list[BackendRun]:
        return [BackendRun(self, name, outcome) for name, outcome in self.document.backends.items()]


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
    def study_fields(self) -> list[str]:
        """The grid's fields (e.g. `model.hidden[*].activation`, `optimizer`): what the study compares."""
        if self.document.grid:
            return list(self.document.grid)
        keys = dict.fromkeys(k for run in self.runs for k in run.factors if k not in SWEEP_CONTROL_FACTORS)
        return [k for k in keys if len({str(run.factors.get(k)) for run in self.runs}) > 1]

    @property
    def seeds(self) -> list[int]:
        return sorted({run.spec.seed for run in self.runs if run.spec.seed is not None})


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
    document: ResultsDocument = _parse(ResultsDocument, path / RESULTS_FILE)
    if not document.backends:
        raise UserError(f"report: {path / RESULTS_FILE} lists no backends")
    return Run(path, document, label or path.name)


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
        run = load_run(cell_dir, label=f"{document.name}: {shown}")
        if run.document.sweep is None:
            tag = SweepTag(name=document.name, key=cell.key, factors=cell.factors)
            run = Run(run.path, run.document.model_copy(update={"sweep": tag}), run.label)
        runs.append(run)
    return Sweep(path, document, runs, missing)


def load_verify(path: Path) -> Verify:
    document: VerifyDocument = _parse(VerifyDocument, path / VERIFY_FILE)
    if document.spec is None and document.matrix is None:
        raise UserError(f"report: {path / VERIFY_FILE} has neither a spec with levels nor a matrix")
    return Verify(path, document, path.name)


def load_inputs(paths: list[Path]) -> Inputs:
    """Classify and read every path; a path that is none of the three kinds raises UserError."""
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
    return Inputs(runs, sweeps, verifies)
