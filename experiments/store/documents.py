"""Read a run directory's document (results.json or verify.json) and check it has the shape the store needs."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.errors import UserError

RESULTS_FILENAME = "results.json"  # written by `run` and by each sweep cell
VERIFY_FILENAME = "verify.json"  # written by `verify` and `verify --matrix`


@dataclass(frozen=True)
class RunDocument:
    """A run directory's parsed document; kind is "run", "sweep-cell" or "verify"."""

    kind: str
    path: Path
    data: dict


def load_json(path: Path) -> Any:
    """The file's JSON value; a one-line UserError when it cannot be read or is not JSON (a truncated write)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                        "is the file truncated? (the run may have been interrupted)") from None


def _load_object(path: Path) -> dict:
    data = load_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: holds a JSON {type(data).__name__}, not an object; not a run document")
    return data


def _require(data: dict, key: str, kind: type, path: Path) -> None:
    if not isinstance(data.get(key), kind):
        found = "missing" if key not in data else f"a {type(data[key]).__name__}"
        raise UserError(f"{path}: {key!r} is {found}, expected a {kind.__name__}; not a {path.name} this store can read")


def _check_results(data: dict, path: Path) -> None:
    _require(data, "spec", dict, path)
    _require(data, "backends", dict, path)
    for name, outcome in data["backends"].items():
        if not isinstance(outcome, dict) or not isinstance(outcome.get("status"), str):
            raise UserError(f"{path}: backend {name!r} has no status; not a {path.name} this store can read")
    if "sweep" in data:
        _require(data, "sweep", dict, path)
        for key in ("name", "key"):
            _require(data["sweep"], key, str, path)


def _check_verify(data: dict, path: Path) -> None:
    if "matrix" in data:
        _require(data, "matrix", dict, path)
    else:
        _require(data, "levels", dict, path)
        _require(data, "spec", dict, path)


def run_document(path: Path, data: dict) -> RunDocument:
    """The parsed document of path (a results.json or verify.json), checked; a results.json with a sweep tag is a
    sweep cell."""
    if path.name == VERIFY_FILENAME:
        _check_verify(data, path)
        return RunDocument("verify", path, data)
    _check_results(data, path)
    return RunDocument("sweep-cell" if "sweep" in data else "run", path, data)


def read_run_document(run_dir: Path) -> RunDocument:
    """The run directory's results.json (a run or sweep cell) or verify.json; UserError when neither is readable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    results, verify = run_dir / RESULTS_FILENAME, run_dir / VERIFY_FILENAME
    if results.exists() and verify.exists():
        raise UserError(f"{run_dir}: holds both {RESULTS_FILENAME} and {VERIFY_FILENAME}; a run directory holds one")
    if results.exists():
        return run_document(results, _load_object(results))
    if verify.exists():
        return run_document(verify, _load_object(verify))
    raise UserError(f"{run_dir}: no {RESULTS_FILENAME} or {VERIFY_FILENAME}; not a run directory (or its run did not finish)")
