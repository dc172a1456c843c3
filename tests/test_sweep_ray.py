"""`mnist-parity sweep --executor ray` on a real two-node Ray cluster started here (`ray start --head` plus
`ray start --address`, 1 CPU and a temp dir each): results bit-identical to the local executor, a worker node and a
worker process killed mid-cell, Ctrl-C, a local instance, bad options; and no Ray process of ours left afterwards.

The worker node runs in an empty folder of its own and never sees the driver's: the sweep's dataset is a path
relative to the driver's folder ("npz:digits.npz") and --out is relative too, so a worker that read the dataset or
wrote a cell itself would fail or leave files in its own folder. Ray resolves 127.0.0.1 to this machine's address
for a multi-node cluster; every connection stays on this machine.
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
from experiments.sweep.task import cell_status
from tests.cli_helpers import mnist_parity
from tests.test_sweep import published as published_cells, tiny_sweep

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 120  # `ray start` of one node on a loaded 2-core machine
SWEEP_TIMEOUT_S = 300
GONE_TIMEOUT_S = 20.0  # after a kill: every process of a node has exited
STOP_GRACE_S = 3.0  # teardown: SIGTERM, then SIGKILL for what still runs
CLOCK_FIELDS = {"train_time_s", "samples_per_s", "steady_samples_per_s", "epoch_time_s", "elapsed_s"}  # read from a clock
NOT_COMPARED = {"created", "environment"}  # when, and on which machine: the rest of results.json must match bit for bit
CELLS = [(0, "numpy"), (0, "torch"), (1, "numpy"), (1, "torch")]  # the 4-cell sweep: seed x backend
SLOW_SEEDS = [0, 1, 2, 3]  # the sweeps a test interrupts: torch cells of about 3 s, long enough to be caught mid-cell
DRIVER_ENV_DROP = ("RAY_ADDRESS", "MNIST_PARITY_DATA")
CLUSTER_EXAMPLE = Path(__file__).resolve().parent.parent / "experiments" / "sweep" / "ray-cluster.example.yaml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(token: Path, **extra: str) -> dict:
    """The environment of a node or a driver: token authentication with the tests' own token (Ray's default token in
    ~/.ray is never read or written), no usage statistics, no inherited cluster address or data folder."""
    env = {k: v for k, v in os.environ.items() if k not in DRIVER_ENV_DROP}
    return {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
            "COLUMNS": "200", **extra}


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
        """Stop every node (SIGTERM, then SIGKILL); returns the processes of ours still running (must be none).
        Waits until the dead ones are reaped too, so a `ps` right after shows nothing of ours."""
        for node in self.nodes:
            _kill_session(node.sid, signal.SIGTERM)
        for node in self.nodes:
            if not _wait_until(lambda: not _session(node.sid), STOP_GRACE_S, 0.2):
                _kill_session(node.sid, signal.SIGKILL)
        _wait_until(lambda: not any(_session(n.sid, live=False) for n in self.nodes), GONE_TIMEOUT_S, 0.2)
        return sorted({pid for n in self.nodes for pid in _session(n.sid)} | set(_mentioning(str(self.root))))


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
    """test_sweep's tiny sweep (a 16-unit MLP, one epoch, 60 random digits) with its dataset a path relative to folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = tiny_sweep(folder, seeds=seeds, backends=backends)
    path.write_text(path.read_text().replace(f"npz:{folder / 'digits.npz'}", "npz:digits.npz"))
    assert "npz:digits.npz" in path.read_text()
    return path


def sweep_args(cluster: Cluster | None, *extra: str) -> list[str]:
    ray = ["--executor", "ray"] + (["--address", cluster.address] if cluster else [])
    return ["sweep", "tiny.toml", "--out", "runs", "--threads", "1", *ray, *extra]


def run_sweep(folder: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return mnist_parity(*args, cwd=folder, env=env, timeout=SWEEP_TIMEOUT_S)


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


@pytest.fixture(scope="module")
def both_runs(cluster, tmp_path_factory):
    """The 4-cell sweep on the local executor (1 thread) and on the cluster, each in its own folder, same layout."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("local", "ray")}
    for folder in folders.values():
        write_sweep(folder)
    local = run_sweep(folders["local"], cluster.env(), "sweep", "tiny.toml", "--out", "runs", "--threads", "1")
    assert local.returncode == 0, local.stderr[-3000:]
    on_ray = run_sweep(folders["ray"], cluster.env(), *sweep_args(cluster))
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
    assert not list(worker.cwd.iterdir()), "the worker node wrote into its own folder"
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


def test_ctrl_c_stops_the_ray_sweep_cleanly_and_keeps_what_finished(cluster, tmp_path):
    write_sweep(tmp_path, seeds=SLOW_SEEDS, backends=("torch",))
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
    assert 1 <= len(before) < len(SLOW_SEEDS)
    assert all(cell_status(cells_root(tmp_path) / key) == "ok" for key in before)
    assert not list(cells_root(tmp_path).glob(".partial-*"))

    rerun = run_sweep(tmp_path, cluster.env(), *sweep_args(cluster))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_complete_once(tmp_path, before)


def test_without_address_a_local_ray_instance_runs_the_sweep_and_is_stopped_after(tmp_path):
    ray_tmp = Path(tempfile.mkdtemp(prefix="mpl-", dir="/tmp"))  # RAY_TMPDIR: where the local instance lives
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in _env(ray_tmp / "unused").items() if not k.startswith("RAY_AUTH_")}
    write_sweep(tmp_path, seeds=[0], backends=("numpy",))
    driver = start_sweep(tmp_path, {**env, "RAY_TMPDIR": str(ray_tmp), "HOME": str(home)}, *sweep_args(None))
    try:  # the instance's processes are the driver's children, in its session
        stdout, stderr = driver.communicate(timeout=SWEEP_TIMEOUT_S)
        assert driver.returncode == 0, stderr[-3000:]
        assert "a local instance" in stdout
        assert_complete_once(tmp_path)
        assert list(ray_tmp.rglob("session_*")), "the instance must have lived under RAY_TMPDIR"
        assert not (home / ".ray" / "auth_token").exists(), "the instance's token must not be saved for later clusters"
        assert _wait_until(lambda: not _session(driver.pid), GONE_TIMEOUT_S), f"left running: {_session(driver.pid)}"
    finally:
        _kill_session(driver.pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize("args, message", [
    (["--executor", "spark"], "invalid choice: 'spark'"),
    (["--executor", "ray", "--address", "nowhere"], "expected host:port, ray://host:port or auto"),
    (["--address", "127.0.0.1:6379"], "--address applies to --executor ray only"),
    (["--executor", "ray", "--retries", "-1"], "--retries: -1"),
    (["--executor", "ray", "--address", "127.0.0.1:{closed_port}"], "no Ray cluster answers there"),
    (["--executor", "ray", "--address", "{cluster}", "--threads", "2"], "the largest node of the Ray cluster has 1 (2 in all)"),
], ids=["unknown-executor", "malformed-address", "address-without-ray", "negative-retries", "dead-address", "too-many-threads"])
def test_bad_ray_options_are_one_line_exit_2_and_write_nothing(cluster, tmp_path, args, message):
    write_sweep(tmp_path, seeds=[0], backends=("numpy",))
    args = [a.format(closed_port=_free_port(), cluster=cluster.address) for a in args]
    result = run_sweep(tmp_path, cluster.env(), "sweep", "tiny.toml", "--out", "runs", *args)
    assert result.returncode == 2, result.stderr[-3000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists()


def test_cluster_launcher_example_follows_the_schema_ray_ships():
    """The cloud example is on paper (never launched here); at least it must be a config `ray up` would accept."""
    import jsonschema
    import ray
    import yaml

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    text = CLUSTER_EXAMPLE.read_text()
    jsonschema.validate(yaml.safe_load(text), schema)
    assert "NOT TESTED HERE" in text


def test_a_killed_cells_work_folder_is_removed_by_the_next_cell_on_its_node(tmp_path, monkeypatch):
    from experiments.sweep.ray_task import WORK_PREFIX, remove_orphaned_work

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan, alive = tmp_path / f"{WORK_PREFIX}{dead.stdout.strip()}-key-x", tmp_path / f"{WORK_PREFIX}{os.getpid()}-key-y"
    for folder in (orphan, alive):
        (folder / "logs").mkdir(parents=True)
    remove_orphaned_work()
    assert not orphan.exists() and alive.exists()
