"""Progress from Ray tasks, relayed to the sweep display as the local executor reports it.

Each task posts "cell-started" (with its attempt, an id unique to that try) and then every worker event, each
tagged with that attempt. A retried cell starts again from its first epoch: the relay reports its second start as
"cell-restarted" (the display then takes that cell's epochs back) and passes on the new attempt's epochs from 1
again. Events of an earlier attempt that arrive late, and an epoch seen twice, are dropped.
"""

from experiments.sweep.bookkeeping import OnChange, SweepState
from experiments.sweep.cells import Cell


class ProgressRelay:
    """Turns (key, event) pairs from the ProgressInbox actor into on_change calls."""

    def __init__(self, state: SweepState, on_change: OnChange, cells: dict[str, Cell]):
        self.state, self.on_change, self.cells = state, on_change, cells
        self.attempts: dict[str, int] = {}  # key -> starts seen
        self.current: dict[str, str] = {}  # key -> the attempt now training
        self.epochs: dict[str, int] = {}  # key -> the highest epoch passed on for the current attempt
        self.done: set[str] = set()

    def forward(self, events: list[tuple[str, dict]]) -> None:
        for key, event in events:
            if key in self.done or key not in self.cells:
                continue  # late news from a cell already counted
            attempt = event.get("attempt")
            if event.get("event") == "cell-started":
                if attempt is not None and attempt == self.current.get(key):
                    continue  # the same start twice
                self.attempts[key] = self.attempts.get(key, 0) + 1
                self.current[key] = attempt
                self.epochs[key] = 0  # a retry trains from its first epoch again
                self.state.running.add(key)
                what = "cell-started" if self.attempts[key] == 1 else "cell-restarted"
                self.on_change(self.state, what, {**self.cells[key].to_dict(), "node": event.get("node"),
                                                  "attempt": self.attempts[key]})
            elif key in self.current and attempt != self.current[key]:
                continue  # from an attempt that was lost since
            elif event.get("event") == "epoch":
                if event.get("epoch", 0) > self.epochs.get(key, 0):
                    self.epochs[key] = event["epoch"]
                    self.on_change(self.state, "epoch", {"key": key, **event})
            else:
                self.on_change(self.state, "epoch", {"key": key, **event})  # as the local executor forwards them

    def finished(self, key: str) -> None:
        self.done.add(key)
