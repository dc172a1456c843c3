"""The machine's load while a worker runs: the cores other processes kept busy (LoadMeter), and the rule that says
when that distorts a speed figure (load_distorts).

What is measured: the cores other processes kept busy while a worker trained, i.e. the CPU time used by every
process but the worker, per second of wall time: the machine's busy time from /proc/stat (user, nice, system, irq,
softirq and steal jiffies, summed over os.cpu_count() cores; idle and iowait are not busy) less the worker's own
CPU time (utime and stime of all its threads, and cutime and cstime of any child it waited for, from
/proc/<worker pid>/stat). Why not os.getloadavg(): the load average is a one-minute exponentially damped count of
runnable tasks that includes the worker's own threads and trails a run of a few seconds by up to a minute; CPU
time is exact over any window (to a jiffy, 10 ms) and leaves the run out. The mnist-parity process itself
(reading events, this sampler) counts as "other": a few hundredths of a core. Limits: it is what other processes
got, not what they wanted (on a saturated machine they wanted more), and in a container /proc/stat counts every
tenant of the machine's cores.
"""

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SAMPLE_INTERVAL_S = 0.5  # how often the sampler reads the counters while a worker runs (for the max)
LOAD_MARGIN_CORES = 0.5  # others' mean load beyond the cores a run leaves free that makes its speed suspect
MIN_WINDOW_S = 1.0  # a shorter marked window falls back to the worker's whole run: counters tick in 10 ms jiffies per core
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # of /proc/stat's "cpu" line: user nice system (idle iowait) irq softirq steal


@dataclass(frozen=True)
class CpuReading:
    """Cumulative counters at one moment: wall clock (s, monotonic), CPU seconds the whole machine has been busy,
    CPU seconds the worker has used."""

    wall_s: float
    busy_s: float
    own_s: float


LoadSource = Callable[[], CpuReading | None]  # one reading now; None when there is none (no /proc, worker gone)


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat from its 3rd field (state) on; the process name before it may hold spaces and ")"."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


class ProcLoad:
    """The LoadSource of one worker on Linux: the worker is this process's child whose command line holds `marker`
    (its job file's path, unique to it); before it starts and once it has exited a reading is None."""

    def __init__(self, marker: str):
        self.marker = marker.encode()
        self.pid: int | None = None
        self.started: str | None = None  # the worker's start time, so a reused pid is never mistaken for it

    def _find(self) -> None:
        me = os.getpid()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = _stat_fields(entry.name)
                if int(fields[1]) != me:
                    continue
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            if self.marker in argv:
                self.pid, self.started = int(entry.name), fields[19]
                return

    def __call__(self) -> CpuReading | None:
        try:
            if self.pid is None:
                self._find()
                if self.pid is None:
                    return None
            tick = os.sysconf("SC_CLK_TCK")
            with open("/proc/stat", encoding="ascii") as handle:
                cpu = handle.readline().split()
            wall = time.monotonic()
            fields = _stat_fields(self.pid)
            if fields[0] in ("Z", "X") or fields[19] != self.started:  # exited (its times are no longer its own)
                return None
            busy = sum(int(cpu[1 + i]) for i in BUSY_FIELDS if 1 + i < len(cpu)) / tick
            return CpuReading(wall, busy, sum(int(value) for value in fields[11:15]) / tick)  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            return None


def _others(first: CpuReading, last: CpuReading) -> float:
    """Cores other processes kept busy between two readings (never below 0: counters tick in whole jiffies)."""
    return max(0.0, ((last.busy_s - first.busy_s) - (last.own_s - first.own_s)) / (last.wall_s - first.wall_s))


class LoadMeter:
    """Other processes' CPU use while one worker runs: a context manager around the worker, reading `source` at
    entry, every interval_s in a thread of its own, at each mark() and at exit.

    mark() is called at the edges of the timed work (the end of each epoch, of the warm-up and of each timed pair):
    with two marks or more at least MIN_WINDOW_S apart, summary() covers the readings from the first mark to the last
    (the steady epochs, the timed pairs); otherwise every reading of the worker's life (a shorter window would be
    mostly jiffy rounding).
    """

    def __init__(self, threads: int, source: LoadSource, interval_s: float = SAMPLE_INTERVAL_S, cores: int | None = None,
                 marked: str = "between the first and last marks"):
        self.threads, self.source, self.interval_s, self.marked = threads, source, interval_s, marked
        self.cores = cores or os.cpu_count() or 1
        self.readings: list[CpuReading] = []
        self.marks: list[CpuReading] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> CpuReading | None:
        reading = self.source()
        if reading is not None:
            with self._lock:
                self.readings.append(reading)
        return reading

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read()

    def __enter__(self) -> "LoadMeter":
        self._read()
        if self.interval_s > 0:  # 0: readings at entry, marks and exit only
            self._thread = threading.Thread(target=self._sample, name="load-meter", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._read()

    def mark(self) -> None:
        reading = self._read()
        if reading is not None:
            with self._lock:
                self.marks.append(reading)

    def summary(self) -> dict | None:
        """{"mean", "max": cores other processes kept busy, "cores": os.cpu_count(), "threads": the run's thread
        count, "seconds": the window's length, "window": which window}; None with fewer than two readings in it.
        mean is over the whole window; max over consecutive stretches of it at least half interval_s long."""
        with self._lock:
            readings, marks = sorted(self.readings, key=lambda r: r.wall_s), list(self.marks)
        if len(marks) >= 2 and marks[-1].wall_s - marks[0].wall_s >= MIN_WINDOW_S:
            window, label = [r for r in readings if marks[0].wall_s <= r.wall_s <= marks[-1].wall_s], self.marked
        else:
            window, label = readings, "the worker's whole run"
        if len(window) < 2 or window[-1].wall_s <= window[0].wall_s:
            return None
        mean, stretches, anchor = _others(window[0], window[-1]), [], window[0]
        for reading in window[1:]:
            if reading.wall_s - anchor.wall_s >= max(self.interval_s / 2, 1e-9):
                stretches.append(_others(anchor, reading))
                anchor = reading
        return {"mean": round(mean, 3), "max": round(max([mean, *stretches]), 3), "cores": self.cores,
                "threads": self.threads, "seconds": round(window[-1].wall_s - window[0].wall_s, 3), "window": label}


def spare_cores(load: dict) -> float:
    """The cores a run leaves to other processes: the machine's cores less its threads (none when it asks for all)."""
    return max(0, load["cores"] - min(load.get("threads") or load["cores"], load["cores"]))


def load_distorts(load: dict | None) -> bool:
    """The rule for a speed figure taken on a busy machine: other processes kept busy, on average, more than
    LOAD_MARGIN_CORES beyond the cores the run left free (spare_cores), so they took CPU time the worker's threads
    could have used. False when nothing was measured (no /proc, a document from before the field)."""
    if not isinstance(load, dict) or not all(isinstance(load.get(key), (int, float)) for key in ("mean", "cores")):
        return False
    return load["mean"] > spare_cores(load) + LOAD_MARGIN_CORES
