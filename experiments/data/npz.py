"""Reader for Keras' mnist.npz layout (x_train, y_train, x_test, y_test)."""

import zipfile
from pathlib import Path

import numpy as np

from experiments.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_keras_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read and check a Keras-layout .npz.

    Layout (keras.datasets.mnist): x_train (N, 28, 28) uint8, y_train (N,) integer labels,
    x_test (M, 28, 28) uint8, y_test (M,). Extra keys are ignored; object arrays are refused
    (no pickle is ever loaded).

    Returns:
        (x_train, y_train, x_test, y_test), images uint8, labels int64.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: a single .npy array, expected an .npz archive with keys {', '.join(KEYS)}")
            missing = [key for key in KEYS if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing key(s) {', '.join(missing)}; a Keras mnist.npz holds {', '.join(KEYS)} "
                    f"(found: {', '.join(archive.files) or 'none'})"
                )
            arrays = {key: archive[key] for key in KEYS}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from None
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{path}: x_{part} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28)")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{part} is {y.dtype} {y.shape}, expected integer labels (N,)")
        if len(y) != len(x):
            raise DataError(f"{path}: x_{part} has {len(x)} images but y_{part} has {len(y)} labels")
    return (
        arrays["x_train"], arrays["y_train"].astype(np.int64),
        arrays["x_test"], arrays["y_test"].astype(np.int64),
    )
