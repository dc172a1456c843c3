"""Write a run's results.json and per-epoch CSV atomically, and build its side-by-side table."""

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from experiments.environment import environment
from experiments.runner import RunResult

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
HISTORY_FILE = "history.csv"
SAME_INIT = "same NumPy draw for every backend"  # "initialisation" of a run made with --same-init
NAME_LIMIT = 64  # characters of the spec name kept in a folder name
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def folder_name(name: str, fallback: str = "run", limit: int = NAME_LIMIT) -> str:
    """A name as one safe path component: letters, digits, '_', '.' and '-' only (anything else, '/', '\\' and NUL
    included, becomes '-'), no run of dots, no leading or trailing dot or dash, at most `limit` characters; `fallback`
    when nothing is left. Spec names are free text (a TOML file someone shares may hold anything), folder names are not."""
    safe = re.sub(r"\.{2,}", ".", _UNSAFE.sub("-", name)).strip(".-")[:limit].rstrip(".-")
    return safe or fallback


def _creation_mode() -> int:
    """0o666 less the process umask: what open() would give a new file (mkstemp always gives 0o600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to path through a temporary file in the same directory and an atomic rename; the file gets
    the permissions of a newly created file (umask applied)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, _creation_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_dir(parent: Path, spec_name: str, spec_hash: str) -> Path:
    """A fresh directory `<parent>/<UTC time>-<folder_name(spec name)>-<hash>`, always directly inside parent;
    never reuses an existing one."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{stamp}-{folder_name(spec_name)}-{spec_hash[:6]}"
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def _backend_entry(outcome: dict, load: dict | None) -> dict:
    """A backend's outcome, with "load" (experiments.load.LoadMeter.summary: the cores other processes kept busy
    while it trained) when it was measured; documents from before the field, and backends never started, have none."""
    return outcome if load is None else {**outcome, "load": load}


def results_document(result: RunResult, command: list[str], extra: dict | None = None) -> dict:
    """The JSON document of a run: spec, dataset record, environment, and every backend's outcome
    (extra: more top-level keys, e.g. a sweep cell's {"sweep": {name, key, factors}})."""
    return {
        "schema": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "spec": result.spec.to_dict(),
        "spec_hash": result.spec.spec_hash(),
        "dataset": {**result.dataset.record.to_dict(), "split": result.sizes},
        "initialisation": SAME_INIT if result.same_init else "each framework's own random stream",
        "environment": environment(),
        "backends": {outcome.backend: _backend_entry(outcome.to_dict(), result.loads.get(outcome.backend))
                     for outcome in result.outcomes},
        **(extra or {}),
    }


def history_frame(result: RunResult) -> pd.DataFrame:
    """One row per backend and epoch."""
    rows = [{"backend": o.backend, **record} for o in result.outcomes for record in o.history]
    return pd.DataFrame(rows)


def summary_frame(result: RunResult) -> pd.DataFrame:
    """The side-by-side table: one row per backend; load: the cores other processes kept busy while it trained (mean)."""
    rows = []
    for o in result.outcomes:
        m = o.metrics
        rows.append({
            "backend": o.backend,
            "status": o.status if o.status == "ok" else f"FAILED: {o.reason}",
            "test_accuracy": m.get("test_accuracy"),
            "test_loss": m.get("test_loss"),
            "train_time_s": m.get("train_time_s"),
            "samples_per_s": m.get("steady_samples_per_s"),
            "parameters": o.parameter_count,
            "framework": o.framework_version,
            "load": (result.loads.get(o.backend) or {}).get("mean"),
        })
    return pd.DataFrame(rows)


def write_results(result: RunResult, run_dir: Path, command: list[str], extra: dict | None = None) -> Path:
    """Write results.json (last: its presence means the run is complete) and history.csv into run_dir; returns the JSON path."""
    history_text = history_frame(result).to_csv(index=False)
    atomic_write_text(run_dir / "history.csv", history_text)
    path = run_dir / "results.json"
    atomic_write_text(path, json.dumps(results_document(result, command, extra), indent=2, default=float) + "\n")
    return path
