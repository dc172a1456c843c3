"""The framework defaults the suite neutralised, for the catalog entries and layers the reported runs use.

The data comes from experiments.framework_defaults (what `mnist-parity defaults` shows): the
suite's pinned values from suite_values() and each framework's own defaults from
framework_values(backend), read live from the installed framework in a subprocess.
"""

from typing import Any, Callable

import pandas as pd

from experiments.framework_defaults import FRAMEWORK_BACKENDS, framework_values, suite_values
from experiments.report.table import Table, missing

Reader = Callable[[str], tuple[pd.DataFrame, str | None]]


def used_entries(spec: dict) -> set[str]:
    """Catalog entries (activations, loss, optimizer, schedule, initialisers) and layer kinds a spec uses."""
    entries = {"spec", "dense"}

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "name" and isinstance(value, str):
                    entries.add(value)
                elif key == "batch_norm" and value:
                    entries.add("batch_norm")
                elif key == "pool" and value:
                    entries.add("max_pool")
                elif key == "dropout" and value:
                    entries.add("dropout")
                elif key == "conv" and value:
                    entries.add("conv2d")
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec.get("model", {}))
    for part in ("loss", "optimizer", "schedule"):
        walk({part: spec.get(part, {})})
    return entries


UNPINNED = "not pinned by the suite: no spec field sets it"


def suite_pins() -> dict[tuple[str, str], str]:
    """(entry, parameter) -> the value the suite pins, as `mnist-parity defaults` shows it; a pair missing here is a
    framework parameter that no spec field sets."""
    return {(r.entry, r.parameter): r.suite for r in suite_values().itertuples()}


def _shown(value: Any) -> str:
    return "None" if missing(value) else repr(value)


def same_value(value: Any) -> Any:
    """A key under which equal settings compare equal: numbers by value (0 == 0.0, 1e-07 == 1e-7, "1e-7" too),
    sequences element by element; booleans, None and other text stay as they are."""
    if isinstance(value, bool) or missing(value):
        return ("literal", repr(None if missing(value) else value))
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, str):
        try:
            return same_value(float(value.strip()))
        except ValueError:
            return ("text", value)
    if isinstance(value, (list, tuple)):
        return ("sequence", tuple(same_value(v) for v in value))
    return ("other", repr(value))


def neutralised_defaults(specs: list[dict], backends: list[str], read: Reader = framework_values) -> tuple[list[Table], list[str]]:
    """Rows where the frameworks' own defaults disagree, for the entries the specs use, beside the suite's value.

    Args:
        specs: resolved specs (results.json "spec").
        backends: the backends in the report; only frameworks among them are read.
        read: framework_values or a stand-in with its signature.

    Returns:
        The tables (none when no framework backend is reported): the parameters the suite pins, then, when
        there are any, the disagreeing parameters no spec field sets; and one line per framework that could
        not be read.
    """
    frameworks = [b for b in FRAMEWORK_BACKENDS if b in backends]
    if not frameworks or not specs:
        return [], []
    entries = set().union(*(used_entries(spec) for spec in specs))
    suite = suite_pins()
    cells: dict[tuple[str, str], dict[str, list[tuple[Any, str]]]] = {}
    problems = []
    for backend in frameworks:
        rows, problem = read(backend)
        if problem:
            problems.append(problem)
        for row in rows.itertuples():
            if row.entry in entries:
                cells.setdefault((row.entry, row.parameter), {}).setdefault(backend, []).append((row.value, row.source))
    pinned, unpinned = [], []
    for (entry, parameter), per in sorted(cells.items()):
        distinct = {same_value(value) for found in per.values() for value, _ in found}
        if len(distinct) < 2:
            continue
        value = suite.get((entry, parameter))
        row = {"entry": entry, "parameter": parameter, "suite": value if value is not None else UNPINNED}
        for backend in frameworks:
            row[backend] = "; ".join(f"{_shown(found)} ({source})" for found, source in per.get(backend, [])) or None
        (pinned if value is not None else unpinned).append(row)
    columns = ["entry", "parameter", "suite", *frameworks]
    note = ("Each framework's own default, read now from the installed frameworks as `mnist-parity defaults` reads them, "
            "for the entries and layers these runs use; a row is listed when the frameworks disagree (numbers compare by "
            "value: 0 and 0.0 agree). The suite column is the value the suite pins ('from spec: required': every spec "
            "must choose it), so no run relied on these defaults. The framework versions the runs used are in the "
            "hyperparameter tables.")
    tables = [Table("Framework defaults the suite neutralised", pd.DataFrame(pinned, columns=columns), {}, note)]
    if unpinned:
        note = ("These framework parameters have no field in the spec, so the suite does not pin them through the spec "
                "and the guarantee above does not cover them: each backend's own code decides (it may set the value "
                "itself or take its framework's default). A disagreement here is a place to check the backends.")
        tables.append(Table("Framework defaults the suite does not pin (no spec field)",
                            pd.DataFrame(unpinned, columns=columns), {}, note))
    return tables, problems
