"""Live progress per backend (rich progress bars on a terminal, one line per epoch otherwise), the final table, the
caption that says what its speed figure includes, and the warning when a busy machine makes that figure suspect."""

import math
import os

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from experiments.outcome import BackendOutcome
from experiments.runner import RunResult
from experiments.load import LOAD_MARGIN_CORES, load_distorts, spare_cores


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


class TerminalDisplay:
    """Shows each backend's epoch, loss, accuracy and elapsed time as it trains."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.fields[backend]:>6}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.live,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def backend_started(self, backend: str, epochs: int) -> None:
        self._tasks[backend] = self.progress.add_task("", total=epochs, backend=backend, metrics="starting")
        if not self.live:
            self.console.print(f"[{backend}] starting", markup=False, highlight=False)

    def event(self, backend: str, event: dict) -> None:
        kind = event["event"]
        if kind == "started":
            text = f"built, {event['parameter_count']:,} parameters"
        elif kind == "epoch":
            text = (
                f"loss {_fmt(event['train_loss'])} acc {_fmt(event['train_accuracy'])} "
                f"val_acc {_fmt(event['val_accuracy'])}"
            )
        else:
            return
        self.progress.update(self._tasks[backend], advance=1 if kind == "epoch" else 0, metrics=text)
        if not self.live:
            prefix = f"[{backend}] epoch {event['epoch']} " if kind == "epoch" else f"[{backend}] "
            suffix = f" ({event['elapsed_s']:.1f}s)" if kind == "epoch" else ""
            self.console.print(prefix + text + suffix, markup=False, highlight=False)

    def backend_finished(self, outcome: BackendOutcome) -> None:
        text = "done" if outcome.status == "ok" else f"FAILED: {outcome.reason}"
        self.progress.update(self._tasks[outcome.backend], metrics=escape(text))
        if not self.live:
            self.console.print(f"[{outcome.backend}] {text}", markup=False, highlight=False)


def summary_table(frame: pd.DataFrame, title: str) -> Table:
    """The side-by-side results as a rich table."""
    table = Table(title=title)
    headers = {
        "backend": "backend", "status": "status", "test_accuracy": "test acc", "test_loss": "test loss",
        "train_time_s": "train time (s)", "samples_per_s": "samples/s (steady)", "parameters": "params", "framework": "framework",
        "load": "others' CPU (cores)",
    }
    for column in frame.columns:
        table.add_column(headers.get(column, column), justify="left" if column in ("backend", "status", "framework") else "right")
    formats = {"test_accuracy": 4, "test_loss": 4, "train_time_s": 1, "samples_per_s": 0, "load": 2}
    for _, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            if column == "parameters" and value is not None and not pd.isna(value):
                cells.append(f"{int(value):,}")
            elif column in formats:
                cells.append(_fmt(None if pd.isna(value) else float(value), formats[column]))
            else:
                cells.append(str(value))
        table.add_row(*(escape(cell) for cell in cells), style=None if row["status"] == "ok" else "red")
    return table


def threads_used(settings: dict, requested: int) -> str:
    """The thread count a backend recorded in its settings, in words: torch's intra-op threads, TensorFlow's
    intra- and inter-op pools, XLA's own pool for jax (not settable), the BLAS threads of the environment for NumPy."""
    if type(settings.get("threads")) is int:
        return str(settings["threads"])
    if "intra_op_threads" in settings:
        return f"{settings['intra_op_threads']} (+{settings.get('inter_op_threads')} inter-op)"
    if isinstance(settings.get("threads_applied"), str):
        return f"XLA's own pool ({requested} requested)"
    environment = settings.get("thread_environment") or {}
    return str(environment.get("OMP_NUM_THREADS") or settings.get("threads_requested") or requested)


def summary_caption(result: RunResult, threads: int) -> str:
    """The line under the run's table: what samples/s counts, the threads each backend used, and what others' CPU is."""
    used = ", ".join(f"{o.backend} {threads_used(o.settings, threads)}" for o in result.outcomes if o.settings)
    return ("samples/s (steady): training samples per second of epochs 2 to the last, optimizer steps only (epoch 1, "
            "which includes compilation, and every evaluation left out; '-' with one epoch), each backend's determinism "
            f"settings on; threads: {used or threads}. others' CPU: cores of the {os.cpu_count()} that other processes kept "
            "busy while the backend trained (mean over the same epochs).")


def load_warning(result: RunResult) -> str | None:
    """One line naming the backends whose speed was taken on a busy machine (experiments.load.load_distorts) and the
    figure at stake, or None when every measured load was low."""
    busy = [(o, result.loads[o.backend]) for o in result.outcomes if load_distorts(result.loads.get(o.backend))]
    if not busy:
        return None
    first = busy[0][1]
    named = ", ".join(f"{o.backend} {load['mean']:.2f} (max {load['max']:.2f})" for o, load in busy)
    figures = " and ".join(sorted({"samples/s (steady)" if o.metrics.get("steady_samples_per_s") is not None else "train time"
                                   for o, _ in busy}))
    return (f"warning: busy machine: other processes kept {named} cores busy on average while training, above the "
            f"{threshold_text(first)}; the {figures} of {', '.join(o.backend for o, _ in busy)} is likely low: compare "
            "speeds on an idle machine")


def threshold_text(load: dict) -> str:
    """The threshold of experiments.load.load_distorts for this load record, in words."""
    spare = spare_cores(load)
    return (f"{spare + LOAD_MARGIN_CORES:g}-core threshold ({spare:g} of {load['cores']} cores left free by "
            f"{load.get('threads')} thread(s), + {LOAD_MARGIN_CORES} margin)")
