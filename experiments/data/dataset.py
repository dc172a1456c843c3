"""The Dataset arrays and the DatasetRecord provenance written into every result."""

from dataclasses import dataclass, field

import numpy as np

from experiments.errors import DataError


@dataclass(frozen=True)
class DatasetRecord:
    """Where a dataset came from.

    name: the dataset actually used (e.g. "mnist-subset" when "auto" fell back).
    source: where it came from (paths, package and version, URL).
    sizes: {"train": N, "test": M}.
    sha256: file name -> SHA-256 of each file actually read.
    note: anything the reader of a result must know (fallbacks, unverified files).
    """

    name: str
    source: str
    sizes: dict[str, int]
    sha256: dict[str, str]
    note: str = ""

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return {
            "name": self.name,
            "source": self.source,
            "sizes": dict(self.sizes),
            "sha256": dict(self.sha256),
            "note": self.note,
        }


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays: x (N, 28, 28) uint8, y (N,) int64 in [0, num_classes)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    record: DatasetRecord = field(repr=False)

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            check_arrays(x, y, self.num_classes, f"{self.name} {part}")


def check_arrays(x: np.ndarray, y: np.ndarray, num_classes: int, label: str) -> None:
    """DataError unless x is (N, 28, 28) uint8 and y is (N,) int64 with values in [0, num_classes)."""
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DataError(f"{label}: images are {x.dtype} {x.shape}, expected uint8 (N, 28, 28)")
    if y.dtype != np.int64 or y.ndim != 1:
        raise DataError(f"{label}: labels are {y.dtype} {y.shape}, expected int64 (N,)")
    if len(x) != len(y):
        raise DataError(f"{label}: {len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)][0]
        raise DataError(f"{label}: label {bad} is outside 0..{num_classes - 1}")
