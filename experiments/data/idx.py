"""IDX reader (LeCun's MNIST format), gzip or raw, with exact size checks."""

import gzip
import zlib
from pathlib import Path

import numpy as np

from experiments.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
DTYPE_NAMES = {
    0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64",
}
KINDS = {"images": (2051, 3), "labels": (2049, 1)}


def read_file_bytes(path: Path) -> bytes:
    """The file's bytes, or DataError if it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def decompress(data: bytes, label: str) -> bytes:
    """Gunzip data if it starts with the gzip magic 1f 8b, else return it unchanged."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{label}: corrupt gzip data ({error}); delete the file and download it again") from None


def kind_from_name(name: str) -> str | None:
    """"images" or "labels" from a file name like train-images-idx3-ubyte.gz, else None."""
    if "images" in name or "idx3" in name:
        return "images"
    if "labels" in name or "idx1" in name:
        return "labels"
    return None


def parse_idx(data: bytes, label: str, kind: str | None = None) -> np.ndarray:
    """Parse decompressed IDX bytes into a uint8 array.

    Format: two zero bytes, a dtype code (0x08 = unsigned byte, the only one accepted), the
    number of dimensions, then one big-endian int32 per dimension, then prod(dims) bytes.
    Read as one big-endian int32, the first four bytes are the magic number: 2051 for
    images (ndim 3), 2049 for labels (ndim 1).

    Args:
        data: the decompressed file contents.
        label: the file name used in error messages.
        kind: "images" or "labels" to require that magic number; None accepts either.
    """
    if len(data) < 4:
        raise DataError(f"{label}: truncated: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    expected = f"{KINDS[kind][0]} (IDX {kind})" if kind else "2051 (IDX images) or 2049 (IDX labels)"
    if data[:2] != b"\x00\x00":
        raise DataError(f"{label}: bad magic number {magic}, expected {expected}: not an IDX file")
    code, ndim = data[2], data[3]
    if code != UBYTE:
        name = DTYPE_NAMES.get(code, "unknown")
        raise DataError(f"{label}: IDX dtype code 0x{code:02X} ({name}); only 0x08 (unsigned byte) is supported")
    allowed = [KINDS[kind]] if kind else list(KINDS.values())
    if (magic, ndim) not in allowed:
        raise DataError(f"{label}: bad magic number {magic}, expected {expected}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{label}: truncated: {len(data)} bytes, the IDX header alone needs {header}")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims, dtype=np.int64))
    held = len(data) - header
    what = f"{dims[0]} images of {dims[1]}x{dims[2]}" if ndim == 3 else f"{dims[0]} labels"
    unit = "pixels" if ndim == 3 else "labels"
    if held < count:
        raise DataError(
            f"{label}: truncated: header says {what} ({count} bytes) but the file holds {held} bytes of {unit}; "
            f"delete it and download it again"
        )
    if held > count:
        raise DataError(
            f"{label}: {held - count} trailing bytes after the {count} bytes of {unit} the header declares ({what})"
        )
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims).copy()


def read_idx(path: str | Path, kind: str | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, told apart by the magic bytes 1f 8b).

    Args:
        path: the file.
        kind: "images" or "labels"; None infers it from the file name, or accepts either.

    Returns:
        uint8 array: (N, rows, cols) for images, (N,) for labels.
    """
    path = Path(path)
    data = decompress(read_file_bytes(path), str(path))
    return parse_idx(data, str(path), kind if kind is not None else kind_from_name(path.name))
