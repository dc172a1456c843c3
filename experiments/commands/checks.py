"""Checks every command makes before anything trains or is written: each failure is one UserError line (exit 2)."""

import math
from pathlib import Path

from backends import BACKENDS, DEFAULT_BACKENDS
from experiments.batching import steps_per_epoch
from experiments.data import Dataset
from experiments.data.split import validation_count
from experiments.errors import UserError
from experiments.spec import ExperimentSpec
from experiments.store import check_store, store_path
from experiments.store.paths import cannot_create_in


def parse_backends(requested: list[str] | None) -> list[str]:
    """--backends as given (None: the defaults); an empty list or an unknown name is an error."""
    if requested is None:
        return list(DEFAULT_BACKENDS)
    unknown = [name for name in requested if name not in BACKENDS]
    if unknown or not requested:
        what = f"unknown backend {', '.join(map(repr, unknown))}" if unknown else "no backend named"
        raise UserError(f"--backends: {what}; allowed: {', '.join(BACKENDS)} (comma-separated)")
    return list(dict.fromkeys(requested))


def require_at_least(option: str, value: int | None, low: int, why: str = "") -> None:
    """An integer option below its minimum is an error (None: not given)."""
    if value is not None and value < low:
        raise UserError(f"{option}: {value}; must be at least {low}{why}")


def require_positive_finite(option: str, value: float) -> None:
    """A float option that must be a finite number above zero."""
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{option}: {value}; must be a finite number above 0")


def check_output_folder(folder: Path, option: str = "--out") -> None:
    """The folder is a folder this process can write in, or can be created (nothing is left behind by the check)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder}: exists and is not a folder; give a folder (it is created if missing)")
    problem = cannot_create_in(folder)
    if problem:
        raise UserError(f"{option} {folder}: {problem}; give a folder you can write to (it is created if missing)")


def check_out(out: Path) -> Path:
    """--out can be created and written, and the results store in it reads end to end; returns the store's path."""
    check_output_folder(out)
    store = store_path(out)
    check_store(store)
    return store


def training_sizes(spec: ExperimentSpec, dataset: Dataset) -> dict[str, int]:
    """The split the run will train on ({"train", "validation", "test"}), checked: no empty training or test part,
    and at least one batch per epoch. The same sizes experiments.runner.write_split gives, without splitting."""
    total = len(dataset.x_train)
    validation = validation_count(total, spec.data.validation_fraction)
    sizes = {"train": total - validation, "validation": validation, "test": len(dataset.x_test)}
    where = f"dataset {dataset.name}"
    if sizes["train"] < 1:
        raise UserError(f"{where}: {total} training images leave {sizes['train']} to train on after holding out "
                        f"data.validation_fraction {spec.data.validation_fraction}; lower it or use a larger dataset")
    if sizes["test"] < 1:
        raise UserError(f"{where}: no test images; a run is scored on its test part")
    batch_size, drop_last = spec.training.batch_size, spec.training.drop_last
    if steps_per_epoch(sizes["train"], batch_size, drop_last) == 0:
        raise UserError(f"training.batch_size: {batch_size} is more than the {sizes['train']:,} training samples and "
                        f"training.drop_last is true, so an epoch would have no step; use a batch size of at most "
                        f"{sizes['train']:,} or drop_last = false")
    return sizes
