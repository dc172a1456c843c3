"""Which Ray cluster a sweep runs on: check the --address text, reach the cluster (or start a local one), let go after.

Ray is imported only inside connect(), so `mnist-parity sweep` without --executor ray never loads it.
"""

import logging
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from experiments.errors import UserError

PROBE_TIMEOUT_S = 5.0  # a wrong address fails in seconds, not after Ray's own minutes of retries
ADDRESS_FORMS = "host:port, ray://host:port or auto"
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")  # the user's choice of Ray authentication
TEMP_PREFIX = "mp-ray-"  # a local instance's private temp dir; short, as Ray's socket paths under it are length-limited


def _host_port(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]:6379
    if not sep or not host or any(c.isspace() or c in "/@" for c in host) or not port.isdigit():
        return None
    return (host, int(port)) if 1 <= int(port) <= 65535 else None


def check_address(address: str | None) -> str | None:
    """The address as given when it has one of the accepted forms (None: start a local instance); else UserError."""
    if address is None or address == "auto":
        return address
    body = address[len("ray://"):] if address.startswith("ray://") else address
    if _host_port(body) is None:
        raise UserError(f"--address {address!r}: expected {ADDRESS_FORMS}")
    return address


def _probe(address: str) -> None:
    """Open and close a TCP connection to host:port (GCS or Ray Client port) so a dead address fails fast."""
    host, port = _host_port(address.removeprefix("ray://"))
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise UserError(f"--address {address}: no Ray cluster answers there ({error.strerror or error})") from None


def _first_line(error: BaseException) -> str:
    """The error's first line, and its cause's (Ray's ConnectionError hides why, e.g. a missing auth token). Where Ray
    quotes a whole traceback in its message (a wrong token: "Last connection error: Traceback ..."), the traceback's
    last line, the error it ended in, stands for it."""
    lines = []
    for part in (error, error.__cause__):
        if part is not None:
            text = [line.strip() for line in str(part).splitlines() if line.strip()]
            if len(text) > 1 and "Traceback (most recent call last)" in text[0]:
                text = [f"{text[0].split('Traceback (most recent call last)')[0].strip()} {text[-1]}".strip()]
            lines.append(text[0][:200] if text else type(part).__name__)
    return ": ".join(lines)


@contextmanager
def _stderr_held_back(enabled: bool) -> Iterator[None]:
    """Hold back what is written to file descriptor 2 in the block: Ray's C++ client prints a warning line there at
    each retry of a connection that fails (a wrong token: one a second, for 20 seconds). Shown after a success,
    dropped after a failure (the UserError says why). Only around connecting to a running cluster: a local instance
    starts processes that would keep the descriptor."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if succeeded:
                held.seek(0)
                os.write(2, held.read())


def check_local_threads(threads: int, cpu_count: int) -> None:
    """A local instance has this machine's CPUs: a cell asking for more would wait forever (refused before Ray starts)."""
    if threads > cpu_count:
        raise UserError(f"--threads {threads}: each cell asks for that many CPUs, but a local Ray instance has this "
                        f"machine's {cpu_count}; use --threads {cpu_count} or less, or --address for a larger cluster")


def _where(address: str | None) -> str:
    return f"--address {address}: cannot connect to a Ray cluster" if address else "cannot start a local Ray instance"


@contextmanager
def connect(address: str | None, *, cpus_per_cell: int) -> Iterator[dict]:
    """Connected to the cluster at address for the block (None: a local Ray instance on this machine, stopped after).

    Yields {"connect_s": seconds to start or reach the cluster, "cluster_cpus": its CPUs}. A cluster none of whose nodes
    has the CPUs one cell asks for (--threads) is refused: such a task would wait forever (on an autoscaling cluster,
    keep min_workers at 1 or more). A failure to connect or start is a UserError (one line, exit 2), never a traceback.

    A local instance lives in a private temp dir (`mp-ray-*` under $RAY_TMPDIR, else the system's temp dir, rather than
    Ray's shared `/tmp/ray`), removed once its processes have exited.
    """
    if address not in (None, "auto"):
        _probe(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a sweep sends nothing anywhere unless the user says so
    if address is None and "ray" not in sys.modules and not any(name in os.environ for name in AUTH_VARIABLES):
        # a local instance gets a token of its own, in this process's environment (its processes inherit it), so
        # Ray's default, a token saved in ~/.ray/auth_token that later `ray start` runs would pick up, is not used
        # (Ray reads these variables when it is imported, hence only before that)
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    temp_dir = _private_temp_dir() if address is None else None
    try:
        try:
            import ray
            from ray.exceptions import RayError
        except ImportError as error:
            raise UserError(f"--executor ray needs Ray ({error}); install the project's requirements.txt") from None

        started = time.perf_counter()
        options = {} if temp_dir is None else {"include_dashboard": False, "_temp_dir": str(temp_dir)}
        try:
            # "local": a new instance even when `ray start` left one running here (None would connect to that one)
            with _stderr_held_back(address is not None):
                ray.init(address=address or "local", logging_level=logging.ERROR, log_to_driver=False, **options)
        except (ConnectionError, RuntimeError, ValueError, RayError, OSError) as error:
            # e.g. AuthenticationError (a token missing or wrong), PermissionError, a socket path too long
            ray.shutdown(wait_for_processes=temp_dir is not None)  # whatever half started goes too
            raise UserError(f"{_where(address)} ({_first_line(error)})") from None
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            largest = int(max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0))
            if largest < cpus_per_cell:
                raise UserError(f"--threads {cpus_per_cell}: each cell asks for that many CPUs on one node, but the "
                                f"largest node of the Ray cluster has {largest} ({cpus} in all); use --threads "
                                f"{max(1, largest)}")
            yield {"connect_s": time.perf_counter() - started, "cluster_cpus": cpus}
        finally:
            ray.shutdown(wait_for_processes=temp_dir is not None)  # a local instance: its processes gone, then its folder
    finally:
        if temp_dir is not None:
            _remove(temp_dir)


def _private_temp_dir() -> Path:
    """A fresh `mp-ray-*` folder where Ray would put its own default one ($RAY_TMPDIR, else the system's temp dir)."""
    try:
        return Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=os.environ.get("RAY_TMPDIR") or None)).absolute()
    except OSError as error:
        raise UserError(f"{_where(None)} ({_first_line(error)})") from None


def _remove(folder: Path) -> None:
    """Remove the local instance's temp dir; a straggling process may still write a log line in it, hence twice."""
    for _ in range(2):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.5)
