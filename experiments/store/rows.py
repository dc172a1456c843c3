"""Turn a run document into store rows (one dict per backend, with every column of schema.COLUMNS), and a bench.json
into bench rows (one per preset and backend, with every column of schema.BENCH_COLUMNS)."""

import json
import math
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from experiments.errors import UserError
from experiments.spec import ExperimentSpec
from experiments.store.documents import RunDocument
from experiments.store.parity import backend_parity, matrix_dtype
from experiments.store.schema import BENCH_COLUMNS, COLUMNS

RUN_DIR_STAMP = re.compile(r"^(\d{8})-(\d{6})-")  # experiments.results.new_run_dir: <UTC %Y%m%d-%H%M%S>-<name>-<hash>


def _json(value, *, ordered: bool = False) -> str | None:
    """JSON text, keys sorted (one text per value) unless ordered: then in the document's own order, for objects
    whose order means something (a sweep's grid, the packages a backend reported) and that a report lists as written."""
    return None if value is None else json.dumps(value, sort_keys=not ordered, default=str)


def _name(value) -> str | None:
    """A catalog entry's name whether the spec wrote a table ({"name": ...}) or a bare string."""
    return value.get("name") if isinstance(value, dict) else value


def _number(value, kind=float):
    return kind(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _created(data: dict, run_dir: Path) -> str | None:
    """The document's own "created"; verify.json has none, so the UTC stamp new_run_dir put in the directory name."""
    if isinstance(data.get("created"), str):
        return data["created"]
    match = RUN_DIR_STAMP.match(run_dir.name)
    if match:
        stamp = datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        return stamp.isoformat(timespec="seconds")
    return None


def _command(value) -> str | None:
    if isinstance(value, list):
        return shlex.join(str(part) for part in value)
    return value if isinstance(value, str) else None


def _spec_hash(spec: dict) -> str | None:
    """The project's own hash (ExperimentSpec.spec_hash) for a document that did not record one; None if the
    spec no longer validates (an older schema)."""
    try:
        return ExperimentSpec.model_validate(spec).spec_hash()
    except (ValidationError, UserError):
        return None


def _spec_fields(spec: dict | None, spec_hash: str | None) -> dict:
    if not isinstance(spec, dict):
        return {}
    training = spec.get("training") or {}
    return {
        "spec_name": spec.get("name"), "spec_hash": spec_hash or _spec_hash(spec), "spec_json": _json(spec),
        "dtype": spec.get("dtype"), "seed": _number(spec.get("seed"), int), "epochs": _number(training.get("epochs"), int),
        "batch_size": _number(training.get("batch_size"), int), "model_kind": (spec.get("model") or {}).get("kind"),
        "optimizer": _name(spec.get("optimizer")), "loss": _name(spec.get("loss")),
        "implementation": spec.get("implementation", "catalog"),  # specs from before the field are catalog runs
    }


def _dataset_fields(dataset: dict | None) -> dict:
    if not isinstance(dataset, dict):
        return {}
    split = dataset.get("split") or {}
    return {
        "dataset": dataset.get("name"), "dataset_sha256_json": _json(dataset.get("sha256")),
        "split_train": _number(split.get("train"), int), "split_validation": _number(split.get("validation"), int),
        "split_test": _number(split.get("test"), int),
    }


def _provenance(environment: dict | None) -> dict:
    if not isinstance(environment, dict):
        return {}
    gpu = environment.get("gpu")
    return {
        "python": environment.get("python"), "platform": environment.get("platform"), "cpu": environment.get("cpu"),
        "cpu_count": _number(environment.get("cpu_count"), int), "gpu": gpu if gpu is None or isinstance(gpu, str) else _json(gpu),
        "packages_json": _json(environment.get("packages")), "project_commit": environment.get("project_commit"),
    }


def _finite(value) -> float | None:
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _history(outcome: dict) -> list[dict]:
    return [record for record in outcome.get("history") or [] if isinstance(record, dict)]


def final_val_accuracy(outcome: dict) -> float | None:
    """The last epoch's validation accuracy (the model that was tested); None when that epoch has none or a
    non-finite one (diverged). The meaning of the column since schema version 2 (see schema.SCHEMA_VERSION)."""
    history = _history(outcome)
    return _finite(history[-1].get("val_accuracy")) if history else None


def last_val_not_finite(outcome: dict) -> bool:
    """The last epoch has a validation accuracy, and it is not finite (NaN or infinite: the weights diverged).
    final_val_accuracy is None for it, as for a missing one; this tells the two apart."""
    history = _history(outcome)
    last = history[-1].get("val_accuracy") if history else None
    return _number(last) is not None and not math.isfinite(last)


def _outcome_fields(outcome: dict) -> dict:
    """Status, metrics and versions of one backend. Best validation accuracy: the first epoch reaching the maximum;
    final: final_val_accuracy."""
    metrics = outcome.get("metrics") or {}
    history = _history(outcome)
    validation = [(record["val_accuracy"], record.get("epoch", i + 1)) for i, record in enumerate(history)
                  if _finite(record.get("val_accuracy")) is not None]
    best = max(validation, key=lambda pair: pair[0]) if validation else (None, None)
    return {
        "status": outcome["status"], "reason": outcome.get("reason") or None,
        "test_accuracy": _number(metrics.get("test_accuracy")), "test_loss": _number(metrics.get("test_loss")),
        "best_val_accuracy": _number(best[0]), "best_val_epoch": _number(best[1], int),
        "final_val_accuracy": final_val_accuracy(outcome), "epochs_run": len(history),
        "train_time_s": _number(metrics.get("train_time_s")), "samples_per_s": _number(metrics.get("samples_per_s")),
        "steady_samples_per_s": _number(metrics.get("steady_samples_per_s")),
        "parameter_count": _number(outcome.get("parameter_count"), int),
        "versions_json": _json(outcome.get("versions"), ordered=True),
        "settings_json": _json(outcome.get("settings"), ordered=True),
        "load_json": _json(outcome.get("load"), ordered=True),
    }


def _results_rows(data: dict) -> list[dict]:
    sweep = data.get("sweep") or {}
    shared = {"sweep": sweep.get("name"), "cell_key": sweep.get("key"), "factors_json": _json(sweep.get("factors"), ordered=True),
              "initialisation": data.get("initialisation")}
    return [{**shared, "backend": name, **_outcome_fields(outcome)} for name, outcome in data["backends"].items()]


def _verify_rows(data: dict) -> list[dict]:
    shared = {}
    if "matrix" in data:
        shared = {"spec_name": data.get("base"), "dtype": matrix_dtype(data)}
    return [{**shared, "backend": backend, "status": parity.status, "reason": parity.reason or None,
             "parity_passed": int(parity.passed), "parity_json": _json(parity.figures)}
            for backend, parity in backend_parity(data).items()]


def document_rows(document: RunDocument, run_id: str, run_dir: Path) -> list[dict]:
    """One row per backend: the run's shared columns, then that backend's own; absent values are None."""
    data = document.data
    shared = {
        "run_id": run_id, "run_dir": str(run_dir), "kind": document.kind, "created": _created(data, run_dir),
        "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": _command(data.get("command")),
        **_spec_fields(data.get("spec"), data.get("spec_hash")), **_dataset_fields(data.get("dataset")),
        **_provenance(data.get("environment")),
    }
    own = _verify_rows(data) if document.kind == "verify" else _results_rows(data)
    return [{column: {**shared, **row}.get(column) for column in COLUMNS} for row in own]


BENCH_FIGURES = ("harness_samples_per_s", "reference_samples_per_s", "ratio_median", "ratio_min", "ratio_max", "gflops",
                 "reference_gflops", "gemm_gflops", "gemm_fraction")
BENCH_COUNTS = ("forward_flops_per_sample", "train_flops_per_sample", "samples_per_chunk", "steps_per_chunk")


def bench_rows(document: RunDocument, bench_id: str, bench_dir: Path) -> list[dict]:
    """One row per preset and backend of a bench.json: its figures as written, the spec, settings and machine."""
    data = document.data
    specs, steps, machine = data.get("specs") or {}, data.get("steps") or {}, data.get("machine") or {}
    shared = {
        "bench_id": bench_id, "bench_dir": str(bench_dir), "created": data.get("created"),
        "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": _command(data.get("command")),
        "dataset": data.get("dataset"), "threads": _number(data.get("threads"), int), "pairs": _number(data.get("pairs"), int),
        "gemm_size": _number(data.get("gemm_size"), int), "flop_convention": data.get("flop_convention"),
        "cpu_count": _number(machine.get("cpu_count"), int), "platform": machine.get("platform"),
        "processor": machine.get("processor") or None,
    }
    rows = []
    for preset, entries in data["results"].items():
        spec = specs.get(preset) if isinstance(specs.get(preset), dict) else None
        for backend, entry in entries.items():
            row = {**shared, "preset": preset, "backend": backend, "spec_json": _json(spec),
                   "spec_hash": _spec_hash(spec) if spec else None, "dtype": (spec or {}).get("dtype"),
                   "status": entry["status"], "reason": entry.get("reason") or None,
                   **{name: _number(entry.get(name)) for name in BENCH_FIGURES},
                   **{name: _number(entry.get(name), int) for name in BENCH_COUNTS},
                   "ratios_json": _json(entry.get("ratios"), ordered=True),
                   "reference": entry.get("reference"), "reference_skipped": entry.get("reference_skipped"),
                   "reference_failed": entry.get("reference_failed"),
                   "versions_json": _json(entry.get("versions") or None, ordered=True),
                   "load_json": _json(entry.get("load"), ordered=True)}
            if row["steps_per_chunk"] is None:
                row["steps_per_chunk"] = _number(steps.get(preset), int)
            rows.append({column: row.get(column) for column in BENCH_COLUMNS})
    return rows
