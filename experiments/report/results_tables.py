"""The side-by-side results table (one row per run and backend) and the sanity gate table."""

from typing import Any, Callable

import pandas as pd

from experiments.data.split import validation_count
from experiments.report.gates import SUSPECT, Verdict, gate
from experiments.report.inputs import Inputs, Verify, records
from experiments.report.table import Table, integer, percent, points, rate, seconds

NO_VALIDATION = "no validation accuracy"  # finished, test accuracy kept, but the last epoch recorded no validation accuracy

# The functions below read a store row (inputs.records): its columns, plus the report's label, diverged and usable.


def backend_gate(row: dict) -> Verdict:
    return gate(row["spec_json"] or {}, row["split_train"], row["test_accuracy"], row["status"] == "ok")


NOT_STARTED = "the run stopped before this backend started"


def status_word(status: str) -> str:
    """How a backend that did not end ok is named: INTERRUPTED (its run was stopped while it trained), PENDING (its
    run stopped before it started), else FAILED."""
    return status.upper() if status in ("interrupted", "pending") else "FAILED"


def backend_status(row: dict) -> str:
    if row["status"] != "ok":
        return f"{status_word(row['status'])}: {row['reason'] or NOT_STARTED}"
    if row["diverged"]:
        return "diverged: finished without a finite accuracy"
    if row.get("val_missing"):
        return NO_VALIDATION
    return "ok"


def results_table(title: str, results: pd.DataFrame, fields: list[str] | None = None) -> Table:
    """Side by side: one row per run and backend (the store's rows); for a sweep's cells (fields given) the study
    fields and seed first."""
    rows = []
    for result in records(results):
        factors = result["factors_json"] or {}
        row = {name: factors.get(name) for name in fields or []}
        if fields is not None:
            row["seed"] = result["seed"]
        row.update({
            "backend": result["backend"],
            "implementation": result.get("implementation") or "catalog",
            "status": backend_status(result),
            "val acc (%)": percent(result["final_val_accuracy"]),
            "test acc (%)": percent(result["test_accuracy"]),
            "test loss": result["test_loss"],
            "train time (s)": result["train_time_s"],
            "samples/s": result["steady_samples_per_s"],
            "parameters": result["parameter_count"],
            "framework": " ".join(f"{k} {v}" for k, v in (result["versions_json"] or {}).items()),
            "gate": backend_gate(result).status,
        })
        rows.append(row)
    formats = {"val acc (%)": points, "test acc (%)": points, "test loss": lambda v: f"{v:.4f}",
               "train time (s)": seconds, "samples/s": rate, "parameters": integer}
    note = "val acc: the last epoch's validation accuracy (the model that was tested); samples/s: steady throughput after the first epoch."
    frame = pd.DataFrame(rows)
    if "implementation" in frame and (frame["implementation"] == "native").any():
        note += " implementation: catalog (the suite's formulas) or native (each framework's own built-ins)."
    else:  # every row is the catalog's: the column would say nothing
        frame = frame.drop(columns="implementation", errors="ignore")
    return Table(title, frame, formats, note)


def gate_table(inputs: Inputs) -> Table:
    """Every run and backend with its gate verdict, flagged ones first; level-5 means are gated too."""
    rows = []
    for result in records(inputs.results):
        rows.append(_gate_row(result["label"], result["backend"], result["spec_json"] or {}, result["split_train"],
                              backend_gate(result), percent(result["test_accuracy"])))
    for verify in inputs.verifies:
        level5 = verify.document.levels.get("5")
        if level5 is None or verify.document.spec is None:
            continue
        spec = verify.document.spec.model_dump(mode="json")
        train = _level5_train_digits(verify)
        for backend in level5.backends:
            verdict = gate(spec, train, backend.mean / 100.0)
            rows.append(_gate_row(f"{verify.label} (level 5 mean of {len(backend.accuracies)} seeds)", backend.backend,
                                  spec, train, verdict, backend.mean))
    frame = pd.DataFrame(rows, columns=["run", "backend", "model", "train digits", "epochs", "test acc (%)",
                                        "threshold (%)", "verdict", "reason"])
    frame = frame.sort_values("verdict", key=lambda s: s != SUSPECT, kind="stable").reset_index(drop=True)
    return Table("Sanity gate per run and backend", frame, gate_formats())


def gate_formats() -> dict[str, Callable[[Any], str]]:
    return {"test acc (%)": points, "threshold (%)": lambda v: f"{v:.1f}", "train digits": integer}


def _gate_row(label, backend, spec, train, verdict: Verdict, accuracy) -> dict:
    return {"run": label, "backend": backend, "model": spec.get("model", {}).get("kind"), "train digits": train,
            "epochs": spec.get("training", {}).get("epochs"), "test acc (%)": accuracy, "threshold (%)": verdict.threshold,
            "verdict": verdict.status, "reason": verdict.reason}


def _level5_train_digits(verify: Verify) -> int | None:
    """Level 5 records the dataset's sizes, not the split: the training digits left after the validation hold-out."""
    dataset, spec = verify.document.dataset, verify.document.spec
    if dataset is None or "train" not in dataset.sizes:
        return None
    n = dataset.sizes["train"]
    return n - validation_count(n, spec.data.get("validation_fraction", 0.0))
