"""Read a set of IDX files or an .npz into train/test arrays, verifying pinned checksums when given."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.data.checksums import KERAS_MNIST_NPZ, Pinned, sha256_bytes, sha256_file, verify_idx_file
from experiments.data.idx import decompress, parse_idx, read_file_bytes
from experiments.data.locate import IDX_STEMS
from experiments.data.npz import read_keras_npz
from experiments.errors import DataError


@dataclass
class Arrays:
    """Arrays read from files, with the SHA-256 of each file and notes for the record."""

    parts: dict[str, np.ndarray]  # "x_train", "y_train", "x_test", "y_test" (those read)
    sha256: dict[str, str]
    notes: list[str] = field(default_factory=list)


def read_idx_set(found: dict[str, Path], dataset: str | None, table: dict[str, Pinned] | None) -> Arrays:
    """Read IDX files by part ("train_images", ...); with a table, each must pass verify_idx_file.

    Images must be 28x28 and each labels file must hold as many labels as its images file.
    """
    raw_arrays, sha256 = {}, {}
    by_content, unverified = [], []
    for part, path in found.items():
        raw = read_file_bytes(path)
        digest = sha256_bytes(raw)
        content = decompress(raw, str(path))
        if table is not None:
            status = verify_idx_file(dataset, f"{IDX_STEMS[part]}.gz", path, digest, content, table)
            if status == "content":
                by_content.append(path.name)
            elif status == "unverified":
                unverified.append(path.name)
        raw_arrays[part] = parse_idx(content, str(path), "images" if part.endswith("images") else "labels")
        sha256[path.name] = digest
    notes = []
    if by_content:
        notes.append(f"verified by decompressed content (recompressed or uncompressed copy): {', '.join(by_content)}")
    if unverified:
        notes.append(f"NOT verified (uncompressed; no checksum is pinned for it): {', '.join(unverified)}")
    arrays = {}
    for split in ("train", "test"):
        if f"{split}_images" not in raw_arrays:
            continue
        images, labels = raw_arrays[f"{split}_images"], raw_arrays[f"{split}_labels"]
        if images.shape[1:] != (28, 28):
            size = f"{images.shape[1]}x{images.shape[2]}"
            raise DataError(f"{found[f'{split}_images']}: images are {size}, expected 28x28")
        if len(images) != len(labels):
            raise DataError(
                f"{found[f'{split}_images'].name} holds {len(images)} images but "
                f"{found[f'{split}_labels'].name} holds {len(labels)} labels; they must match"
            )
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels.astype(np.int64)
    return Arrays(arrays, sha256, notes)


def read_npz_set(path: Path, canonical: bool) -> Arrays:
    """Read a Keras-layout .npz; if canonical, its SHA-256 must be Keras' pinned mnist.npz hash."""
    digest = sha256_file(path) if path.is_file() else None
    if canonical and digest is not None and digest != KERAS_MNIST_NPZ.sha256:
        raise DataError(
            f"{path}: sha256 {digest} is not Keras' canonical mnist.npz (expected {KERAS_MNIST_NPZ.sha256}); "
            f"re-download it, or pass your own file explicitly as npz:PATH"
        )
    x_train, y_train, x_test, y_test = read_keras_npz(path)
    return Arrays({"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}, {path.name: digest})


def matching_canonical(sha256: dict[str, str], tables: dict[str, dict[str, Pinned]]) -> str | None:
    """The name of the dataset whose pinned archives all appear among sha256's values, if any."""
    values = set(sha256.values())
    for name, table in tables.items():
        if all(pinned.sha256 in values or pinned.content_sha256 in values for pinned in table.values()):
            return name
    return None
