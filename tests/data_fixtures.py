"""Tiny dataset files built at test time (IDX, npz, Kaggle CSV) and a local HTTP server for downloads."""

import contextlib
import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np

STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
ENV_VARS = ("MNIST_PARITY_DATA", "MNIST_PARITY_MIRRORS", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")


def isolate(monkeypatch, tmp_path: Path) -> None:
    """No user data dir, mirrors or proxies from the environment; the cache lives under tmp_path."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 with the full 0-255 range."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def labels(n: int, seed: int = 0) -> np.ndarray:
    """(n,) uint8 labels covering 0-9."""
    return (np.arange(n) + seed).astype(np.uint8) % 10


def idx_bytes(array: np.ndarray, magic: int | None = None, dtype_code: int = 0x08) -> bytes:
    """IDX encoding: 0, 0, dtype code, ndim, big-endian int32 dims, then the bytes."""
    ndim = array.ndim
    header = bytes([0, 0, dtype_code, ndim]) if magic is None else magic.to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def gz(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0)."""
    return gzip.compress(data, mtime=0)


def write_idx_set(directory: Path, n_train: int = 30, n_test: int = 20, compress: bool = True,
                  parts: tuple[str, ...] = tuple(STEMS)) -> dict[str, bytes]:
    """Write the IDX files of parts into directory; returns file name -> bytes written."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": images(n_train, 1), "train_labels": labels(n_train, 1),
        "test_images": images(n_test, 2), "test_labels": labels(n_test, 2),
    }
    written = {}
    for part in parts:
        data = idx_bytes(arrays[part])
        name = STEMS[part] + (".gz" if compress else "")
        if compress:
            data = gz(data)
        (directory / name).write_bytes(data)
        written[name] = data
    return written


def csv_text(x: np.ndarray, y: np.ndarray | None) -> str:
    """Kaggle digit-recognizer CSV: header label,pixel0..pixel783 (no label column if y is None)."""
    header = ([] if y is None else ["label"]) + [f"pixel{i}" for i in range(784)]
    rows = [",".join(header)]
    for i, image in enumerate(x.reshape(len(x), -1)):
        values = ([] if y is None else [str(int(y[i]))]) + [str(int(v)) for v in image]
        rows.append(",".join(values))
    return "\n".join(rows) + "\n"


def write_npz(path: Path, n_train: int = 30, n_test: int = 20, **override) -> dict[str, np.ndarray]:
    arrays = {"x_train": images(n_train, 3), "y_train": labels(n_train, 3),
              "x_test": images(n_test, 4), "y_test": labels(n_test, 4)}
    arrays.update(override)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    np.savez(path, **arrays)
    return arrays


class Server:
    """Files served by a ThreadingHTTPServer on 127.0.0.1; routes map URL path -> bytes or an HTTP status."""

    def __init__(self, routes: dict[str, bytes | int]):
        self.routes = dict(routes)
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                body = server.routes.get(self.path, 404)
                if isinstance(body, int):
                    self.send_error(body)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def base(self, prefix: str) -> str:
        return f"{self.url}/{prefix.strip('/')}/"


@contextlib.contextmanager
def serve(routes: dict[str, bytes | int]):
    server = Server(routes)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 whose port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"
