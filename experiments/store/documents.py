"""Read a run directory's document (results.json or verify.json), or a bench folder's bench.json, and check it has the
shape and values the store needs: the one check of a document, run by `register_run` (so by `run`, `sweep` and
`verify`), by `register_bench` (so by `bench`) and by the report."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends import BACKENDS
from experiments.errors import UserError

RESULTS_FILENAME = "results.json"  # written by `run` and by each sweep cell
VERIFY_FILENAME = "verify.json"  # written by `verify` and `verify --matrix`
RESULTS_SCHEMAS = (1,)  # the results.json versions this store reads; experiments.results.SCHEMA_VERSION is the one written
BENCH_FILENAME = "bench.json"  # written by `bench` in its --out folder
BENCH_SCHEMAS = (1,)  # the bench.json versions read (experiments.bench.results.SCHEMA_VERSION); none written: version 1


@dataclass(frozen=True)
class RunDocument:
    """A run directory's parsed document; kind is "run", "sweep-cell", "verify" or "bench" (a bench folder's)."""

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


def _load_object(path: Path, what: str = "a run document") -> dict:
    data = load_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: holds a JSON {type(data).__name__}, not an object; not {what}")
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


def _check_schema_version(data: dict, path: Path, schemas: tuple[int, ...] = RESULTS_SCHEMAS) -> None:
    version = data.get("schema")
    if not (type(version) is int and version in schemas):
        found = "missing" if "schema" not in data else _shown(version)
        readable = " or ".join(map(str, schemas))
        newer = _is_number(version) and version > max(schemas)
        raise UserError(f"{path}: 'schema' is {found}; this mnist-parity reads {path.name} schema version {readable} only"
                        + ("; a newer mnist-parity wrote it: upgrade mnist-parity" if newer else ""))


def _check_numbers(record: dict, where: str, path: Path) -> None:
    for key, value in record.items():
        if value is not None and not _is_number(value):
            raise UserError(f"{path}: {where}.{key} is {_shown(value)}; it must be a number or null")


def _check_fields(record: dict, where: str, path: Path, kinds: dict[str, str]) -> None:
    """Each key of kinds that record holds is null or of its kind: "count" (an integer), "amount" (a number, not
    negative: a rate, a time, a share), "amounts" (a list of those), "text" or "object"."""
    for key, kind in kinds.items():
        value = record.get(key)
        if value is None:
            continue
        if kind == "count":
            good, expected = type(value) is int, "an integer"
        elif kind == "amount":
            good, expected = _is_number(value) and value >= 0, "a number, not negative,"
        elif kind == "amounts":
            good = isinstance(value, list) and all(_is_number(item) and item >= 0 for item in value)
            expected = "a list of numbers, none negative,"
        elif kind == "text":
            good, expected = isinstance(value, str), "a string"
        else:
            good, expected = isinstance(value, dict), "an object"
        if not good:
            raise UserError(f"{path}: {where}.{key} is {_shown(value)}; it must be {expected} or null")


LOAD_FIELDS = {"mean": "amount", "max": "amount", "cores": "count", "threads": "count", "seconds": "amount", "window": "text"}


def _check_load(load: Any, where: str, path: Path) -> None:
    """A measured load (experiments.load.LoadMeter.summary) or null."""
    if load is None:
        return
    if not isinstance(load, dict):
        raise UserError(f"{path}: {where} is {_shown(load)}; it must be an object (mean, max, cores, ...) or null")
    _check_fields(load, where, path, LOAD_FIELDS)


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
    if "load" in outcome:
        _check_load(outcome["load"], f"{where}.load", path)
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


# bench.json: per preset and backend, experiments.bench.results.BackendBench.summary()
BENCH_ENTRY_FIELDS = {
    **dict.fromkeys(("harness_samples_per_s", "reference_samples_per_s", "ratio_median", "ratio_min", "ratio_max", "gflops",
                     "reference_gflops", "gemm_gflops", "gemm_fraction"), "amount"),
    **dict.fromkeys(("forward_flops_per_sample", "train_flops_per_sample", "samples_per_chunk", "steps_per_chunk"), "count"),
    **dict.fromkeys(("ratios", "harness_seconds", "reference_seconds", "gemm_samples"), "amounts"),
    **dict.fromkeys(("reason", "reference", "reference_skipped", "reference_failed", "log"), "text"),
    "versions": "object", "warmup_seconds": "object",
}
BENCH_FIELDS = {"threads": "count", "pairs": "count", "gemm_size": "count", "created": "text", "dataset": "text",
                "flop_convention": "text", "steps": "object", "specs": "object", "machine": "object"}


def _check_bench(data: dict, path: Path) -> None:
    """bench.json: its version (a bench.json from before the field is version 1), the command's settings, and every
    preset's entry per known backend with a status and numbers where the table and the store read numbers."""
    if "schema" in data:
        _check_schema_version(data, path, BENCH_SCHEMAS)
    _require(data, "results", dict, path)
    _check_fields(data, "(top level)", path, BENCH_FIELDS)
    for preset, entries in data["results"].items():
        if not isinstance(entries, dict):
            raise UserError(f"{path}: results.{preset} is {_shown(entries)}; it must be an object of backends")
        for name, entry in entries.items():
            where = f"results.{preset}.{name}"
            if name not in BACKENDS:
                raise UserError(f"{path}: backend {_shown(name)} is not one of {', '.join(BACKENDS)}; not a {path.name} "
                                "this mnist-parity wrote")
            if not isinstance(entry, dict) or not isinstance(entry.get("status"), str):
                raise UserError(f"{path}: {where} has no status; not a {path.name} this mnist-parity reads")
            _check_fields(entry, where, path, BENCH_ENTRY_FIELDS)
            _check_load(entry.get("load"), f"{where}.load", path)


def bench_document(path: Path, data: dict) -> RunDocument:
    """The parsed bench.json at path, checked."""
    _check_bench(data, path)
    return RunDocument("bench", path, data)


def read_bench_document(bench_dir: Path) -> RunDocument:
    """The bench folder's bench.json, checked; UserError (one line) when it is missing, unreadable or malformed."""
    bench_dir = Path(bench_dir)
    if not bench_dir.is_dir():
        raise UserError(f"{bench_dir}: no such bench folder")
    path = bench_dir / BENCH_FILENAME
    if not path.is_file():
        raise UserError(f"{bench_dir}: no {BENCH_FILENAME}; not a bench folder (or its bench did not finish)")
    return bench_document(path, _load_object(path, f"a {BENCH_FILENAME}"))


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
