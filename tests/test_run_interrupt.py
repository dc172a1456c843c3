"""A run stopped while its second backend trains keeps the first backend's result, on disk and in the store.

SIGINT and SIGTERM stop the run cleanly (exit 130 and 143, the backend in training marked "interrupted", the
finished one registered); SIGKILL leaves the saved results.json, which the next command that opens the store
registers; `run --resume` trains what did not finish. Nothing is left outside --out (the scratch folder lives in
the run folder) and no worker outlives its run.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.cli_helpers import mnist_parity, read_results

# The slow oracle first (seconds an epoch), then jax, whose worker needs seconds just to import and compile:
# a stop GRACE_S after jax starts lands while it is busy, and a resume of jax alone is quick.
FIRST, SECOND = "numpy", "jax"
EPOCHS = 2
WAIT_S = 240  # for the second backend to start on a busy 2-core machine
GRACE_S = 1.0  # after it starts: its worker is still importing, compiling or training
SECOND_SIGNAL_S = 0.05  # the second stop signal comes while the first one's cleanup runs


def _start(out: Path, tmp: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "experiments", "run", "mlp-relu-adam", "--backends", f"{FIRST},{SECOND}", "--out", str(out),
               "--dataset", "mnist-subset", "--epochs", str(EPOCHS), "--threads", "1"]
    env = {**os.environ, "TMPDIR": str(tmp / "system-tmp"), "COLUMNS": "200"}
    (tmp / "system-tmp").mkdir()
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_second(out: Path, process: subprocess.Popen) -> Path:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for path in out.glob("*/results.json"):
            try:
                backends = json.loads(path.read_text())["backends"]
            except ValueError:
                continue
            if backends[SECOND]["status"] == "running":
                time.sleep(GRACE_S)
                return path.parent
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"{SECOND} never started within {WAIT_S} s")


def _stored(store: Path, run_dir: Path) -> dict[str, str]:
    """{backend: status} of run_dir's rows in the store."""
    if not store.exists():
        return {}
    with sqlite3.connect(store) as connection:
        return dict(connection.execute("SELECT backend, status FROM runs WHERE run_id = ?", (run_dir.name,)).fetchall())


def _workers_gone(children: list[psutil.Process], timeout: float = 3.0) -> bool:
    """True when every worker ended within timeout (killed with its run: far sooner than it could finish training)."""
    _, alive = psutil.wait_procs(children, timeout=timeout)
    return not alive


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_stop_keeps_the_finished_backend(tmp_path, signum, exit_code):
    out = tmp_path / "runs"
    process = _start(out, tmp_path)
    run_dir = _wait_for_second(out, process)
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signum)
    time.sleep(SECOND_SIGNAL_S)  # an impatient user presses Ctrl-C again while the run saves its results
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exit_code, stderr[-2000:]
    assert "Traceback" not in stderr and "trains the rest" in stderr
    document = read_results(run_dir)
    assert document["backends"][FIRST]["status"] == "ok"
    assert document["backends"][FIRST]["metrics"]["test_accuracy"] > 0.1
    assert document["backends"][SECOND]["status"] == "interrupted"
    assert signal.Signals(signum).name in document["backends"][SECOND]["reason"]
    assert _stored(out / "results.sqlite", run_dir) == {FIRST: "ok", SECOND: "interrupted"}
    assert sorted(p.name for p in run_dir.iterdir()) == ["history.csv", "logs", "results.json"]  # no scratch, no marker
    assert not any((tmp_path / "system-tmp").iterdir())
    assert _workers_gone(children)


def test_sigkill_keeps_the_result_the_next_command_registers_it_and_resume_finishes(tmp_path):
    out = tmp_path / "runs"
    process = _start(out, tmp_path)
    run_dir = _wait_for_second(out, process)
    children = psutil.Process(process.pid).children(recursive=True)
    assert children, "the second backend's worker should be running"
    process.kill()
    process.communicate(timeout=60)
    assert _workers_gone(children), "a worker outlived its killed run"
    assert not any((tmp_path / "system-tmp").iterdir()), "scratch left outside --out"
    document = read_results(run_dir)
    assert (document["backends"][FIRST]["status"], document["backends"][SECOND]["status"]) == ("ok", "running")
    assert _stored(out / "results.sqlite", run_dir) == {}

    other = mnist_parity("run", "mlp-relu-adam", "--backends", "numpy", "--epochs", "1", "--dataset", "mnist-subset", "--out", str(out),
                         "--set", 'model.hidden=[{units = 8, activation = "relu"}]')
    assert other.returncode == 0, other.stderr[-2000:]
    assert _stored(out / "results.sqlite", run_dir) == {FIRST: "ok", SECOND: "interrupted"}, "the next command did not register it"

    resumed = mnist_parity("run", "--resume", str(run_dir), "--threads", "1", env={"TMPDIR": str(tmp_path / "system-tmp")})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    document = read_results(run_dir)
    assert [b["status"] for b in document["backends"].values()] == ["ok", "ok"]
    assert [len(b["history"]) for b in document["backends"].values()] == [EPOCHS, EPOCHS]
    assert document["resumed"][0]["backends"] == [SECOND]
    assert _stored(out / "results.sqlite", run_dir) == {FIRST: "ok", SECOND: "ok"}
    assert sorted(p.name for p in run_dir.iterdir()) == ["history.csv", "logs", "results.json"]
