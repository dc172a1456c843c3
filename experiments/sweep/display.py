"""Sweep progress: cells done, running and failed, and the estimated time left, live on a terminal or one line per cell."""

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from experiments.sweep.bookkeeping import SweepState


def _factors(factors: dict) -> str:
    return ", ".join(f"{key.split('.')[-1]}={value}" for key, value in factors.items())


class SweepDisplay:
    """Progress is counted in epochs (a cell of 30 epochs is 30 units), so the time left follows the work left.

    The estimate is elapsed time per finished epoch times the epochs left, divided over the pool.
    """

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=self.console, disable=not self.live,
        )
        self.task = None
        self.epochs_done = 0
        self.epochs_total = 0
        self.started = time.perf_counter()
        self.cells: dict[str, dict] = {}
        self.cell_epochs: dict[str, int] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def _describe(self, state: SweepState) -> str:
        return f"cells {state.done}/{state.total}, running {len(state.running)}, failed {state.failed}"

    def eta_seconds(self) -> float | None:
        if self.epochs_done == 0:
            return None
        elapsed = time.perf_counter() - self.started
        return elapsed / self.epochs_done * (self.epochs_total - self.epochs_done)

    def __call__(self, state: SweepState, what: str, payload: dict | None) -> None:
        if what == "start":
            pending = payload["pending"]
            self.cells = {c["key"]: c for c in pending}
            self.epochs_total = sum(c["spec"]["training"]["epochs"] for c in pending)
            self.task = self.progress.add_task(self._describe(state), total=self.epochs_total or 1)
            self.console.print(f"{state.total} cells: {state.skipped} already finished, {len(pending)} to run", highlight=False, soft_wrap=True)
            for path in state.damaged:
                self.console.print(f"a damaged cell (no readable results.json) was moved aside and will be rerun: {path}",
                                   style="yellow", highlight=False, soft_wrap=True)
        elif what == "epoch" and payload.get("event") == "epoch":
            self.epochs_done += 1
            self.cell_epochs[payload["key"]] = self.cell_epochs.get(payload["key"], 0) + 1
            self.progress.update(self.task, advance=1, description=self._describe(state))
        elif what == "cell-started":
            self.progress.update(self.task, description=self._describe(state))
        elif what == "cell-restarted":  # Ray retried a cell whose worker process or node died: it starts over
            self.epochs_done -= self.cell_epochs.pop(payload["key"], 0)
            self.progress.update(self.task, completed=self.epochs_done, description=self._describe(state))
            self.console.print(f"restarted (attempt {payload['attempt']}): {escape(_factors(payload.get('factors', {})))}, "
                               "its worker or node was lost", style="yellow", highlight=False, soft_wrap=True)
        elif what == "cell-finished":
            self._finished(state, payload)

    def _finished(self, state: SweepState, summary: dict) -> None:
        cell = self.cells.get(summary["key"], {})
        unrun = cell.get("spec", {}).get("training", {}).get("epochs", 0) - self.cell_epochs.get(summary["key"], 0)
        self.epochs_total -= max(0, unrun)  # a cell that failed early leaves no work behind
        self.progress.update(self.task, total=max(1, self.epochs_total), description=self._describe(state))
        accuracy = summary.get("test_accuracy")
        figure = f"test {accuracy:.4f}" if accuracy is not None else escape(summary.get("reason", ""))[:160]
        eta = self.eta_seconds()
        left = f", about {eta / 60:.1f} min left" if eta is not None and state.done < state.total else ""
        status = "[green]ok[/green]" if summary["status"] == "ok" else "[red]FAILED[/red]"
        line = (f"[{state.done}/{state.total}] {status} {escape(_factors(cell.get('factors', {})))}: {figure} "
                f"({summary.get('seconds', 0):.0f} s); running {len(state.running)}, failed {state.failed}{left}")
        self.console.print(line, highlight=False, soft_wrap=True)
