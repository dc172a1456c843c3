"""Where dataset files are looked for: data_dir, env MNIST_PARITY_DATA, system dirs, the user cache."""

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "MNIST_PARITY_DATA"
IDX_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
TEST_PARTS = ("test_images", "test_labels")
ALL_PARTS = tuple(IDX_STEMS)


@dataclass(frozen=True)
class Place:
    """A directory searched, and why (shown in messages)."""

    path: Path
    origin: str  # "data_dir", "MNIST_PARITY_DATA", "system", "cache"

    def __str__(self) -> str:
        return f"{self.path} ({self.origin})"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The user cache: cache_dir, else $XDG_CACHE_HOME/mnist-parity, else ~/.cache/mnist-parity."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mnist-parity"


def user_places(name: str, data_dir: str | Path | None) -> list[Place]:
    """The user's directories for dataset name: data_dir, then env MNIST_PARITY_DATA, each as DIR/name then DIR."""
    places = []
    for root, origin in ((data_dir, "data_dir"), (os.environ.get(DATA_ENV) or None, DATA_ENV)):
        if root is not None:
            root = Path(root).expanduser()
            places += [Place(root / name, origin), Place(root, origin)]
    return places


def search_places(
    name: str, data_dir: str | Path | None, cache_dir: str | Path | None, system: tuple[str, ...] = ()
) -> list[Place]:
    """All directories searched for dataset name, in order: user places, system dirs, the cache."""
    places = user_places(name, data_dir)
    places += [Place(Path(path), "system") for path in system]
    places.append(Place(cache_root(cache_dir) / name, "cache"))
    unique, seen = [], set()
    for place in places:
        if place.path not in seen:
            seen.add(place.path)
            unique.append(place)
    return unique


def find_idx_file(directory: Path, stem: str) -> Path | None:
    """stem.gz or stem (uncompressed) in directory, preferring the .gz; None if neither is a file."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def find_idx_set(directory: Path, parts: tuple[str, ...] = ALL_PARTS) -> tuple[dict[str, Path], list[str]]:
    """The IDX files of parts found in directory, and the canonical .gz names of those missing."""
    found, missing = {}, []
    for part in parts:
        path = find_idx_file(directory, IDX_STEMS[part])
        if path is None:
            missing.append(f"{IDX_STEMS[part]}.gz")
        else:
            found[part] = path
    return found, missing


def describe_places(places: list[Place]) -> str:
    """"A (data_dir), B (cache)" for messages."""
    return ", ".join(str(place) for place in places)
