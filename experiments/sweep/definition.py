"""A sweep file: a base spec, fixed overrides, and a grid of override values, all as data.

    name = "study-optimizers"
    base = "seed-mlp-sigmoid"            # a preset or a spec file (relative to the sweep file)
    backends = ["torch", "keras", "jax"]
    seeds = [0, 1, 2]                    # optional; default: the base spec's seed
    [set]                                # applied to every cell, like --set
    "loss.name" = "categorical_crossentropy"
    [grid]                               # every combination of these, like --set; [*] = every list element
    "model.hidden[*].activation" = ["relu", "tanh"]           # labels derived from the values
    [grid.optimizer]                                          # or a table of label = value
    sgd = { name = "sgd", learning_rate = 0.01 }
"""

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backends import BACKENDS
from experiments.errors import SpecError
from experiments.spec.errors import format_validation_error

SWEEP_DIR = Path(__file__).resolve().parent.parent / "sweeps"
SWEEP_SUFFIX = ".toml"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def sweep_names() -> list[str]:
    """Names of the sweeps shipped in experiments/sweeps."""
    return sorted(p.name[: -len(SWEEP_SUFFIX)] for p in SWEEP_DIR.glob(f"*{SWEEP_SUFFIX}"))


def value_label(value: Any) -> str:
    """A short label for a grid value: a table's name, else the value as text."""
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return value["name"]
    return str(value)


class SweepDefinition(BaseModel):
    """A validated sweep file; grid values are {label: value} in file order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    base: str
    backends: list[str] = Field(min_length=1)
    seeds: list[int] | None = None
    set: dict[str, Any] = {}
    grid: dict[str, dict[str, Any]] = {}
    source_dir: str = "."

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME_PATTERN.match(name):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (it names a folder)")
        return name

    @field_validator("backends")
    @classmethod
    def _backends(cls, backends: list[str]) -> list[str]:
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown:
            raise ValueError(f"unknown backend {', '.join(map(repr, unknown))}; allowed: {', '.join(BACKENDS)}")
        return list(dict.fromkeys(backends))

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and (not seeds or min(seeds) < 0):
            raise ValueError("must be a non-empty list of non-negative integers")
        return None if seeds is None else list(dict.fromkeys(seeds))

    @field_validator("grid", mode="before")
    @classmethod
    def _grid(cls, grid: Any) -> Any:
        if not isinstance(grid, dict):
            return grid
        labelled = {}
        for key, values in grid.items():
            if isinstance(values, list):
                labels = [value_label(v) for v in values]
                if len(set(labels)) != len(labels):
                    raise ValueError(f"{key}: two values share a label ({labels}); give a table of label = value instead")
                values = dict(zip(labels, values))
            if not isinstance(values, dict) or not values:
                raise ValueError(f"{key}: must be a non-empty list of values or a table of label = value")
            labelled[key] = values
        return labelled

    def base_path(self) -> str:
        """The base as load_spec takes it: a preset name, or a spec file relative to the sweep file."""
        if self.base.endswith(SWEEP_SUFFIX) and not Path(self.base).is_absolute():
            return str(Path(self.source_dir) / self.base)
        return self.base


def load_sweep(name_or_path: str) -> SweepDefinition:
    """A shipped sweep by name, or a sweep file by path; bad files raise SpecError with one line."""
    path = Path(name_or_path)
    if not path.is_file():
        if name_or_path in sweep_names():
            path = SWEEP_DIR / f"{name_or_path}{SWEEP_SUFFIX}"
        else:
            raise SpecError(f"sweep not found: {name_or_path!r}; give a sweep .toml file or one of: {', '.join(sweep_names())}")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"cannot read sweep file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"sweep error in {path}: not valid TOML ({error})") from None
    if "source_dir" in table:
        raise SpecError(f"sweep error in {path}: source_dir: unknown field")
    try:
        return SweepDefinition.model_validate({**table, "source_dir": str(path.resolve().parent)})
    except ValidationError as error:
        raise format_validation_error(SweepDefinition, error, f"sweep {path}") from None
