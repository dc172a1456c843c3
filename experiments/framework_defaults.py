"""Each framework's own defaults next to the values the suite pins, read live (what `mnist-parity defaults` shows and
the report's neutralised-defaults table uses).

Framework values come from `python -m backends.<name>.defaults` run in a subprocess per
backend (each imports its framework there, so a version change shows up here). Suite values
come from the catalog and model specs: a default when the suite has one, "required" when the
frameworks disagree and the spec must choose.
"""

import json
import subprocess
import sys

import pandas as pd
from pydantic_core import PydanticUndefined

from experiments import catalog
from experiments.spec import model as model_spec
from experiments.spec.experiment import ExperimentSpec

FRAMEWORK_BACKENDS = ("torch", "keras", "jax")
LAYER_SPECS = {"batch_norm": model_spec.BatchNorm, "max_pool": model_spec.MaxPool, "conv2d": model_spec.ConvBlock, "dense": model_spec.DenseBlock}


INHERITED = {("dense", "kernel_init"): "model.kernel_init", ("dense", "bias_init"): "model.bias_init",
             ("conv2d", "kernel_init"): "model.kernel_init", ("conv2d", "bias_init"): "model.bias_init"}
"""Layer fields whose own default (None) means "the model's initialiser", which every spec must set."""


def _pinned(field) -> str:
    if field.default_factory is not None:
        return repr(field.default_factory())
    return "from spec: required" if field.default is PydanticUndefined else repr(field.default)


def suite_values() -> pd.DataFrame:
    """(entry, parameter, suite) for every hyperparameter of every catalog entry (initialisers and schedules
    included), layer spec, and the spec's dtype: the value the suite pins, or where the spec must choose."""
    rows = {}
    tables = {**catalog.ACTIVATIONS, **catalog.OUTPUT_ACTIVATIONS, **catalog.LOSSES, **catalog.OPTIMIZERS,
              **catalog.INITIALIZERS, **catalog.SCHEDULES, **LAYER_SPECS}
    for entry, cls in tables.items():
        for parameter, field in cls.model_fields.items():
            if parameter != "name":
                rows.setdefault((entry, field.alias or parameter), _pinned(field))
    for key, source in INHERITED.items():
        rows[key] = f"from spec: {source} (or the block's own), required"
    rows[("spec", "dtype")] = _pinned(ExperimentSpec.model_fields["dtype"])
    return pd.DataFrame([{"entry": e, "parameter": p, "suite": v} for (e, p), v in rows.items()])


def framework_values(backend: str) -> tuple[pd.DataFrame, str | None]:
    """The backend's rows (entry, parameter, value, source), or an empty frame and the reason it failed."""
    result = subprocess.run([sys.executable, "-m", f"backends.{backend}.defaults"], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return pd.DataFrame(columns=["entry", "parameter", "value", "source"]), f"{backend}: {last}"
    return pd.DataFrame(json.loads(result.stdout)), None


def defaults_frame(backends=FRAMEWORK_BACKENDS) -> tuple[pd.DataFrame, list[str]]:
    """One row per (entry, parameter): the suite's value and each framework's default(s) with sources."""
    table, problems = suite_values(), []
    for backend in backends:
        rows, problem = framework_values(backend)
        if problem:
            problems.append(problem)
        if rows.empty:
            table[backend] = None
            continue
        rows["cell"] = rows["value"].map(repr) + " (" + rows["source"] + ")"
        joined = rows.groupby(["entry", "parameter"])["cell"].agg("; ".join).rename(backend).reset_index()
        table = table.merge(joined, on=["entry", "parameter"], how="outer")
    table["suite"] = table["suite"].fillna("-")
    return table.sort_values(["entry", "parameter"]).reset_index(drop=True), problems


FRAMEWORK_ONLY_ENTRIES = ("dropout",)
"""Entries the frameworks report defaults for that the suite pins as a plain block field (DenseBlock.dropout)."""


def known_entries() -> list[str]:
    """Every entry name `defaults` can show, known without importing a framework: each catalog entry (those without
    hyperparameters too), each layer spec, the spec itself, and the framework-only layers."""
    tables = {**catalog.ACTIVATIONS, **catalog.OUTPUT_ACTIVATIONS, **catalog.LOSSES, **catalog.OPTIMIZERS,
              **catalog.INITIALIZERS, **catalog.SCHEDULES, **LAYER_SPECS}
    return sorted({*tables, "spec", *FRAMEWORK_ONLY_ENTRIES})
