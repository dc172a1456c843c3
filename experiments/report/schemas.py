"""Pydantic schemas of results.json, sweep.json and verify.json, as far as the report reads them (extra fields kept)."""

# A run directory holds results.json (experiments.results.results_document); a sweep directory holds sweep.json and
# cells/<key>/results.json (experiments.sweep.local); a verify directory holds verify.json (experiments.commands.verify,
# single spec or --matrix). Only the fields the report reads are validated; everything else is kept as it was written.
# Level 5's per-backend accuracies and pairs are validated as the dataclasses experiments.verify.statistical writes.

from typing import Any

from pydantic import BaseModel, ConfigDict

from experiments.verify.statistical import BackendAccuracy, Equivalence


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
    implementation: str = "catalog"


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
    cause: str = ""  # native mode: the measured causes of its failing rows
    failing: int | None = None


class QuantityRow(_Document):
    """One compared quantity of a level (read for native verifies, whose failing rows carry a measured cause)."""

    level: str
    first: str
    second: str
    quantity: str
    passed: bool
    stats: dict[str, Any] = {}
    cause: str = ""


class NumericLevel(_Document):
    """One of levels 1-4 in verify.json."""

    name: str
    summary: list[LadderLine] = []
    rows: list[QuantityRow] = []
    failures: dict[str, str] = {}
    passed: bool
    growth: dict[str, dict[int, float]] | None = None
    rounding_floor: dict[str, float | None] | None = None


class StatisticalLevel(_Document):
    """Level 5 in verify.json (experiments.verify.level5.run_level5)."""

    seeds: list[int]
    margin_points: float
    backends: list[BackendAccuracy] = []
    pairs: list[Equivalence] = []
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
