"""Live progress per backend (rich progress bars on a terminal, one line per epoch otherwise) and the final table."""

import math

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from experiments.outcome import BackendOutcome


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
    }
    for column in frame.columns:
        table.add_column(headers.get(column, column), justify="left" if column in ("backend", "status", "framework") else "right")
    formats = {"test_accuracy": 4, "test_loss": 4, "train_time_s": 1, "samples_per_s": 0}
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
