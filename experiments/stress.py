"""Stress checks for the worker thread environment (issue 10): reproducibility and speed under load.

    python -m experiments.stress reproducibility [--runs 30] [--load 3] [--backends torch] [--threads 2]
    python -m experiments.stress threads [--load 3] [--epochs 10]

Both drive the real `mnist-parity run` command in subprocesses while `--load` other training
processes (`mnist-parity run` loops of keras, jax and torch, several at once) share the machine:
busy loops alone did not reproduce the flip, so the load is real training. Everything is written
under one temporary folder that is removed at the end; every process started here runs in its own
session and its whole group is killed at the end, on Ctrl-C and on SIGTERM too. Both commands are
bounded in time (--max-minutes, and a timeout per run).

`reproducibility` exits 0 only when every run's test loss is bit-identical; `threads` is a
benchmark that prints seconds and ratios, never a pass/fail test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOAD_BACKENDS = ("keras", "jax", "torch")  # the load cycles through these, one backend per process
LOAD_EPOCHS = 20  # one load run lasts tens of seconds; it is restarted until the load stops
RUN_TIMEOUT_S = 600  # one measured run; a collapse of the old environment takes minutes, not hours


def mnist_parity() -> list[str]:
    """The `mnist-parity` command as `python -m experiments` (the same main as the installed script).

    Run as a module from the working directory, so that a copy of the tree (an old
    experiments/threads.py, say) measures its own code rather than the installed one.
    """
    return [sys.executable, "-m", "experiments"]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """A child in its own session, so that its whole process group (the run and its worker) can be killed.

    TMPDIR points into this script's folder: a run killed mid-way leaves its scratch files there,
    and they go when the folder is removed.
    """
    scratch = log.parent / "tmp"
    scratch.mkdir(exist_ok=True)
    with open(log, "ab") as handle:
        return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "TMPDIR": str(scratch)})


def _kill(process: subprocess.Popen) -> None:
    """Kill the process group this script started for `process` (its pid is the group id) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class Load:
    """`count` training processes kept running (each restarted when it ends) until stop()."""

    def __init__(self, count: int, folder: Path, preset: str) -> None:
        self.count, self.folder, self.preset = count, folder, preset
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.started = 0

    def _launch(self, slot: int) -> subprocess.Popen:
        backend = LOAD_BACKENDS[slot % len(LOAD_BACKENDS)]
        out = self.folder / f"load-{slot}"
        shutil.rmtree(out, ignore_errors=True)  # keep only the current run of each slot
        self.started += 1
        return _start([*mnist_parity(), "run", self.preset, "--backends", backend, "--epochs", str(LOAD_EPOCHS),
                       "--no-download", "--seed", str(self.started), "--out", str(out)], self.folder / f"load-{slot}.log")

    def keep_up(self) -> None:
        """Restart every load process that has ended (called between measured runs and while waiting)."""
        for slot, process in enumerate(self.processes):
            if process is None or process.poll() is not None:
                self.processes[slot] = self._launch(slot)

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                _kill(process)
        self.processes = [None] * self.count


def measured_run(folder: Path, name: str, preset: str, backend: str, epochs: int, seed: int, threads: int,
                 load: Load | None, timeout_s: float) -> dict:
    """One `mnist-parity run`; returns that backend's metrics from results.json plus the wall time.

    While it runs, the load is kept up (polled every 0.2 s), so the machine stays loaded throughout.
    """
    out = folder / name
    process = _start([*mnist_parity(), "run", preset, "--backends", backend, "--epochs", str(epochs), "--seed", str(seed),
                      "--threads", str(threads), "--no-download", "--out", str(out)], folder / f"{name}.log")
    tick = time.perf_counter()
    try:
        while process.poll() is None:
            if time.perf_counter() - tick > timeout_s:
                raise TimeoutError(f"{name}: no result after {timeout_s:.0f} s")
            if load is not None:
                load.keep_up()
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            _kill(process)
    wall = time.perf_counter() - tick
    results = sorted(out.glob("*/results.json"))
    if process.returncode != 0 or not results:
        raise RuntimeError(f"{name}: mnist-parity run exited {process.returncode}; see the log tail:\n"
                           + (folder / f"{name}.log").read_text(errors="replace")[-2000:])
    record = json.loads(results[0].read_text())["backends"][backend]
    if record["status"] != "ok":
        raise RuntimeError(f"{name}: {backend} failed: {record.get('reason')}")
    shutil.rmtree(out)
    return {**record["metrics"], "wall_s": wall, "settings": record["settings"]}


def _interrupt(signum, frame):
    """SIGINT and SIGTERM end the script as Ctrl-C does, so the same cleanup runs."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def scratch_and_load(count: int, preset: str):
    """A temporary folder and a Load in it; on leaving (normally, Ctrl-C or SIGTERM) the load is killed, the folder removed."""
    # SIGINT too: a shell starts background jobs with it ignored, and Python then keeps it ignored.
    previous = {number: signal.signal(number, _interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    folder = Path(tempfile.mkdtemp(prefix="mnist-parity-stress-"))
    load = Load(count, folder, preset)
    try:
        yield folder, load
    finally:
        load.stop()
        shutil.rmtree(folder, ignore_errors=True)
        for number, handler in previous.items():
            signal.signal(number, handler)


def _warm_up(load: Load, seconds: float) -> None:
    """Start the load and let it reach steady training (framework imports take a few seconds)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        load.keep_up()
        time.sleep(0.2)


def reproducibility(args: argparse.Namespace) -> int:
    """Rerun one spec `--runs` times under load; 0 only if every test loss is bit-identical."""
    deadline = time.perf_counter() + args.max_minutes * 60
    losses: dict[str, list[float]] = {backend: [] for backend in args.backends}
    with scratch_and_load(args.load, args.load_preset) as (folder, load):
        if args.load:
            _warm_up(load, args.warmup)
        for index in range(args.runs):
            if time.perf_counter() > deadline:
                print(f"stopped at the time limit ({args.max_minutes} min) after {index} runs")
                break
            for backend in args.backends:
                metrics = measured_run(folder, f"run-{index}-{backend}", args.preset, backend, args.epochs, args.seed,
                                       args.threads, load if args.load else None, RUN_TIMEOUT_S)
                losses[backend].append(metrics["test_loss"])
                if index == 0:
                    print(f"{backend} settings: {json.dumps(metrics['settings'])}")
                print(f"{backend} run {index + 1:3d}: test loss {metrics['test_loss']!r} ({metrics['wall_s']:.1f} s, "
                      f"load {os.getloadavg()[0]:.1f})", flush=True)
    identical = True
    for backend, values in losses.items():
        distinct = sorted(set(values), key=values.index)
        counts = ", ".join(f"{value!r} x{values.count(value)}" for value in distinct)
        print(f"{backend}: {len(values)} runs under load {args.load}, {len(distinct)} distinct test loss(es): {counts}")
        identical &= len(distinct) == 1 and len(values) == args.runs  # a run cut short by the time limit proves less
    return 0 if identical else 1


def threads(args: argparse.Namespace) -> int:
    """Benchmark: the same torch run at --threads 2 and 1, idle then under load; prints seconds and ratios."""
    deadline = time.perf_counter() + args.max_minutes * 60
    timings: dict[tuple[str, int], list[float]] = {}
    with scratch_and_load(args.load, args.load_preset) as (folder, load):
        for condition in ("idle", "loaded"):
            if condition == "loaded":
                _warm_up(load, args.warmup)
            for repeat in range(args.repeats):
                for count in (2, 1):  # alternated, so a change in the background load hits both alike
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"benchmark stopped at the time limit ({args.max_minutes} min)")
                    metrics = measured_run(folder, f"{condition}-{count}-{repeat}", args.preset, "torch", args.epochs,
                                           args.seed, count, load if condition == "loaded" else None, RUN_TIMEOUT_S)
                    timings.setdefault((condition, count), []).append(metrics["train_time_s"])
                    print(f"{condition:6s} threads {count}: train {metrics['train_time_s']:7.2f} s, wall "
                          f"{metrics['wall_s']:6.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    median = {key: statistics.median(values) for key, values in timings.items()}
    print(f"\ntorch {args.preset}, {args.epochs} epochs, median train seconds of {args.repeats} "
          f"(load: {args.load} training processes)")
    print(f"{'':8s}{'threads 2':>12s}{'threads 1':>12s}{'2 / 1':>8s}")
    for condition in ("idle", "loaded"):
        two, one = median[condition, 2], median[condition, 1]
        print(f"{condition:8s}{two:12.2f}{one:12.2f}{two / one:8.2f}")
    for count in (2, 1):
        print(f"slow-down under load, threads {count}: {median['loaded', count] / median['idle', count]:.2f}x")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.stress", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, epochs in (("reproducibility", 1), ("threads", 10)):
        command = commands.add_parser(name)
        command.add_argument("--preset", default="mlp-relu-adam", help="the spec that is rerun")
        command.add_argument("--load", type=int, default=3, help="training processes loading the machine (0: idle)")
        command.add_argument("--load-preset", default="mlp-relu-adam", help="the spec the load processes train")
        command.add_argument("--epochs", type=int, default=epochs)
        command.add_argument("--seed", type=int, default=2)
        command.add_argument("--warmup", type=float, default=8.0, help="seconds the load runs before the first measurement")
        command.add_argument("--max-minutes", type=float, default=40.0, help="stop (and clean up) after this long")
    repro = commands.choices["reproducibility"]
    repro.add_argument("--runs", type=int, default=30)
    repro.add_argument("--backends", type=lambda text: [p.strip() for p in text.split(",") if p.strip()], default=["torch"])
    repro.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of the measured runs (default: all cores)")
    commands.choices["threads"].add_argument("--repeats", type=int, default=2, help="runs per cell (the median is shown)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.load > 4:
        print("note: more than 4 load processes on a small shared machine can starve everyone else", file=sys.stderr)
    try:
        return {"reproducibility": reproducibility, "threads": threads}[args.command](args)
    except KeyboardInterrupt:
        print("interrupted; load processes killed, temporary folder removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
