"""Read a run directory's document (results.json or verify.json) and check it has the shape the store needs."""

import json
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import UserError

RESULTS_FILENAME = "results.json"  # written by `run` and by each sweep cell
VERIFY_FILENAME = "verify.json"  # written by `verify` and `verify --matrix`


@dataclass(frozen=True)
class RunDocument:
    """A run directory's parsed document; kind is "run", "sweep-cell" or "verify"."""

    kind: str
    path: Path
    data: dict


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); the run may have been interrupted") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read it ({error})") from None
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


def read_run_document(run_dir: Path) -> RunDocument:
    """The run directory's results.json (a run or sweep cell) or verify.json; UserError when neither is readable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    results, verify = run_dir / RESULTS_FILENAME, run_dir / VERIFY_FILENAME
    if results.exists() and verify.exists():
        raise UserError(f"{run_dir}: holds both {RESULTS_FILENAME} and {VERIFY_FILENAME}; a run directory holds one")
    if results.exists():
        data = _load_json(results)
        _check_results(data, results)
        return RunDocument("sweep-cell" if "sweep" in data else "run", results, data)
    if verify.exists():
        data = _load_json(verify)
        _check_verify(data, verify)
        return RunDocument("verify", verify, data)
    raise UserError(f"{run_dir}: no {RESULTS_FILENAME} or {VERIFY_FILENAME}; not a run directory (or its run did not finish)")
