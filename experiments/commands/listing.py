"""`mnist-parity list`: presets, datasets, backends, the catalog support matrix per backend, and the known
differences between the frameworks' built-ins and the catalog."""

from rich.console import Console
from rich.table import Table

from backends import BACKENDS
from experiments.data import describe_datasets
from experiments.environment import package_version
from experiments.spec import load_spec, preset_names
from experiments.support import CATEGORIES, support_matrix

FRAMEWORK_PACKAGES = {"torch": ["torch"], "keras": ["keras", "tensorflow"], "jax": ["jax", "jaxlib", "flax", "optax"], "numpy": ["numpy"]}


def _presets() -> Table:
    table = Table(title="presets")
    for column in ("name", "model", "optimizer", "epochs", "description"):
        table.add_column(column)
    for name in preset_names():
        spec = load_spec(name)
        table.add_row(name, spec.model.kind, spec.optimizer.name, str(spec.training.epochs), spec.description)
    return table


def _datasets() -> Table:
    rows = describe_datasets()
    table = Table(title="datasets")
    columns = list(rows[0]) if rows else ["name"]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    return table


def _backends() -> Table:
    table = Table(title="backends")
    table.add_column("name")
    table.add_column("installed packages")
    for name in BACKENDS:
        versions = [f"{p} {package_version(p)}" if package_version(p) else f"{p} MISSING" for p in FRAMEWORK_PACKAGES[name]]
        table.add_row(name, ", ".join(versions))
    return table


def _matrix(category: str) -> Table:
    table = Table(title=f"{category.replace('_', ' ')}: support per backend")
    table.add_column("name")
    for backend in BACKENDS:
        table.add_column(backend, justify="center")
    for row in support_matrix(category):
        table.add_row(row["name"], *("yes" if row[b] else "[red]no[/red]" for b in BACKENDS))
    return table


def _sweeps() -> Table:
    from experiments.sweep import expand_cells, load_sweep, sweep_names

    table = Table(title="sweeps")
    for column in ("name", "base", "grid", "cells", "description"):
        table.add_column(column)
    for name in sweep_names():
        sweep = load_sweep(name)
        grid = "; ".join(f"{key}: {len(values)}" for key, values in sweep.grid.items()) or "-"
        table.add_row(name, sweep.base, grid, str(len(expand_cells(sweep))), sweep.description)
    return table


def _differences() -> Table:
    from experiments.catalog.differences import DIFFERENCES

    table = Table(title="differences: where a framework's own built-in is not the catalog's formula (verify --native)")
    for column in ("id", "component", "entries", "size measured here", "built-in", "differs by", "shows at", "source"):
        table.add_column(column, overflow="fold")
    for d in DIFFERENCES:
        sizes = ", ".join(f"{framework} {size:.1e}" for framework, size in d.present.items())
        table.add_row(d.id, d.component, ", ".join(d.entries) or "all", f"{sizes} ({d.probe})", d.builtin, d.differs,
                      ", ".join(d.levels), d.source)
    return table


def list_command(what: str, console: Console) -> int:
    sections = {"presets": _presets, "sweeps": _sweeps, "datasets": _datasets, "backends": _backends,
                "differences": _differences}
    sections.update({category: (lambda c=category: _matrix(c)) for category in CATEGORIES})
    for name, make in sections.items():
        if what in ("all", name):
            console.print(make())
    return 0
