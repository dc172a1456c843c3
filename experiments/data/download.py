"""Download files from a list of mirrors into a directory: SHA-256 checked, atomic, never half-written."""

import hashlib
import logging
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from experiments.data.checksums import sha256_file
from experiments.errors import DataError

log = logging.getLogger(__name__)

MIRRORS_ENV = "MNIST_PARITY_MIRRORS"
TIMEOUT_S = 30.0
MAX_BYTES = 256 << 20  # no canonical file is near this; stops a runaway response
CHUNK = 1 << 16


def resolve_mirrors(defaults: Sequence[str], mirrors: Sequence[str] | None = None) -> list[str]:
    """The mirrors to try, in order: the argument, else env MNIST_PARITY_MIRRORS (comma-separated), else defaults.

    Each is a base URL ending in "/" (added if missing); only http:// and https:// are allowed.
    """
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV, "").strip()
        mirrors = [part for part in env.split(",")] if env else list(defaults)
    resolved = []
    for mirror in mirrors:
        mirror = mirror.strip()
        if not mirror:
            continue
        if not mirror.startswith(("http://", "https://")):
            raise DataError(f"mirror {mirror!r} is not an http:// or https:// base URL (set {MIRRORS_ENV}=URL1,URL2)")
        resolved.append(mirror if mirror.endswith("/") else mirror + "/")
    if not resolved:
        raise DataError(f"no download mirrors given; set {MIRRORS_ENV} to comma-separated base URLs")
    return resolved


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return getattr(reason, "strerror", None) or str(reason)
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class _Unreachable(Exception):
    """The mirror could not be reached at all (no HTTP answer): skip it for the remaining files."""


def _fetch(url: str, target: Path, sha256: str, timeout: float) -> str | None:
    """Fetch url into a temp file beside target and rename it there if it hashes to sha256.

    Returns None on success, else why this mirror failed for this file; raises _Unreachable when
    no HTTP answer came at all. No temp file survives either way.
    """
    try:
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False)
    except OSError as error:
        reason = error.strerror or error
        raise DataError(f"cannot write in {target.parent} ({reason}); choose a writable cache directory") from None
    temp = Path(handle.name)
    try:
        digest, size = hashlib.sha256(), 0
        try:
            with handle, urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(CHUNK):
                    size += len(chunk)
                    if size > MAX_BYTES:
                        return f"response larger than {MAX_BYTES} bytes"
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except urllib.error.HTTPError as error:
            return _describe(error)
        except (urllib.error.URLError, OSError, ValueError) as error:
            if size == 0:
                raise _Unreachable(_describe(error)) from None
            return f"{_describe(error)} after {size} bytes"
        if digest.hexdigest() != sha256:
            return f"checksum mismatch (sha256 {digest.hexdigest()} of {size} bytes, expected {sha256})"
        os.replace(temp, target)
        return None
    finally:
        temp.unlink(missing_ok=True)


def download_files(
    manifest: Mapping[str, str],
    directory: str | Path,
    mirrors: Sequence[str],
    *,
    timeout: float = TIMEOUT_S,
    advice: str = "",
) -> dict[str, str]:
    """Make every file of the manifest present and verified in directory, downloading what is missing.

    A file already there with the expected SHA-256 is used as is (no request). Otherwise each
    mirror is tried in order at mirror + file name; the body goes to a temp file in the same
    directory, is hashed while written, and is renamed over the final name only if its SHA-256
    matches. A wrong copy already in the directory is replaced only by a verified one. A mirror
    that gives no HTTP answer at all (refused, unknown host, timeout) is not asked again.

    Args:
        manifest: file name -> expected hex SHA-256.
        directory: where the files go (created if needed).
        mirrors: base URLs ending in "/", tried in order (see resolve_mirrors).
        timeout: seconds allowed for the connection and for each read.
        advice: appended to the error line ("what to do").

    Returns:
        file name -> where it came from: "cached" or the URL it was downloaded from.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create download directory {directory} ({error.strerror or error}){advice}") from None
    origins: dict[str, str] = {}
    failed: list[str] = []
    reasons: dict[str, list[str]] = {mirror: [] for mirror in mirrors}  # mirror -> distinct reasons
    unreachable: set[str] = set()
    for name, sha256 in manifest.items():
        target = directory / name
        if target.is_file() and sha256_file(target) == sha256:
            origins[name] = "cached"
            continue
        for mirror in mirrors:
            if mirror in unreachable:
                continue
            url = mirror + name
            log.info("downloading %s", url)
            try:
                reason = _fetch(url, target, sha256, timeout)
            except _Unreachable as error:
                unreachable.add(mirror)
                reason = str(error)
            if reason is None:
                origins[name] = url
                break
            log.info("%s: %s", url, reason)
            entry = f"{name}: {reason}" if mirror not in unreachable else reason
            if entry not in reasons[mirror]:
                reasons[mirror].append(entry)
        else:
            failed.append(name)
    if failed:
        tried = "; ".join(f"{mirror}: {', '.join(why)}" for mirror, why in reasons.items() if why)
        raise DataError(f"could not download {', '.join(failed)} into {directory} ({tried}){advice}")
    return origins
