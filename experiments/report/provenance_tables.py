"""What was run: the inputs read, and the hyperparameters, settings and versions each backend ran with."""

from typing import Any

import pandas as pd

from experiments.report.inputs import Inputs, Run, records
from experiments.report.table import Table


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"optimizer.learning_rate": 0.001, "model.hidden[0].units": 256, ...}."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def hyperparameters_table(title: str, runs: list[Run]) -> Table:
    """What each backend ran with: the resolved spec (the same for every backend of a run), then the
    backend's own recorded settings and versions; several values (a sweep's grid) are listed together."""
    values: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        spec = {k: v for k, v in run.raw_spec.items() if k not in ("name", "description")}
        for result in records(run.rows):
            params = {**flatten(spec),
                      **{f"settings.{k}": v for k, v in flatten(result["settings_json"] or {}).items()},
                      **{f"versions.{k}": v for k, v in (result["versions_json"] or {}).items()}}
            for name, value in params.items():
                seen = values.setdefault(name, {}).setdefault(result["backend"], [])
                text = "None" if value is None else str(value)
                if text not in seen:
                    seen.append(text)
    backends = list(dict.fromkeys(backend for run in runs for backend in run.rows["backend"]))
    rows = [{"parameter": name, **{b: ", ".join(per.get(b, [])) or None for b in backends}} for name, per in values.items()]
    note = ("Spec fields are the values the suite pinned for every backend (no framework default is relied on); "
            "settings and versions are what each backend recorded when it started.")
    return Table(title, pd.DataFrame(rows, columns=["parameter", *backends]), {}, note)


def inputs_table(inputs: Inputs) -> Table:
    rows = []
    for run in inputs.runs:
        rows.append(_input_row("run", run.label, run.path, run.document.dataset, list(run.document.backends), run.document.created))
    for sweep in inputs.sweeps:
        first = sweep.runs[0].document if sweep.runs else None
        backends = list(dict.fromkeys(sweep.rows["backend"]))
        row = _input_row("sweep", sweep.name, sweep.path, first.dataset if first else None, backends, "")
        row["cells"] = f"{len(sweep.runs)} of {len(sweep.document.cells)} with results"
        rows.append(row)
    for verify in inputs.verifies:
        levels = ", ".join(sorted(verify.document.levels)) or "matrix 1-4"
        row = _input_row("verify", verify.label, verify.path, verify.document.dataset, [], "")
        row["cells"] = f"levels {levels}" if verify.document.spec else f"{len(verify.document.matrix or {})} matrix cells"
        rows.append(row)
    for bench in inputs.benches:
        row = _input_row("bench", bench.label, bench.path, None, list(dict.fromkeys(bench.rows["backend"])),
                         bench.data.get("created"))
        row["dataset"] = bench.data.get("dataset")
        row["cells"] = f"presets {', '.join(dict.fromkeys(bench.rows['preset']))}"
        rows.append(row)
    return Table("Inputs", pd.DataFrame(rows, columns=["kind", "name", "dataset", "digits", "backends", "cells", "created", "directory"]))


def _input_row(kind, name, path, dataset, backends, created) -> dict:
    digits = None
    if dataset is not None:
        split = dataset.split or dataset.sizes
        digits = " / ".join(f"{split[k]:,} {k}" for k in ("train", "validation", "test") if k in split)
    return {"kind": kind, "name": name, "dataset": dataset.name if dataset else None, "digits": digits,
            "backends": ", ".join(backends) or None, "cells": None, "created": created or None, "directory": str(path)}
