"""`mnist-parity sweep --executor ray` on a real two-node Ray cluster started here (`ray start --head` plus
`ray start --address`, 1 CPU and a temp dir each): results bit-identical to the local executor, a worker node and a
worker process killed mid-cell, Ctrl-C, a local instance, bad options; and no Ray process of ours left afterwards.

The nodes run in empty folders of their own and never see the driver's: the sweep's dataset is a path relative to
the driver's folder ("npz:data/digits.npz"), that folder is renamed away once the driver has the dataset (before any
cell starts), and --out is relative too, so a worker that read the dataset or wrote a cell itself would fail or leave
files in its own folder. Ray resolves 127.0.0.1 to this machine's address for a multi-node cluster; every connection
stays on this machine. The drivers' environment is built here, without inherited Ray or data settings.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from experiments.store import load_runs, store_path
from experiments.sweep import expand_cells, load_sweep
from experiments.sweep.task import CLOCK_FIELDS, cell_status
from tests.test_sweep import published as published_cells, tiny_sweep

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 120  # `ray start` of one node on a loaded 2-core machine
SWEEP_TIMEOUT_S = 300
GONE_TIMEOUT_S = 20.0  # after a kill: every process of a node has exited
STOP_GRACE_S = 3.0  # teardown: SIGTERM, then SIGKILL for what still runs
NOT_COMPARED = {"created", "environment"}  # when, and on which machine: the rest of results.json must match bit for bit
CELLS = [(0, "numpy"), (0, "torch"), (1, "numpy"), (1, "torch")]  # the 4-cell sweep: seed x backend
SLOW_SEEDS = [0, 1, 2, 3]  # the sweeps a test interrupts: torch cells of about 3 s, long enough to be caught mid-cell
DRIVER_ENV_DROP = ("RAY_ADDRESS", "MNIST_PARITY_DATA")  # never inherited by a node or a driver of the tests
CLUSTER_EXAMPLE = Path(__file__).resolve().parent.parent / "experiments" / "sweep" / "ray-cluster.example.yaml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(token: Path, **extra: str) -> dict:
    """The whole environment of a node or a driver (passed as it is, nothing merged in later): token authentication
    with the tests' own token (Ray's default token in ~/.ray is never read or written), no usage statistics, no
    inherited cluster address or data folder."""
    env = {k: v for k, v in os.environ.items() if k not in DRIVER_ENV_DROP}
    return {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
            "COLUMNS": "200", **extra}


def _python(folder: Path, env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python ARGS` in folder with exactly env (tests.cli_helpers.mnist_parity would merge os.environ back in)."""
    return subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)


def _token(folder: Path) -> Path:
    path = folder / "auth_token"
    path.write_text(secrets.token_hex(32))
    return path


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _session(sid: int, live: bool = True) -> list[int]:
    """Processes of a session (live: not zombies). Ray puts each worker in a process group of its own, but every
    process of a node stays in the session of its `ray start` (a driver's local instance: in the driver's)."""
    pids = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and (_alive(pid) or not live):
                pids.append(pid)
        except OSError:
            pass
    return pids


def _kill_session(sid: int, signum: int) -> None:
    for pid in _session(sid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions text (a temp dir of ours)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in process.info["cmdline"] or []) and _alive(process.pid):
                found.append(process.pid)
        except psutil.Error:
            pass
    return found


def _backends(variable: str, value: str) -> list[int]:
    """Live backend processes (`python -m experiments.worker`) whose environment has variable=value: a backend runs
    in a session of its own, so it is found by what it inherited from the node or driver of the tests that started it."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "experiments.worker" in (process.info["cmdline"] or []) and process.environ().get(variable) == value \
                    and _alive(process.pid):
                found.append(process.pid)
        except psutil.Error:
            pass
    return found


def _wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@dataclass
class Node:
    """One `ray start` node: its session (the start command runs in a session of its own), temp dir and cwd."""

    name: str
    sid: int
    temp_dir: Path
    cwd: Path
    tmp: Path  # its TMPDIR: where its cells train

    def work_folders(self) -> list[Path]:
        """Cell work folders left in the node's TMPDIR (a cell that ends, cancelled or not, removes its own)."""
        return list(self.tmp.glob("mnist-parity-cell-*"))

    def backend_processes(self) -> list[psutil.Process]:
        """The cells training on this node: `python -m experiments.worker` processes whose parent is one of its Ray
        workers (a backend runs in a session of its own, so it is not in the node's)."""
        found = []
        for process in psutil.process_iter(["cmdline", "ppid"]):
            try:
                if "experiments.worker" in (process.info["cmdline"] or []) and os.getsid(process.info["ppid"]) == self.sid:
                    found.append(process)
            except (psutil.Error, OSError):
                pass
        return found

    def logged_cells(self) -> str:
        """What the cells that ran here wrote to their Ray worker logs."""
        return "".join(p.read_text(errors="replace") for p in self.temp_dir.glob("session_*/logs/worker-*.err"))


@dataclass
class Cluster:
    """A head and one worker node on this machine, 1 CPU each."""

    root: Path
    port: int = field(default_factory=_free_port)
    nodes: list[Node] = field(default_factory=list)

    def env(self, **extra: str) -> dict:
        return _env(self.root / "auth_token", **extra)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, *args: str) -> Node:
        temp_dir, cwd, tmp = (self.root / f"{name}-{part}" for part in ("ray", "cwd", "tmp"))
        for folder in (temp_dir, cwd, tmp):
            folder.mkdir(parents=True)
        with open(self.root / f"{name}.log", "w") as log:
            command = [RAY, "start", *args, "--num-cpus=1", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
            start = subprocess.Popen(command, cwd=cwd, env=self.env(TMPDIR=str(tmp)), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        node = Node(name, start.pid, temp_dir, cwd, tmp)
        self.nodes.append(node)
        code = start.wait(timeout=START_TIMEOUT_S)
        assert code == 0, (self.root / f"{name}.log").read_text()[-3000:]
        return node

    def start_head(self) -> Node:
        return self._start("head", "--head", f"--port={self.port}", f"--ray-client-server-port={_free_port()}",
                           f"--dashboard-port={_free_port()}", "--include-dashboard=false")

    def start_worker(self, name: str = "worker") -> Node:
        return self._start(name, f"--address={self.address}")

    @property
    def worker(self) -> Node:
        return self.nodes[-1]

    def kill(self, node: Node) -> None:
        """SIGKILL every process of a node at once, then wait until none of them runs."""
        _kill_session(node.sid, signal.SIGKILL)
        assert _wait_until(lambda: not _session(node.sid), GONE_TIMEOUT_S), f"{node.name}: {_session(node.sid)}"

    def stop(self) -> list[int]:
        """Stop every node (SIGTERM, then SIGKILL); returns the processes of ours still running (must be none): the
        nodes' processes, anything naming our temp dir, and the backends the nodes and drivers of the tests started
        (each in a session of its own; they die with their parent). Waits until the dead ones are reaped too, so a
        `ps` right after shows nothing of ours."""
        for node in self.nodes:
            _kill_session(node.sid, signal.SIGTERM)
        for node in self.nodes:
            if not _wait_until(lambda: not _session(node.sid), STOP_GRACE_S, 0.2):
                _kill_session(node.sid, signal.SIGKILL)
        _wait_until(lambda: not any(_session(n.sid, live=False) for n in self.nodes), GONE_TIMEOUT_S, 0.2)
        backends = lambda: _backends("RAY_AUTH_TOKEN_PATH", str(self.root / "auth_token"))  # noqa: E731
        _wait_until(lambda: not backends(), GONE_TIMEOUT_S, 0.2)
        return sorted({pid for n in self.nodes for pid in _session(n.sid)} | set(_mentioning(str(self.root)))
                      | set(backends()))


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="mpr-", dir="/tmp"))  # short: Ray's socket paths live under it
    _token(root)
    ray_cluster = Cluster(root)
    try:
        ray_cluster.start_head()
        ray_cluster.start_worker()
        yield ray_cluster
    finally:
        left = ray_cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"Ray processes of the tests still running: {left}"


def write_sweep(folder: Path, seeds=(0, 1), backends=("numpy", "torch")) -> Path:
    """test_sweep's tiny sweep (a 16-unit MLP, one epoch, 60 random digits) with its dataset a path relative to folder,
    in folder/data."""
    folder.mkdir(parents=True, exist_ok=True)
    path = tiny_sweep(folder, seeds=seeds, backends=backends)
    (folder / "data").mkdir()
    (folder / "digits.npz").rename(folder / "data" / "digits.npz")
    path.write_text(path.read_text().replace(f"npz:{folder / 'digits.npz'}", "npz:data/digits.npz"))
    assert "npz:data/digits.npz" in path.read_text()
    return path


def sweep_args(cluster: Cluster | None, *extra: str) -> list[str]:
    ray = ["--executor", "ray"] + (["--address", cluster.address] if cluster else [])
    return ["sweep", "tiny.toml", "--out", "runs", "--threads", "1", *ray, *extra]


def run_sweep(folder: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return _python(folder, env, "-m", "experiments", *args, timeout=SWEEP_TIMEOUT_S)


def start_sweep(folder: Path, env: dict, *args: str) -> subprocess.Popen:
    """The sweep command in the background, in a session of its own (a terminal's Ctrl-C reaches the whole group)."""
    return subprocess.Popen([sys.executable, "-m", "experiments", *args], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def cells_root(folder: Path) -> Path:
    return folder / "runs" / "sweeps" / "tiny" / "cells"


def published(folder: Path) -> dict[str, int]:
    """Published cell key -> mtime_ns of its results.json."""
    return published_cells(folder / "runs" / "sweeps" / "tiny")


def expected_keys(folder: Path) -> set[str]:
    return {c.key for c in expand_cells(load_sweep(str(folder / "tiny.toml")))}


def key_of(folder: Path, seed: int, backend: str) -> str:
    return next(c.key for c in expand_cells(load_sweep(str(folder / "tiny.toml")))
                if c.factors["seed"] == seed and c.backend == backend)


def comparable_results(cell_dir: Path) -> str:
    """results.json without its time of creation, machine record and clock readings, as canonical JSON text (JSON
    writes floats exactly, so equal text means bit-identical numbers)."""
    document = {k: v for k, v in json.loads((cell_dir / "results.json").read_text()).items() if k not in NOT_COMPARED}
    for outcome in document["backends"].values():
        outcome.pop("load", None)  # the machine's load while it trained: a reading, like the clock fields
        outcome["metrics"] = {k: v for k, v in outcome["metrics"].items() if k not in CLOCK_FIELDS}
        outcome["history"] = [{k: v for k, v in record.items() if k not in CLOCK_FIELDS} for record in outcome["history"]]
    return json.dumps(document, sort_keys=True)


def comparable_history(cell_dir: Path) -> list[list[str]]:
    """history.csv as text fields, clock columns dropped."""
    header, *rows = [line.split(",") for line in (cell_dir / "history.csv").read_text().splitlines()]
    keep = [i for i, name in enumerate(header) if name not in CLOCK_FIELDS]
    return [[row[i] for i in keep] for row in [header, *rows]]


def assert_complete_once(folder: Path, before: dict[str, int] | None = None) -> None:
    """Every cell published once and registered once, all ok, no partial folder; cells in `before` untouched."""
    after = published(folder)
    expected = expected_keys(folder)
    assert set(after) == expected
    assert all(cell_status(cells_root(folder) / key) == "ok" for key in expected)
    assert not list(cells_root(folder).glob(".partial-*"))
    rows = load_runs(store_path(folder / "runs"), sweep="tiny")
    assert sorted(rows["cell_key"]) == sorted(expected), "each cell registered exactly once"
    assert (rows["status"] == "ok").all()
    if before is not None:
        assert {key: after[key] for key in before} == before, "finished cells must not be rerun"


def run_sweep_hiding_data(folder: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run the sweep, renaming folder/data away as soon as the driver reports the cells to run: it has read the
    dataset by then (its checks load it before Ray is reached), and no cell has started."""
    driver = start_sweep(folder, env, *args)
    try:
        seen = []
        for line in driver.stderr:
            seen.append(line)
            if " to run" in line:
                (folder / "data").rename(folder / "data-hidden")
                break
        stdout, stderr = driver.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert (folder / "data-hidden").is_dir(), "".join(seen)[-3000:]
    return subprocess.CompletedProcess(driver.args, driver.returncode, stdout, "".join(seen) + stderr)


@pytest.fixture(scope="module")
def both_runs(cluster, tmp_path_factory):
    """The 4-cell sweep on the local executor (1 thread) and on the cluster, each in its own folder, same layout; on
    the cluster the data folder is gone while the cells train."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("local", "ray")}
    for folder in folders.values():
        write_sweep(folder)
    local = run_sweep(folders["local"], cluster.env(), "sweep", "tiny.toml", "--out", "runs", "--threads", "1")
    assert local.returncode == 0, local.stderr[-3000:]
    on_ray = run_sweep_hiding_data(folders["ray"], cluster.env(), *sweep_args(cluster))
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    return folders, on_ray


@pytest.mark.parametrize("seed, backend", CELLS, ids=[f"seed{s}-{b}" for s, b in CELLS])
def test_ray_cell_is_bit_identical_to_the_local_executor(both_runs, seed, backend):
    folders, _ = both_runs
    key = key_of(folders["local"], seed, backend)
    local, on_ray = (cells_root(folders[name]) / key for name in ("local", "ray"))
    assert comparable_results(on_ray) == comparable_results(local)
    assert comparable_history(on_ray) == comparable_history(local)
    assert sorted(p.relative_to(on_ray) for p in on_ray.rglob("*")) == sorted(p.relative_to(local) for p in local.rglob("*"))


def test_ray_sweep_used_both_nodes_and_the_worker_touched_nothing_of_the_driver(cluster, both_runs):
    folders, on_ray = both_runs
    assert_complete_once(folders["ray"])
    assert "on Ray (127.0.0.1:" in " ".join(on_ray.stdout.split()) and "2 CPUs" in on_ray.stdout
    keys = expected_keys(folders["ray"])
    head, worker = cluster.nodes[:2]  # the run happened before any test replaced the worker node
    on_worker = {key for key in keys if f"cell {key} on node" in worker.logged_cells()}
    on_head = {key for key in keys if f"cell {key} on node" in head.logged_cells()}
    assert on_worker and on_head, "each node must have trained a cell, or the test proves nothing"
    assert f"(cwd {worker.cwd})" in worker.logged_cells()
    assert not (folders["ray"] / "data").exists(), "the cells trained with the driver's data folder gone"
    assert not list(worker.cwd.iterdir()), "the worker node wrote into its own folder"
    assert not list(head.cwd.iterdir()), "the head node wrote into its own folder"
    assert not worker.work_folders() and not head.work_folders(), "a cell's work folder was left behind"


def _kill_mid_cell(cluster: Cluster, folder: Path, victim: str, *args: str) -> subprocess.CompletedProcess:
    """Start the sweep, wait until a cell trains on the worker node, kill that node or that cell's Ray worker
    process, and let the sweep finish."""
    driver = start_sweep(folder, cluster.env(), *sweep_args(cluster, *args))
    try:
        assert _wait_until(lambda: cluster.worker.backend_processes() or driver.poll() is not None, SWEEP_TIMEOUT_S)
        backends = cluster.worker.backend_processes()
        assert backends, "no cell reached the worker node before the sweep ended"
        if victim == "node":
            cluster.kill(cluster.worker)
        else:
            psutil.Process(backends[0].ppid()).kill()  # the Ray worker running the cell; its backend dies with it
        assert _wait_until(lambda: not any(_alive(b.pid) for b in backends), GONE_TIMEOUT_S)
        stdout, stderr = driver.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    return subprocess.CompletedProcess(driver.args, driver.returncode, stdout, stderr)


def test_killed_worker_node_mid_cell_is_retried_and_no_cell_is_lost_or_duplicated(cluster, tmp_path):
    write_sweep(tmp_path, seeds=SLOW_SEEDS, backends=("torch",))
    try:
        result = _kill_mid_cell(cluster, tmp_path, "node")
    finally:
        cluster.start_worker("worker-2")  # the later tests want two nodes again
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restarted (attempt 2)" in result.stderr
    assert_complete_once(tmp_path)


def test_killed_worker_process_without_retries_fails_the_cell_and_a_rerun_completes(cluster, tmp_path):
    write_sweep(tmp_path, seeds=SLOW_SEEDS, backends=("torch",))
    first = _kill_mid_cell(cluster, tmp_path, "process", "--retries", "0")
    assert first.returncode == 1, first.stderr[-3000:]
    failures = [line for line in first.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failures) == 1 and "WorkerCrashedError (after 0 retries)" in failures[0], first.stdout[-3000:]
    before = published(tmp_path)
    assert len(before) == len(SLOW_SEEDS) - 1, "the other cells must finish"
    assert failures[0].split()[1] not in before, "a failed task publishes nothing"

    rerun = run_sweep(tmp_path, cluster.env(), *sweep_args(cluster))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(before)} already finished, 1 to run" in rerun.stderr
    assert_complete_once(tmp_path, before)


CTRL_C_SEEDS = [0, 1, 2, 3, 4, 5]
"""Three waves of two cells on the two 1-CPU nodes: when the first cell is published, at least two have not started,
so the interrupt always leaves work undone (cells in flight may still finish and be published during the cancel)."""


def test_ctrl_c_stops_the_ray_sweep_cleanly_and_keeps_what_finished(cluster, tmp_path):
    write_sweep(tmp_path, seeds=CTRL_C_SEEDS, backends=("torch",))
    left_before = {f for node in cluster.nodes for f in node.work_folders()}  # a killed worker's, from another test
    driver = start_sweep(tmp_path, cluster.env(), *sweep_args(cluster))
    in_flight = lambda: [p for node in cluster.nodes for p in node.backend_processes()]  # noqa: E731
    try:
        assert _wait_until(lambda: (published(tmp_path) and in_flight()) or driver.poll() is not None, SWEEP_TIMEOUT_S)
        training = in_flight()
        os.killpg(driver.pid, signal.SIGINT)
        _, stderr = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr[-3000:]
    assert _wait_until(lambda: not any(_alive(p.pid) for p in training) and not in_flight(), GONE_TIMEOUT_S), \
        "the cells in flight must be cancelled on the cluster"
    left = {f for node in cluster.nodes for f in node.work_folders()} - left_before
    assert not left, "a cancelled cell must clean up after itself"
    before = published(tmp_path)
    assert 1 <= len(before) < len(CTRL_C_SEEDS)
    assert all(cell_status(cells_root(tmp_path) / key) == "ok" for key in before)
    assert not list(cells_root(tmp_path).glob(".partial-*"))

    rerun = run_sweep(tmp_path, cluster.env(), *sweep_args(cluster))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_complete_once(tmp_path, before)


def test_without_address_a_local_ray_instance_runs_the_sweep_and_leaves_nothing_behind(tmp_path):
    ray_tmp = Path(tempfile.mkdtemp(prefix="mpl-", dir="/tmp"))  # RAY_TMPDIR and TMPDIR: where the instance lives
    home = tmp_path / "home"
    home.mkdir()
    default_ray = set(Path("/tmp/ray").glob("*"))  # Ray's shared default folder, for the record: untouched
    env = {k: v for k, v in _env(ray_tmp / "unused").items() if not k.startswith("RAY_AUTH_")}
    env.update(RAY_TMPDIR=str(ray_tmp), TMPDIR=str(ray_tmp), HOME=str(home))
    write_sweep(tmp_path, seeds=[0], backends=("numpy",))
    driver = start_sweep(tmp_path, env, *sweep_args(None))
    try:  # the instance's processes are the driver's children, in its session
        lived = _wait_until(lambda: list(ray_tmp.glob("mp-ray-*/session_*")) or driver.poll() is not None,
                            SWEEP_TIMEOUT_S) and list(ray_tmp.glob("mp-ray-*/session_*"))
        stdout, stderr = driver.communicate(timeout=SWEEP_TIMEOUT_S)
        assert driver.returncode == 0, stderr[-3000:]
        assert "a local instance" in stdout
        assert lived, "the instance must have lived in a private folder under RAY_TMPDIR"
        assert_complete_once(tmp_path)
        assert _wait_until(lambda: not _session(driver.pid), GONE_TIMEOUT_S), f"left running: {_session(driver.pid)}"
        assert _wait_until(lambda: not _backends("RAY_TMPDIR", str(ray_tmp)), GONE_TIMEOUT_S)
        assert not list(ray_tmp.iterdir()), "the instance's folder (sessions, logs, sockets, work folders) must go"
        assert not list(home.iterdir()), "nothing in HOME: no token saved for later clusters, no ~/.ray"
        assert set(Path("/tmp/ray").glob("*")) <= default_ray
    finally:
        _kill_session(driver.pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)


STAND_IN_RAY = """import pathlib
pathlib.Path(__file__).with_name("imported").touch()
raise ImportError("the tests' stand-in for Ray: bad input must be found before Ray is imported")
"""


@pytest.mark.parametrize("case, message", [
    ("running", "already running in another process"),
    ("missing-data", "no/such/digits.npz"),
    ("no-step", "training.batch_size: 1000"),
    ("out-is-a-file", "exists and is not a folder"),
    ("threads", "a local Ray instance has this machine's"),
])
def test_bad_input_is_found_before_ray_starts_and_writes_nothing(tmp_path, case, message):
    """Every read-only check runs before Ray is imported: a stand-in `ray` package first on the path records an
    import. The lock case: a running sweep holds the lock, and nothing else appears in its folder."""
    import fcntl

    stand_in = tmp_path / "stand-in"
    (stand_in / "ray").mkdir(parents=True)
    (stand_in / "ray" / "__init__.py").write_text(STAND_IN_RAY)
    write_sweep(tmp_path, seeds=[0], backends=("numpy",))
    sweep, args = tmp_path / "tiny.toml", sweep_args(None)
    if case == "missing-data":
        sweep.write_text(sweep.read_text().replace("npz:data/digits.npz", "npz:no/such/digits.npz"))
    if case == "no-step":
        sweep.write_text(sweep.read_text().replace('"training.batch_size" = 20',
                                                   '"training.batch_size" = 1000\n"training.drop_last" = true'))
    if case == "out-is-a-file":
        (tmp_path / "runs").write_text("not a folder")
    if case == "threads":
        args = [*args, "--threads", str((os.cpu_count() or 1) + 1)]
    root = tmp_path / "runs" / "sweeps" / "tiny"
    lock = None
    if case == "running":
        root.mkdir(parents=True)
        lock = open(root / ".lock", "w")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running sweep holds it
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    env = _env(tmp_path / "unused", PYTHONPATH=os.pathsep.join(filter(None, [str(stand_in), os.environ.get("PYTHONPATH")])))
    try:
        result = run_sweep(tmp_path, env, *args)
    finally:
        if lock is not None:
            lock.close()
    assert result.returncode == 2, result.stderr[-3000:]
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (stand_in / "ray" / "imported").exists(), "Ray was imported before the input was checked"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "something was written"


def test_the_drivers_environment_drops_an_inherited_cluster_address(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_ADDRESS", "203.0.113.1:6379")
    monkeypatch.setenv("MNIST_PARITY_DATA", str(tmp_path / "elsewhere"))
    seen = _python(tmp_path, _env(tmp_path / "token"), "-c",
                   "import os; print(os.environ.get('RAY_ADDRESS'), os.environ.get('MNIST_PARITY_DATA'))")
    assert seen.stdout.split() == ["None", "None"], seen.stdout


@pytest.mark.parametrize("args, message, env", [
    (["--executor", "spark"], "invalid choice: 'spark'", {}),
    (["--executor", "ray", "--address", "nowhere"], "expected host:port, ray://host:port or auto", {}),
    (["--address", "127.0.0.1:6379"], "--address applies to --executor ray only", {}),
    (["--executor", "ray", "--retries", "-1"], "--retries: -1", {}),
    (["--executor", "ray", "--address", "127.0.0.1:{closed_port}"], "no Ray cluster answers there", {}),
    (["--executor", "ray", "--address", "{cluster}", "--threads", "2"], "the largest node of the Ray cluster has 1 (2 in all)",
     {}),
    # a wrong token: Ray retries its connection once a second (20 times by default; 2 here) printing a warning each
    (["--executor", "ray", "--address", "{cluster}"], "AuthenticationError: RPC error: InvalidAuthToken",
     {"RAY_AUTH_TOKEN": "0" * 64, "RAY_NUM_REDIS_GET_RETRIES": "2"}),
    (["--executor", "ray", "--address", "{cluster}"], "no authentication token was found",
     {"RAY_AUTH_TOKEN_PATH": None, "HOME": "{home}"}),  # None: not set
], ids=["unknown-executor", "malformed-address", "address-without-ray", "negative-retries", "dead-address",
        "too-many-threads", "wrong-token", "no-token"])
def test_bad_ray_options_are_one_line_exit_2_and_write_nothing(cluster, tmp_path, args, message, env):
    write_sweep(tmp_path, seeds=[0], backends=("numpy",))
    (tmp_path / "home").mkdir()
    args = [a.format(closed_port=_free_port(), cluster=cluster.address) for a in args]
    env = {k: v for k, v in cluster.env(**env).items() if v is not None}
    env = {k: v.format(home=tmp_path / "home") if k == "HOME" else v for k, v in env.items()}
    result = run_sweep(tmp_path, env, "sweep", "tiny.toml", "--out", "runs", *args)
    assert result.returncode == 2, result.stderr[-3000:]
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists()
    assert not list((tmp_path / "home").iterdir())


def test_bench_sweep_refuses_a_non_empty_out(tmp_path):
    """Refused, not reused: a finished cell there would be skipped, timing nothing (a closed port as the address, so
    even a bench that went ahead would reach no Ray)."""
    write_sweep(tmp_path, seeds=[0], backends=("numpy",))
    out = tmp_path / "bench"
    out.mkdir()
    (out / "earlier.txt").write_text("an earlier bench")
    result = run_sweep(tmp_path, _env(tmp_path / "unused"), "bench-sweep", "tiny.toml", "--out", "bench", "--address",
                       f"127.0.0.1:{_free_port()}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "not empty" in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert [p.name for p in out.iterdir()] == ["earlier.txt"]


def test_cluster_launcher_example_follows_the_schema_ray_ships():
    """The cloud example is on paper (never launched here); at least it must be a config `ray up` would accept."""
    import jsonschema
    import ray
    import yaml

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    text = CLUSTER_EXAMPLE.read_text()
    jsonschema.validate(yaml.safe_load(text), schema)
    assert "NOT TESTED HERE" in text


def test_a_killed_cells_work_folder_is_removed_by_the_next_cell_on_its_node_only(tmp_path, monkeypatch):
    from experiments.sweep.ray_task import remove_orphaned_work, work_prefix

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    node, other = "a1" * 28, "b2" * 28  # node ids: 56 hex digits
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"{work_prefix(node)}{dead.stdout.strip()}-key-x"
    alive = tmp_path / f"{work_prefix(node)}{os.getpid()}-key-y"
    elsewhere = tmp_path / f"{work_prefix(other)}{dead.stdout.strip()}-key-z"  # another node's, in a shared temp dir
    for folder in (orphan, alive, elsewhere):
        (folder / "logs").mkdir(parents=True)
    remove_orphaned_work(node)
    assert not orphan.exists() and alive.exists() and elsewhere.exists()


# The driver's bookkeeping without a cluster: a stand-in for the few Ray calls it makes (wait, get, cancel), with
# Ray's own exception classes.

def _cell(name: str) -> "Cell":
    from experiments.sweep.cells import Cell

    return Cell(key=f"{name}-numpy", backend="numpy", factors={"seed": name}, overrides=[],
                spec={"data": {"dataset": "digits"}, "training": {"epochs": 2}})


def _returned(cell, files: dict | None = None) -> dict:
    results = json.dumps({"backends": {"numpy": {"status": "ok"}}}).encode()
    summary = {"key": cell.key, "status": "ok", "reason": "", "test_accuracy": 0.5, "seconds": 1.0, "train_seconds": 0.9}
    return {"files": files if files is not None else {"results.json": results, "logs/numpy.log": b"trained\n"},
            "summary": summary, "node": "n1"}


class _Ref:
    """A task's result to come: ready or not, its outcome (a value, or an exception get raises), and what a polite
    cancel turns it into (None: it goes on running, and is killed after the grace period)."""

    def __init__(self, outcome, ready: bool = True, after_cancel=None):
        self.outcome, self.ready, self.after_cancel = outcome, ready, after_cancel


class _StandInRay:
    def __init__(self, interrupt_at_wait: int | None = None):
        self.waits, self.interrupt_at_wait, self.cancelled = 0, interrupt_at_wait, []

    def wait(self, refs, num_returns=1, timeout=None):
        self.waits += 1
        if self.waits == self.interrupt_at_wait:
            raise KeyboardInterrupt  # Ctrl-C while the driver waits
        ready = [ref for ref in refs if ref.ready][:num_returns]
        return ready, [ref for ref in refs if ref not in ready]

    def get(self, ref, timeout=None):
        if isinstance(ref.outcome, BaseException):
            raise ref.outcome
        return ref.outcome

    def cancel(self, ref, force=False):
        self.cancelled.append((ref, force))
        if not force and ref.after_cancel is not None:
            ref.outcome, ref.ready = ref.after_cancel, True


class _Task:
    """task.remote(...) hands out the prepared refs in order."""

    def __init__(self, refs: list):
        self.refs = list(refs)

    def remote(self, shipped, dataset, inbox):
        assert set(shipped) >= {"sweep", "cell", "cells_dir", "threads"} and shipped["data_dir"] is None
        return self.refs.pop(0)


def _driver(monkeypatch, tmp_path, cells, refs, stand_in: _StandInRay, store=None):
    import types

    import ray.exceptions  # noqa: F401  (the real exception classes, under the stand-in module)

    from experiments.sweep.bookkeeping import SweepState
    from experiments.sweep.ray_executor import _Driver

    module = types.ModuleType("ray")
    module.wait, module.get, module.cancel, module.exceptions = (stand_in.wait, stand_in.get, stand_in.cancel,
                                                                   sys.modules["ray.exceptions"])
    monkeypatch.setitem(sys.modules, "ray", module)
    seen = []
    state = SweepState(total=len(cells))
    (tmp_path / "cells").mkdir()
    driver = _Driver(types.SimpleNamespace(name="tiny"), tmp_path / "cells", state,
                     lambda state, what, payload: seen.append((what, payload)), threads=1, retries=0, store=store,
                     task=_Task(refs), inbox=None)
    return driver, state, seen


def test_a_cell_that_cannot_be_published_fails_alone_and_the_sweep_goes_on(monkeypatch, tmp_path):
    bad, good = _cell("bad"), _cell("good")
    refs = [_Ref(_returned(bad, {"../outside.txt": b"escapes the cell"})), _Ref(_returned(good))]
    driver, state, seen = _driver(monkeypatch, tmp_path, [bad, good], refs, _StandInRay())
    driver.run([bad, good], 2, {"digits": None})
    finished = {payload["key"]: payload for what, payload in seen if what == "cell-finished"}
    assert finished[bad.key]["status"] == "failed"
    assert "publishing on the driver: ValueError" in finished[bad.key]["reason"]
    assert finished[good.key]["status"] == "ok" and cell_status(tmp_path / "cells" / good.key) == "ok"
    assert state.done == 2 and state.failed == 1 and not driver.in_flight
    assert sorted(p.name for p in (tmp_path / "cells").iterdir()) == [good.key], "no partial folder, nothing else"
    assert not (tmp_path / "outside.txt").exists()


def test_ctrl_c_keeps_the_cell_being_published_and_those_finishing_during_the_cancel(monkeypatch, tmp_path):
    from ray.exceptions import TaskCancelledError

    import experiments.sweep.ray_executor as executor

    publishing, back, cancelled, stuck = (_cell(name) for name in ("publishing", "back", "cancelled", "stuck"))
    refs = [_Ref(_returned(publishing)),
            _Ref(None, ready=False, after_cancel=_returned(back)),  # it finished before the cancel reached it
            _Ref(None, ready=False, after_cancel=TaskCancelledError()),
            _Ref(None, ready=False)]  # ignores the polite cancel: killed after the grace period
    stand_in = _StandInRay()
    driver, state, seen = _driver(monkeypatch, tmp_path, [publishing, back, cancelled, stuck], refs, stand_in)
    real_publish, calls = executor.publish_cell, []

    def interrupted_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C lands while the first cell back is being published
        return real_publish(*args)

    monkeypatch.setattr(executor, "publish_cell", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        driver.run([publishing, back, cancelled, stuck], 4, {"digits": None})
    finished = {payload["key"]: payload["status"] for what, payload in seen if what == "cell-finished"}
    assert finished == {publishing.key: "ok", back.key: "ok"}, "finished cells are published, cancelled ones dropped"
    assert all(cell_status(tmp_path / "cells" / cell.key) == "ok" for cell in (publishing, back))
    assert sorted(p.name for p in (tmp_path / "cells").iterdir()) == sorted([publishing.key, back.key])
    assert state.failed == 0 and list(driver.in_flight) == [refs[3]], "only the one killed is left unfinished"
    assert [(refs.index(ref), force) for ref, force in stand_in.cancelled] == [(1, False), (2, False), (3, False), (3, True)]


def test_progress_relay_passes_each_epoch_once_and_starts_a_retried_cell_over():
    from experiments.sweep.bookkeeping import SweepState
    from experiments.sweep.display import SweepDisplay
    from experiments.sweep.ray_progress import ProgressRelay
    from rich.console import Console

    cell, state, seen = _cell("a"), SweepState(total=1), []
    display = SweepDisplay(Console(file=open(os.devnull, "w")))
    display(state, "start", {"pending": [cell.to_dict()]})

    def on_change(state, what, payload):
        seen.append((what, payload.get("attempt") if what != "epoch" else payload["epoch"]))
        display(state, what, payload)

    relay = ProgressRelay(state, on_change, {cell.key: cell})
    first, second = {"attempt": "n1-10-1"}, {"attempt": "n2-20-2"}
    relay.forward([(cell.key, {"event": "cell-started", "node": "n1", **first}),
                   (cell.key, {"event": "epoch", "epoch": 1, **first}),
                   (cell.key, {"event": "epoch", "epoch": 1, **first})])  # the same epoch twice
    assert seen == [("cell-started", 1), ("epoch", 1)] and display.epochs_done == 1
    relay.forward([(cell.key, {"event": "cell-started", "node": "n2", **second}),  # its node died: Ray retries it
                   (cell.key, {"event": "epoch", "epoch": 2, **first}),  # late news from the lost attempt
                   (cell.key, {"event": "epoch", "epoch": 1, **second})])
    assert seen[2:] == [("cell-restarted", 2), ("epoch", 1)]
    assert display.epochs_done == 1 and display.cell_epochs[cell.key] == 1, "the lost attempt's epoch is taken back"
    relay.forward([(cell.key, {"event": "epoch", "epoch": 2, **second})])
    relay.finished(cell.key)
    relay.forward([(cell.key, {"event": "epoch", "epoch": 2, **second})])
    assert seen[4:] == [("epoch", 2)] and display.epochs_done == 2 == display.epochs_total
