"""Progress from Ray tasks, relayed to the sweep display as the local executor reports it.

Each task posts "cell-started" (with its attempt) and every worker event; a retried cell posts them again, so the
relay passes on an epoch only once per cell (the highest epoch seen) and reports a second start as "cell-restarted".
"""

from experiments.sweep.bookkeeping import OnChange, SweepState
from experiments.sweep.cells import Cell


class ProgressRelay:
    """Turns (key, event) pairs from the ProgressInbox actor into on_change calls."""

    def __init__(self, state: SweepState, on_change: OnChange, cells: dict[str, Cell]):
        self.state, self.on_change, self.cells = state, on_change, cells
        self.attempts: dict[str, int] = {}
        self.epochs: dict[str, int] = {}
        self.done: set[str] = set()

    def forward(self, events: list[tuple[str, dict]]) -> None:
        for key, event in events:
            if key in self.done or key not in self.cells:
                continue  # late news from a cell already counted
            if event.get("event") == "cell-started":
                self.attempts[key] = self.attempts.get(key, 0) + 1
                self.state.running.add(key)
                what = "cell-started" if self.attempts[key] == 1 else "cell-restarted"
                self.on_change(self.state, what, {**self.cells[key].to_dict(), "node": event.get("node"),
                                                  "attempt": self.attempts[key]})
            elif event.get("event") == "epoch":
                if event.get("epoch", 0) > self.epochs.get(key, 0):
                    self.epochs[key] = event["epoch"]
                    self.on_change(self.state, "epoch", {"key": key, **event})
            else:
                self.on_change(self.state, "epoch", {"key": key, **event})  # as the local executor forwards them

    def finished(self, key: str) -> None:
        self.done.add(key)

