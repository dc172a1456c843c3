"""Expand a sweep into cells: one resolved spec and one backend each, keyed by the spec's hash and the backend."""

import itertools
from dataclasses import asdict, dataclass

from experiments.errors import SpecError
from experiments.spec import load_spec
from experiments.spec.loading import parse_override, toml_value
from experiments.sweep.definition import SweepDefinition


@dataclass(frozen=True)
class Cell:
    """One task of a sweep, all plain data: key = `<spec hash>-<backend>`, factors = the grid labels it takes."""

    key: str
    backend: str
    factors: dict
    overrides: list[str]
    spec: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _lists_under(table, path: list) -> int:
    node = table
    for part in path:
        node = node[part]
    if not isinstance(node, list):
        raise KeyError("not a list")
    return len(node)


def expand_key(key: str, base: dict) -> list[str]:
    """`model.hidden[*].activation` -> one key per element of model.hidden in the base spec (no [*]: the key)."""
    if "[*]" not in key:
        return [key]
    head, _, tail = key.partition("[*]")
    try:
        path, _ = parse_override(f"{head}=0")
        count = _lists_under(base, path)
    except (KeyError, IndexError, TypeError, SpecError):
        raise SpecError(f"sweep key {key!r}: {head} is not a list in the base spec") from None
    return [k for i in range(count) for k in expand_key(f"{head}[{i}]{tail}", base)]


def _overrides(fields: dict, base: dict) -> list[str]:
    return [f"{expanded}={toml_value(value)}" for key, value in fields.items() for expanded in expand_key(key, base)]


def expand_cells(sweep: SweepDefinition) -> list[Cell]:
    """Every combination of the grid, seed and backend, validated now (a bad value fails before anything runs).

    Two combinations that resolve to the same spec become one cell (the first one's labels).
    """
    fixed = _overrides(sweep.set, load_spec(sweep.base_path()).to_dict())
    base = load_spec(sweep.base_path(), fixed).to_dict()  # grid keys with [*] expand against the base as set
    seeds = sweep.seeds if sweep.seeds is not None else [None]
    axes = list(sweep.grid.items())
    cells: dict[str, Cell] = {}
    for seed in seeds:
        for choice in itertools.product(*(list(values.items()) for _, values in axes)):
            fields = {key: value for (key, _), (_, value) in zip(axes, choice)}
            overrides = fixed + _overrides(fields, base) + ([] if seed is None else [f"seed={seed}"])
            try:
                spec = load_spec(sweep.base_path(), overrides)
            except SpecError as error:
                labels = ", ".join(f"{key}={label}" for (key, _), (label, _) in zip(axes, choice))
                raise SpecError(f"sweep {sweep.name}, cell {labels or '(no grid)'}: {error}") from None
            labels = {key: label for (key, _), (label, _) in zip(axes, choice)}
            for backend in sweep.backends:
                key = f"{spec.spec_hash()}-{backend}"
                factors = {**labels, "seed": spec.seed, "backend": backend}
                cells.setdefault(key, Cell(key, backend, factors, overrides, spec.to_dict()))
    return list(cells.values())
