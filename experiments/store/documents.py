"""Read a run directory's document (results.json or verify.json) and check it has the shape and values the store needs:
the one check of a document, run by `register_run` (so by `run`, `sweep` and `verify`) and by the report."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends import BACKENDS
from experiments.errors import UserError

RESULTS_FILENAME = "results.json"  # written by `run` and by each sweep cell
VERIFY_FILENAME = "verify.json"  # written by `verify` and `verify --matrix`
RESULTS_SCHEMAS = (1,)  # the results.json versions this store reads; experiments.results.SCHEMA_VERSION is the one written


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


JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number", bool: "true or false",
              type(None): "null"}


def _require(data: dict, key: str, kind: type, path: Path) -> None:
    if not isinstance(data.get(key), kind):
        found = "missing" if key not in data else JSON_NAMES.get(type(data[key]), type(data[key]).__name__)
        raise UserError(f"{path}: {key!r} is {found}, expected {JSON_NAMES[kind]}; not a {path.name} this mnist-parity reads")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_number(value: Any) -> bool:
    """A JSON number (NaN and infinities included: a diverged run writes them); true and false are not numbers."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_schema_version(data: dict, path: Path) -> None:
    version = data.get("schema")
    if not (type(version) is int and version in RESULTS_SCHEMAS):
        found = "missing" if "schema" not in data else _shown(version)
        readable = " or ".join(map(str, RESULTS_SCHEMAS))
        newer = _is_number(version) and version > max(RESULTS_SCHEMAS)
        raise UserError(f"{path}: 'schema' is {found}; this mnist-parity reads {path.name} schema version {readable} only"
                        + ("; a newer mnist-parity wrote it: upgrade mnist-parity" if newer else ""))


def _check_numbers(record: dict, where: str, path: Path) -> None:
    for key, value in record.items():
        if value is not None and not _is_number(value):
            raise UserError(f"{path}: {where}.{key} is {_shown(value)}; it must be a number or null")


def _check_outcome(name: str, outcome: Any, path: Path) -> None:
    """A known backend's status, and its metrics and per-epoch history as numbers, the only values they ever hold
    (names become file names when a run is resumed: only the suite's own are accepted)."""
    where = f"backends.{name}"
    if name not in BACKENDS:
        raise UserError(f"{path}: backend {_shown(name)} is not one of {', '.join(BACKENDS)}; not a {path.name} this mnist-parity wrote")
    if not isinstance(outcome, dict) or not isinstance(outcome.get("status"), str):
        raise UserError(f"{path}: backend {name!r} has no status; not a {path.name} this mnist-parity reads")
    if outcome.get("backend", name) != name:
        raise UserError(f"{path}: {where}.backend is {_shown(outcome['backend'])}; it must be {name!r}")
    count = outcome.get("parameter_count")
    if count is not None and type(count) is not int:
        raise UserError(f"{path}: {where}.parameter_count is {_shown(count)}; it must be an integer or null")
    metrics = outcome.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise UserError(f"{path}: {where}.metrics is {_shown(metrics)}; it must be an object of numbers")
        _check_numbers(metrics, f"{where}.metrics", path)
    history = outcome.get("history")
    if history is None:
        return
    if not isinstance(history, list):
        raise UserError(f"{path}: {where}.history is {_shown(history)}; it must be a list of per-epoch objects")
    for i, record in enumerate(history):
        if not isinstance(record, dict) or type(record.get("epoch")) is not int:
            raise UserError(f"{path}: {where}.history[{i}] is {_shown(record)}; each epoch must be an object with "
                            "an integer 'epoch' and numbers or null")
        _check_numbers(record, f"{where}.history[{i}]", path)


def _check_results(data: dict, path: Path) -> None:
    _check_schema_version(data, path)
    _require(data, "spec", dict, path)
    _require(data, "backends", dict, path)
    for name, outcome in data["backends"].items():
        _check_outcome(name, outcome, path)
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
