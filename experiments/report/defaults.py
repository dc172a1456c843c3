"""The framework defaults the suite neutralised, for the catalog entries and layers the reported runs use.

The data comes from experiments.commands.defaults (what `mnist-parity defaults` shows): the
suite's pinned values from suite_values() and each framework's own defaults from
framework_values(backend), read live from the installed framework in a subprocess.
"""

from typing import Callable

import pandas as pd

from experiments.commands.defaults import FRAMEWORK_BACKENDS, framework_values, suite_values
from experiments.report.tables import Table

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


def neutralised_defaults(specs: list[dict], backends: list[str], read: Reader = framework_values) -> tuple[Table | None, list[str]]:
    """Rows where the frameworks' own defaults disagree, for the entries the specs use, beside the suite's value.

    Args:
        specs: resolved specs (results.json "spec").
        backends: the backends in the report; only frameworks among them are read.
        read: framework_values or a stand-in with its signature.

    Returns:
        The table (None when no framework backend is reported) and one line per framework that could not be read.
    """
    frameworks = [b for b in FRAMEWORK_BACKENDS if b in backends]
    if not frameworks or not specs:
        return None, []
    entries = set().union(*(used_entries(spec) for spec in specs))
    suite = {(r.entry, r.parameter): r.suite for r in suite_values().itertuples()}
    cells: dict[tuple[str, str], dict[str, list[tuple[str, str]]]] = {}
    problems = []
    for backend in frameworks:
        rows, problem = read(backend)
        if problem:
            problems.append(problem)
        for row in rows.itertuples():
            if row.entry in entries:
                cells.setdefault((row.entry, row.parameter), {}).setdefault(backend, []).append((repr(row.value), row.source))
    table_rows = []
    for (entry, parameter), per in sorted(cells.items()):
        distinct = {value for found in per.values() for value, _ in found}
        if len(distinct) < 2:
            continue
        row = {"entry": entry, "parameter": parameter, "suite": suite.get((entry, parameter), "-")}
        for backend in frameworks:
            row[backend] = "; ".join(f"{value} ({source})" for value, source in per.get(backend, [])) or None
        table_rows.append(row)
    note = ("Each framework's own default, read now from the installed frameworks as `mnist-parity defaults` reads them, "
            "for the entries and layers these runs use; a row is listed when the frameworks disagree. The suite column is "
            "the value the suite pins ('from spec: required': every spec must choose it), so no run relied on these defaults. "
            "The framework versions the runs used are in the hyperparameter tables.")
    frame = pd.DataFrame(table_rows, columns=["entry", "parameter", "suite", *frameworks])
    return Table("Framework defaults the suite neutralised", frame, {}, note), problems
