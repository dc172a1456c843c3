"""A verify document seen from one backend: did its probe run, did its comparisons pass, and the figures that involve it.

verify.json comes in two shapes (experiments/commands/verify.py): a single spec, {"spec",
"dataset", "levels": {"1".."4": level, "5": level 5}, "passed"}, and a matrix, {"base",
"dataset", "matrix": {cell: {"model", "axis", "entry", "overrides", "levels", "passed"}}, "passed"}.
A numeric level is {"name", "summary": [one line per pair], "rows", "failures": {backend:
reason}, "passed"}; level 5 is run_level5's result, whose "failures" (one line each) are also keyed
by backend in "failed_backends" ({backend: [line]}; older documents lack it). The store keeps the
summary lines (worst error, tolerance, first failure), not the per-quantity rows, which stay in
verify.json. The numpy oracle is a backend like any other here: it gets a row holding its
comparisons with every backend.
"""

from dataclasses import dataclass

LEVEL5 = "5"


@dataclass(frozen=True)
class BackendParity:
    """One backend's view of a verify run: status "ok" unless its probe or a level-5 training failed."""

    status: str
    reason: str
    passed: bool
    figures: dict


def _involves(line: dict, backend: str) -> bool:
    return backend in (line.get("first"), line.get("second"))


def _level5_owner(failure: str) -> str:
    """The backend of a level-5 failure line, f"{backend} seed {seed}: {reason}" (run_level5); only for older
    verify.json files, written before level 5 recorded "failed_backends"."""
    return failure.partition(" seed ")[0]


def _level5_failures(level: dict) -> dict[str, list[str]]:
    """{backend: its level-5 failure lines}, in order of first failure: from "failed_backends" when recorded,
    else recovered from the "failures" lines."""
    if "failed_backends" in level:
        return {backend: list(lines) for backend, lines in level["failed_backends"].items()}
    owned: dict[str, list[str]] = {}
    for failure in level.get("failures", []):
        owned.setdefault(_level5_owner(failure), []).append(failure)
    return owned


def _numeric_level(level: dict, backend: str) -> dict:
    lines = [line for line in level.get("summary", []) if _involves(line, backend)]
    view = {"name": level.get("name"), "passed": backend not in level.get("failures", {}) and all(line["passed"] for line in lines),
            "lines": lines}
    if "growth" in level:
        view["growth"] = {pair: steps for pair, steps in level["growth"].items() if backend in pair.split(" vs ")}
    if "rounding_floor" in level:  # level 4 in float32: the oracle's own float32-vs-float64 floor, shared by every pair
        view["rounding_floor"] = level["rounding_floor"]
    return view


def _level5(level: dict, backend: str) -> dict:
    pairs = [pair for pair in level.get("pairs", []) if _involves(pair, backend)]
    failures = _level5_failures(level).get(backend, [])
    return {
        "name": "statistical", "seeds": level.get("seeds"), "margin_points": level.get("margin_points"),
        "accuracy": next((row for row in level.get("backends", []) if row.get("backend") == backend), None),
        "pairs": pairs, "failures": failures,
        "passed": not failures and all(pair.get("verdict") != "different" for pair in pairs),
    }


def _backends_of(levels: dict) -> list[str]:
    """Every backend a set of levels mentions, in order of first mention."""
    names = []
    for number, level in levels.items():
        if number == LEVEL5:
            names += [row.get("backend") for row in level.get("backends", [])]
            names += [name for pair in level.get("pairs", []) for name in (pair.get("first"), pair.get("second"))]
            names += list(_level5_failures(level))
        else:
            names += [name for line in level.get("summary", []) for name in (line.get("first"), line.get("second"))]
            names += list(level.get("failures", {}))
    return [name for name in dict.fromkeys(names) if isinstance(name, str) and name]


def _reasons(levels: dict, backend: str) -> list[str]:
    reasons = []
    for number, level in levels.items():
        if number == LEVEL5:
            reasons += _level5_failures(level).get(backend, [])
        elif backend in level.get("failures", {}):
            reasons.append(level["failures"][backend])
    return list(dict.fromkeys(reasons))


def _levels_view(levels: dict, backend: str) -> dict:
    return {number: _level5(level, backend) if number == LEVEL5 else _numeric_level(level, backend) for number, level in levels.items()}


def _single(document: dict) -> dict[str, BackendParity]:
    levels = document["levels"]
    out = {}
    for backend in _backends_of(levels):
        view = _levels_view(levels, backend)
        reasons = _reasons(levels, backend)
        out[backend] = BackendParity("failed" if reasons else "ok", "; ".join(reasons),
                                     not reasons and all(level["passed"] for level in view.values()), {"levels": view})
    return out


def _matrix(document: dict) -> dict[str, BackendParity]:
    cells = document["matrix"]
    backends = list(dict.fromkeys(name for cell in cells.values() for name in _backends_of(cell.get("levels", {}))))
    out = {}
    for backend in backends:
        views, reasons = {}, []
        for cell_id, cell in cells.items():
            levels = _levels_view(cell.get("levels", {}), backend)
            reasons += _reasons(cell.get("levels", {}), backend)
            views[cell_id] = {**{key: cell.get(key) for key in ("model", "axis", "entry")},
                              "passed": all(level["passed"] for level in levels.values()), "levels": levels}
        reasons = list(dict.fromkeys(reasons))
        out[backend] = BackendParity("failed" if reasons else "ok", "; ".join(reasons),
                                     not reasons and all(cell["passed"] for cell in views.values()), {"matrix": views})
    return out


def backend_parity(document: dict) -> dict[str, BackendParity]:
    """{backend: its parity} for a single-spec or matrix verify document."""
    return _matrix(document) if "matrix" in document else _single(document)


def matrix_dtype(document: dict) -> str | None:
    """A matrix document's dtype: its top-level `dtype`, or for documents written before it was recorded,
    the cells' `dtype="..."` overrides (experiments.verify.matrix.matrix_cells; the last one wins, as in --set)."""
    if document.get("dtype"):
        return document["dtype"]
    for cell in document.get("matrix", {}).values():
        values = [item.split("=", 1)[1] for item in cell.get("overrides", []) if item.replace(" ", "").startswith("dtype=")]
        if values:
            return values[-1].strip().strip('"')
    return None
