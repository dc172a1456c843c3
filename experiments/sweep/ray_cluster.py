"""Which Ray cluster a sweep runs on: check the --address text, reach the cluster (or start a local one), let go after.

Ray is imported only inside connect(), so `mnist-parity sweep` without --executor ray never loads it.
"""

import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from experiments.errors import UserError

PROBE_TIMEOUT_S = 5.0  # a wrong address fails in seconds, not after Ray's own minutes of retries
ADDRESS_FORMS = "host:port, ray://host:port or auto"
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")  # the user's choice of Ray authentication


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
    """The error's first line, and its cause's (Ray's ConnectionError hides why, e.g. a missing auth token)."""
    lines = []
    for part in (error, error.__cause__):
        if part is not None:
            text = [line.strip() for line in str(part).splitlines() if line.strip()]
            lines.append(text[0][:200] if text else type(part).__name__)
    return ": ".join(lines)


@contextmanager
def connect(address: str | None, *, cpus_per_cell: int) -> Iterator[dict]:
    """Connected to the cluster at address for the block (None: a local Ray instance on this machine, stopped after).

    Yields {"connect_s": seconds to start or reach the cluster, "cluster_cpus": its CPUs}. A cluster none of whose nodes
    has the CPUs one cell asks for (--threads) is refused: such a task would wait forever (on an autoscaling cluster,
    keep min_workers at 1 or more).
    """
    if address not in (None, "auto"):
        _probe(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a sweep sends nothing anywhere unless the user says so
    if address is None and "ray" not in sys.modules and not any(name in os.environ for name in AUTH_VARIABLES):
        # a local instance gets a token of its own, in this process's environment (its processes inherit it), so
        # Ray's default, a token saved in ~/.ray/auth_token that later `ray start` runs would pick up, is not used
        # (Ray reads these variables when it is imported, hence only before that)
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    import ray

    started = time.perf_counter()
    options = {"include_dashboard": False} if address is None else {}
    try:
        # "local": a new instance even when `ray start` left one running here (None would connect to that one)
        ray.init(address=address or "local", logging_level=logging.ERROR, log_to_driver=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserError(f"--address {address}: cannot connect to a Ray cluster ({_first_line(error)})") from None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        largest = int(max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0))
        if largest < cpus_per_cell:
            raise UserError(f"--threads {cpus_per_cell}: each cell asks for that many CPUs on one node, but the largest "
                            f"node of the Ray cluster has {largest} ({cpus} in all); use --threads {max(1, largest)}")
        yield {"connect_s": time.perf_counter() - started, "cluster_cpus": cpus}
    finally:
        ray.shutdown()
