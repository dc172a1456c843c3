"""Reader for Kaggle digit-recognizer CSVs (header label,pixel0..pixel783; test.csv without label)."""

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.errors import DataError

PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_HEADER = ["label", *PIXELS]
TEST_HEADER = PIXELS


def _open_text(path: Path):
    """Open a CSV as text, gunzipping it when it starts with 1f 8b."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="") if compressed else open(
        path, encoding="utf-8", newline=""
    )


def _read_header(path: Path) -> list[str]:
    try:
        with _open_text(path) as handle:
            line = handle.readline()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise DataError(f"{path}: cannot read it as a text CSV ({error})") from None
    if not line.strip():
        raise DataError(f"{path}: empty file; expected a header label,pixel0,...,pixel783")
    return [field.strip() for field in next(csv.reader([line]))]


def _check_header(path: Path, header: list[str]) -> bool:
    """True for train.csv (with label), False for test.csv (without); DataError otherwise."""
    if header == TRAIN_HEADER:
        return True
    if header == TEST_HEADER:
        return False
    shown = ",".join(header[:3]) + (",..." if len(header) > 3 else "")
    raise DataError(
        f"{path}: bad header ({len(header)} columns: {shown}); expected label,pixel0,...,pixel783 "
        f"(785 columns, train.csv) or pixel0,...,pixel783 (784 columns, test.csv)"
    )


def _first_bad_cell(path: Path, columns: list[str]) -> str:
    """Describe the first row with a wrong column count or a value that is not an integer 0-255."""
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        next(reader)
        for row_number, row in enumerate(reader, start=2):
            if len(row) != len(columns):
                return f"line {row_number} has {len(row)} values, expected {len(columns)} (wrong column count)"
            for column, value in zip(columns, row, strict=True):
                text = value.strip()
                if not (text.isascii() and text.isdigit()):
                    return (
                        f"line {row_number}, column {column}: {value!r} is not an integer 0-255 (non-numeric or empty)"
                    )
                number = int(text)
                top = 9 if column == "label" else 255
                if number > top:
                    return f"line {row_number}, column {column}: value {number} is outside 0-{top}"
    return "unparseable content"


def read_kaggle_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a digit-recognizer CSV with pandas and check header, column count and values.

    train.csv: header `label,pixel0,...,pixel783`, one row per digit, integers (label 0-9,
    pixels 0-255, pixel k at row k // 28, column k % 28). test.csv: the same without label.

    Returns:
        (x (N, 28, 28) uint8, y (N,) int64), or (x, None) for test.csv.
    """
    path = Path(path)
    has_label = _check_header(path, _read_header(path))
    columns = TRAIN_HEADER if has_label else TEST_HEADER
    try:
        frame = pd.read_csv(path, dtype=np.int64, engine="c", compression="infer")
        values = frame.to_numpy()
    except (ValueError, pd.errors.ParserError, OverflowError):
        raise DataError(f"{path}: {_first_bad_cell(path, columns)}") from None
    if values.shape[1] != len(columns):
        raise DataError(f"{path}: {values.shape[1]} columns, expected {len(columns)}")
    pixels = values[:, 1:] if has_label else values
    bad = np.argwhere((pixels < 0) | (pixels > 255))
    if len(bad):
        row, col = bad[0]
        raise DataError(f"{path}: line {row + 2}, column pixel{col}: value {pixels[row, col]} is outside 0-255")
    x = pixels.astype(np.uint8).reshape(-1, 28, 28)
    if not has_label:
        return x, None
    y = values[:, 0]
    bad_labels = np.flatnonzero((y < 0) | (y > 9))
    if len(bad_labels):
        row = bad_labels[0]
        raise DataError(f"{path}: line {row + 2}, column label: value {y[row]} is outside 0-9")
    return x, y.astype(np.int64)
