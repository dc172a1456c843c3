"""The loaded inputs (runs with their results-store rows, sweeps, verifies, benches with their bench-table rows) as the
tables, figures and summary read them."""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.report.schemas import ResultsDocument, SpecView, SweepDocument, VerifyDocument
from experiments.store.schema import COLUMNS

SWEEP_CONTROL_FACTORS = ("backend", "seed")
STORE_COLUMNS = list(COLUMNS)  # load_runs' columns but the store's own id
REPORT_COLUMNS = ["label", "diverged", "usable", "val_missing"]  # added to the store's columns by loading._report_columns


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
        """A sweep cell's {spec field: value} from its rows' factors_json (the one source: a tag missing from
        results.json is filled in from sweep.json before the rows are made); {} for a standalone run."""
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


@dataclass(frozen=True, eq=False)
class Bench:
    """A bench folder's bench.json (checked as the store checks it); rows are its rows of the store's bench table, one
    per preset and backend in the document's order (as load_bench would return them once registered)."""

    path: Path
    label: str
    data: dict
    rows: pd.DataFrame

    @property
    def threads(self) -> int | None:
        return self.data.get("threads")


@dataclass(frozen=True)
class Inputs:
    """Everything named on the command line, by kind, in the order given."""

    runs: list[Run]
    sweeps: list[Sweep]
    verifies: list[Verify]
    benches: list[Bench] = field(default_factory=list)

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
        return ([r.label for r in self.runs] + [s.name for s in self.sweeps] + [v.label for v in self.verifies]
                + [b.label for b in self.benches])
