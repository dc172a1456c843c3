"""Is the `run` table's speed comparison fair? The caption says what samples/s counts; the load other processes put on
the machine while each backend trains is measured (experiments.load.LoadMeter), recorded in results.json and the
store, and a load high enough to distort the figure is named in a warning under the table. The load source is
injected (a planted machine), never read from a patched os."""

import io
import time

import pytest
from rich.console import Console

from experiments.cli import build_parser
from experiments.commands.run import run_command
from experiments.outcome import BackendOutcome
from experiments.runner import RunResult
from experiments.load import LOAD_MARGIN_CORES, MIN_WINDOW_S, CpuReading, LoadMeter, load_distorts
from experiments.store import load_runs, store_path
from tests.cli_helpers import only_run_dir, read_results

# A reading's counters are sums of floats: the meter's figures match the planted ones to this many cores (it rounds to
# 3 decimals itself).
CORES_TOLERANCE = 1e-3
HIGH_LOAD = 1.8  # cores other processes keep busy on the planted busy machine: above 0 spare + LOAD_MARGIN_CORES
LOW_LOAD = 0.1  # on the planted quiet one: below it
TINY_MLP = 'model.hidden=[{units = 8, activation = "relu"}]'


class PlantedMachine:
    """A machine whose counters advance only when told: advance(seconds, worker cores, other cores)."""

    def __init__(self):
        self.wall, self.busy, self.own = 100.0, 5_000.0, 0.0

    def advance(self, seconds: float, worker: float, others: float) -> None:
        self.wall += seconds
        self.own += worker * seconds
        self.busy += (worker + others) * seconds

    def __call__(self) -> CpuReading:
        return CpuReading(self.wall, self.busy, self.own)


def _meter(machine, **kwargs) -> LoadMeter:
    return LoadMeter(2, machine, interval_s=0, cores=2, marked="epochs 2 to the last", **kwargs)


def test_the_mean_and_max_cover_the_marked_window_only():
    """Epoch 1 (compilation) and the test evaluation after the last mark had no other load; epochs 2 and 3 had 1.5 and
    1.0 cores of it: the mean over the window is 1.25, the max 1.5."""
    machine = PlantedMachine()
    with _meter(machine) as meter:
        machine.advance(5.0, 2.0, 0.0)
        meter.mark()
        machine.advance(2.0, 1.0, 1.5)
        meter.mark()
        machine.advance(2.0, 1.0, 1.0)
        meter.mark()
        machine.advance(3.0, 2.0, 0.0)
    load = meter.summary()
    assert load["mean"] == pytest.approx(1.25, abs=CORES_TOLERANCE) and load["max"] == pytest.approx(1.5, abs=CORES_TOLERANCE)
    assert (load["cores"], load["threads"], load["window"]) == (2, 2, "epochs 2 to the last")
    assert load["seconds"] == pytest.approx(4.0, abs=CORES_TOLERANCE)


def test_without_two_marks_far_enough_apart_the_whole_run_is_the_window():
    """One epoch (one mark), or two marks closer than MIN_WINDOW_S: the window is the worker's whole life, entry to exit."""
    for gap in (None, MIN_WINDOW_S / 4):
        machine = PlantedMachine()
        with _meter(machine) as meter:
            machine.advance(3.0, 2.0, 1.0)
            meter.mark()
            if gap is not None:
                machine.advance(gap, 2.0, 0.0)
                meter.mark()
            machine.advance(1.0, 2.0, 0.0)
        load = meter.summary()
        seconds = 4.0 + (gap or 0.0)
        assert load["window"] == "the worker's whole run"
        assert load["seconds"] == pytest.approx(seconds, abs=CORES_TOLERANCE)
        assert load["mean"] == pytest.approx(3.0 / seconds, abs=CORES_TOLERANCE)
        assert load["max"] == pytest.approx(1.0, abs=CORES_TOLERANCE)


def test_no_reading_gives_no_load():
    with LoadMeter(2, lambda: None, interval_s=0, cores=2) as meter:
        meter.mark()
        meter.mark()
    assert meter.summary() is None


@pytest.mark.parametrize("threads, mean, distorts", [
    (2, LOAD_MARGIN_CORES - 0.01, False), (2, LOAD_MARGIN_CORES + 0.01, True), (2, 0.0, False),
    (1, 1.0 + LOAD_MARGIN_CORES - 0.01, False), (1, 1.0 + LOAD_MARGIN_CORES + 0.01, True),  # one core was left free
    (4, LOAD_MARGIN_CORES + 0.01, True),  # more threads than cores leave none free
])
def test_the_rule_is_others_beyond_the_spare_cores_plus_the_margin(threads, mean, distorts):
    assert load_distorts({"mean": mean, "max": mean, "cores": 2, "threads": threads}) is distorts


def test_a_load_not_measured_never_warns():
    assert not load_distorts(None) and not load_distorts({}) and not load_distorts({"mean": None, "cores": 2})


# -- end to end: `run` on the NumPy oracle, a two-epoch 8-unit MLP, with a planted machine ----------------------


def _planted_source(others: float):
    """A load_source for run_experiment: each worker's readings from the real clock, the worker at 1 core and other
    processes at `others` cores."""
    def for_worker(marker: str):
        start = time.monotonic()

        def read() -> CpuReading:
            elapsed = time.monotonic() - start
            return CpuReading(start + elapsed, 1_000.0 + (1.0 + others) * elapsed, elapsed)
        return read
    return for_worker


@pytest.fixture(scope="module", params=[HIGH_LOAD, LOW_LOAD], ids=["busy", "quiet"])
def planted_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    args = build_parser().parse_args(["run", "mlp-relu-adam", "--backends", "numpy", "--epochs", "2", "--threads", "2",
                                      "--dataset", "mnist-subset", "--set", TINY_MLP, "--out", str(out)])
    printed = io.StringIO()
    code = run_command(args, Console(file=printed, width=300), load_source=_planted_source(request.param))
    assert code == 0, printed.getvalue()
    return request.param, printed.getvalue(), only_run_dir(out)


def test_the_caption_says_what_samples_per_second_counts(planted_run):
    _, printed, _ = planted_run
    caption = next(line for line in printed.splitlines() if line.startswith("samples/s (steady):"))
    for words in ("epochs 2 to the last", "optimizer steps only", "epoch 1", "compilation", "evaluation left out",
                  "determinism settings on", "threads: numpy 2", "others' CPU"):
        assert words in caption, caption


def test_results_json_and_the_store_carry_the_load(planted_run):
    others, _, run_dir = planted_run
    load = read_results(run_dir)["backends"]["numpy"]["load"]
    assert load["mean"] == pytest.approx(others, abs=CORES_TOLERANCE)
    assert load["max"] == pytest.approx(others, abs=CORES_TOLERANCE)
    assert load["threads"] == 2 and load["cores"] >= 1 and load["seconds"] > 0
    row = load_runs(store_path(run_dir.parent)).iloc[0]
    assert row["load_json"] == load


def test_a_busy_machine_is_named_under_the_table_and_a_quiet_one_is_not(planted_run):
    others, printed, _ = planted_run
    warnings = [line for line in printed.splitlines() if line.startswith("warning: busy machine")]
    if others == LOW_LOAD:
        assert warnings == [], printed
        return
    assert len(warnings) == 1, printed
    assert f"numpy {HIGH_LOAD:.2f}" in warnings[0] and "samples/s (steady) of numpy" in warnings[0]
    assert f"{LOAD_MARGIN_CORES}" in warnings[0]
    lines = printed.splitlines()
    assert lines.index(warnings[0]) > max(i for i, line in enumerate(lines) if line.startswith("└"))  # under the table


def test_a_resumed_run_keeps_the_load_of_the_backends_it_keeps(tmp_path, monkeypatch):
    """--resume rewrites results.json with the kept backends' outcomes: their load survives, next to the new ones'."""
    from experiments.commands import run as run_module

    written = []
    monkeypatch.setattr(run_module, "write_results", lambda result, *rest: written.append(result))
    kept_load = {"mean": 0.2, "max": 0.3, "cores": 2, "threads": 2, "seconds": 1.5, "window": "epochs 2 to the last"}
    new_load = {**kept_load, "mean": 1.0}
    saver = run_module._Saver(tmp_path, ["numpy", "torch"], {"numpy": BackendOutcome("numpy", status="ok")},
                              ["mnist-parity"], {}, {"numpy": kept_load})
    saver(RunResult(None, None, {}, [BackendOutcome("torch", status="ok")], loads={"torch": new_load}))
    assert written[-1].loads == {"numpy": kept_load, "torch": new_load}
    assert [o.backend for o in written[-1].outcomes] == ["numpy", "torch"]
