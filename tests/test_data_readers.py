"""IDX, Keras npz and Kaggle CSV readers: real files, round trips, and every kind of bad input."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from tests.data_fixtures import csv_text, gz, idx_bytes, images, isolate, labels, sha256, write_idx_set, write_npz
from experiments.data import load_dataset, read_idx, read_kaggle_csv, read_keras_npz
from experiments.data.checksums import FASHION_MNIST, MNIST, sha256_file
from experiments.errors import DataError

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_t10k = pytest.mark.skipif(
    not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"real MNIST t10k files absent from {SHARED_MNIST}",
)
needs_fashion = pytest.mark.skipif(  # CI installs it (.ci/run), so there a missing package fails instead of skipping
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file() and os.environ.get("CI") != "true",
    reason="Fashion-MNIST absent (apt-get install -y dataset-fashion-mnist installs it)",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


# ----- real files ------------------------------------------------------------------------

@needs_t10k
def test_real_t10k_images_and_labels():
    x = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    y = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.uint8
    histogram = np.bincount(y, minlength=10)
    assert len(histogram) == 10 and histogram.sum() == 10000
    assert y[0] == 7
    assert x.max() == 255 and x.min() == 0
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert sha256_file(SHARED_MNIST / name) == MNIST[name].sha256


@needs_t10k
def test_uncompressed_t10k_is_verified_by_content(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / name).write_bytes(gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes()))
    dataset = load_dataset("mnist-subset-t10k", data, download=False)
    assert dataset.record.sizes == {"train": 5000, "test": 10000}
    assert "verified by decompressed content" in dataset.record.note
    raw = bytearray((data / "t10k-images-idx3-ubyte").read_bytes())
    raw[5000] ^= 1  # one pixel off by one
    (data / "t10k-images-idx3-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="is not the canonical mnist file"):
        load_dataset("mnist-subset-t10k", data, download=False)


@needs_fashion
def test_real_fashion_mnist_from_debian_package(tmp_path):
    dataset = load_dataset("fashion-mnist", download=False, cache_dir=tmp_path / "cache")
    assert dataset.record.sizes == {"train": 60000, "test": 10000}
    assert np.bincount(dataset.y_train).tolist() == [6000] * 10
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.x_train.dtype == np.uint8
    # Debian recompressed the archives; they pass through the pinned decompressed-content hash
    for name in FASHION_MNIST:
        assert sha256(gzip.decompress((FASHION_DIR / name).read_bytes())) == FASHION_MNIST[name].content_sha256


# ----- IDX round trips and bad files -----------------------------------------------------

@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_idx_round_trip(tmp_path, compress):
    x, y = images(7), labels(7)
    for name, array in (("a-images-idx3-ubyte", x), ("a-labels-idx1-ubyte", y)):
        data = idx_bytes(array)
        path = tmp_path / (name + (".gz" if compress else ""))
        path.write_bytes(gz(data) if compress else data)
        read = read_idx(path)
        assert read.dtype == np.uint8 and read.shape == array.shape
        np.testing.assert_array_equal(read, array)
        assert read.flags.writeable


def _bad_idx_cases():
    x = images(3)
    good = idx_bytes(x)
    return {
        "labels magic in images file": (idx_bytes(labels(3)), "bad magic number 2049, expected 2051 (IDX images)"),
        "not IDX at all": (b"PK\x03\x04" + good[4:], "not an IDX file"),
        "wrong dtype code": (idx_bytes(x, dtype_code=0x0D), "dtype code 0x0D (float32); only 0x08"),
        "truncated pixels": (
            good[:-100], "truncated: header says 3 images of 28x28 (2352 bytes) but the file holds 2252 bytes of pixels"
        ),
        "truncated header": (good[:10], "truncated: 10 bytes, the IDX header alone needs 16"),
        "tiny file": (b"\x00\x00", "too short for an IDX header"),
        "trailing bytes": (good + b"\x00" * 5, "5 trailing bytes after the 2352 bytes"),
        "bad gzip": (b"\x1f\x8b\x08\x00garbage-not-deflate", "corrupt gzip data"),
        "truncated gzip": (gz(good)[:-12], "corrupt gzip data"),
    }


@pytest.mark.parametrize("case", list(_bad_idx_cases()))
def test_bad_idx_files_raise_one_line(tmp_path, case):
    data, expected = _bad_idx_cases()[case]
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message and "t10k-images-idx3-ubyte.gz" in message


def test_images_and_labels_counts_must_match(tmp_path):
    write_idx_set(tmp_path, n_train=10, n_test=5)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gz(idx_bytes(labels(9))))
    with pytest.raises(DataError, match="holds 10 images but train-labels-idx1-ubyte.gz holds 9 labels"):
        load_dataset(f"idx:{tmp_path}")


def test_images_must_be_28x28(tmp_path):
    write_idx_set(tmp_path, n_train=4, n_test=4)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gz(idx_bytes(np.zeros((4, 32, 32), np.uint8))))
    with pytest.raises(DataError, match="images are 32x32, expected 28x28"):
        load_dataset(f"idx:{tmp_path}")


def test_labels_must_be_digits(tmp_path):
    write_idx_set(tmp_path, n_train=4, n_test=4)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gz(idx_bytes(np.array([1, 2, 12, 3], np.uint8))))
    with pytest.raises(DataError, match="label 12 is outside 0..9"):
        load_dataset(f"idx:{tmp_path}")


# ----- checksums ---------------------------------------------------------------------------

def test_checksum_mismatch_rejected_but_explicit_user_dir_accepted(tmp_path):
    data = tmp_path / "data"
    write_idx_set(data)
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data, download=False)
    message = str(caught.value)
    assert "is not the canonical mnist file" in message and "idx:DIR" in message and "\n" not in message
    dataset = load_dataset(f"idx:{data}")
    assert dataset.record.sizes == {"train": 30, "test": 20}
    assert dataset.record.sha256["train-images-idx3-ubyte.gz"] == sha256_file(data / "train-images-idx3-ubyte.gz")
    assert "not checked against a canonical dataset" in dataset.record.note


def test_idx_dir_accepts_uncompressed_files(tmp_path):
    written = write_idx_set(tmp_path, compress=False)
    dataset = load_dataset(f"idx:{tmp_path}")
    assert set(dataset.record.sha256) == set(written)
    np.testing.assert_array_equal(dataset.y_train, labels(30, 1).astype(np.int64))
    assert dataset.y_train.dtype == np.int64


def test_idx_dir_missing_files(tmp_path):
    write_idx_set(tmp_path, parts=("train_images", "train_labels"))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz .* not found in"):
        load_dataset(f"idx:{tmp_path}")


def test_mnist_npz_in_data_dir_must_be_keras_canonical(tmp_path):
    write_npz(tmp_path / "mnist.npz")
    with pytest.raises(DataError, match="is not Keras' canonical mnist.npz"):
        load_dataset("mnist", tmp_path, download=False)


# ----- Keras npz ---------------------------------------------------------------------------

def test_npz_round_trip(tmp_path):
    arrays = write_npz(tmp_path / "mine.npz")
    x_train, y_train, x_test, y_test = read_keras_npz(tmp_path / "mine.npz")
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert y_train.dtype == np.int64 and x_test.dtype == np.uint8
    dataset = load_dataset(f"npz:{tmp_path / 'mine.npz'}")
    assert dataset.record.sizes == {"train": 30, "test": 20}
    assert dataset.record.sha256 == {"mine.npz": sha256_file(tmp_path / "mine.npz")}


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"y_test": None}, "missing key(s) y_test"),
        ({"x_train": images(30).astype(np.float32)}, "x_train is float32 (30, 28, 28), expected uint8 (N, 28, 28)"),
        ({"x_test": np.zeros((20, 28), np.uint8)}, "x_test is uint8 (20, 28), expected uint8 (N, 28, 28)"),
        ({"y_train": labels(29)}, "x_train has 30 images but y_train has 29 labels"),
        ({"y_train": np.zeros(30, np.float64)}, "y_train is float64 (30,), expected integer labels"),
    ],
    ids=["missing-key", "float-images", "wrong-shape", "length-mismatch", "float-labels"],
)
def test_bad_npz(tmp_path, override, expected):
    write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(DataError) as caught:
        read_keras_npz(tmp_path / "bad.npz")
    assert expected in str(caught.value)


def test_npz_not_an_archive(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file at all")
    with pytest.raises(DataError, match="not a readable .npz archive"):
        read_keras_npz(tmp_path / "junk.npz")


def test_npz_object_arrays_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", x_train=np.array([object()], dtype=object), y_train=labels(1),
             x_test=images(1), y_test=labels(1))
    with pytest.raises(DataError, match="not a readable .npz archive"):
        read_keras_npz(tmp_path / "obj.npz")


# ----- Kaggle CSV --------------------------------------------------------------------------

def test_kaggle_train_csv_round_trip(tmp_path):
    x, y = images(12, 5), labels(12, 5)
    (tmp_path / "train.csv").write_text(csv_text(x, y))
    read_x, read_y = read_kaggle_csv(tmp_path / "train.csv")
    np.testing.assert_array_equal(read_x, x)
    np.testing.assert_array_equal(read_y, y.astype(np.int64))
    assert read_x.dtype == np.uint8 and read_y.dtype == np.int64


def test_kaggle_test_csv_has_no_labels(tmp_path):
    x = images(4, 6)
    (tmp_path / "test.csv").write_text(csv_text(x, None))
    read_x, read_y = read_kaggle_csv(tmp_path / "test.csv")
    np.testing.assert_array_equal(read_x, x)
    assert read_y is None


def test_kaggle_gzipped_csv(tmp_path):
    x, y = images(3, 7), labels(3, 7)
    (tmp_path / "train.csv.gz").write_bytes(gz(csv_text(x, y).encode()))
    read_x, read_y = read_kaggle_csv(tmp_path / "train.csv.gz")
    np.testing.assert_array_equal(read_x, x)


def _edit_csv(text: str, line: int, column: int, value: str | None) -> str:
    lines = text.splitlines()
    fields = lines[line].split(",")
    if value is None:
        del fields[column]
    else:
        fields[column] = value
    lines[line] = ",".join(fields)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: t.replace("label,", "digit,", 1), "bad header (785 columns: digit,pixel0,pixel1,...)"),
        (lambda t: t.replace(",pixel783", "", 1), "bad header (784 columns: label,pixel0,pixel1,...)"),
        (lambda t: _edit_csv(t, 2, 5, "256"), "line 3, column pixel4: value 256 is outside 0-255"),
        (lambda t: _edit_csv(t, 1, 0, "10"), "line 2, column label: value 10 is outside 0-9"),
        (lambda t: _edit_csv(t, 2, 9, "abc"), "line 3, column pixel8: 'abc' is not an integer 0-255"),
        (lambda t: _edit_csv(t, 3, 9, "-1"), "line 4, column pixel8: value -1 is outside 0-255"),
        (lambda t: _edit_csv(t, 2, 9, "1.5"), "line 3, column pixel8: '1.5' is not an integer 0-255"),
        (lambda t: _edit_csv(t, 2, 9, ""), "line 3, column pixel8: '' is not an integer 0-255"),
        (lambda t: _edit_csv(t, 3, 9, None), "line 4 has 784 values, expected 785 (wrong column count)"),
        (lambda t: _edit_csv(t, 2, 9, "7,7"), "line 3 has 786 values, expected 785 (wrong column count)"),
        (lambda t: "", "empty file"),
    ],
    ids=["header-name", "header-short", "pixel-256", "label-10", "non-numeric", "negative", "float", "empty-cell",
         "short-row", "long-row", "empty-file"],
)
def test_bad_kaggle_csv(tmp_path, edit, expected):
    text = csv_text(images(4, 8), labels(4, 8))
    (tmp_path / "train.csv").write_text(edit(text))
    with pytest.raises(DataError) as caught:
        read_kaggle_csv(tmp_path / "train.csv")
    message = str(caught.value)
    assert expected in message, message
    assert "\n" not in message


def test_kaggle_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_kaggle_csv(tmp_path / "nope.csv")


def test_reader_on_missing_idx_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")


def test_fixture_idx_header_layout():
    # guards the fixture builder itself: 0, 0, dtype 0x08, ndim 1, then N = 2 big-endian
    assert idx_bytes(labels(2))[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 2])
