"""The job file a backend worker reads and the JSON-lines events it writes back to the runner."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


class JobFile:
    """A job written as one JSON file by the parent and read back, typed, by the backend process."""

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: Path):
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Job(JobFile):
    """A training worker's job (experiments.worker): the resolved spec, the prepared data file, threads."""

    backend: str
    spec: dict
    data_path: str
    threads: int
    init_path: str | None = None  # canonical initial weights (.npz) every backend loads, for --same-init


@dataclass(frozen=True)
class ProbeJob(JobFile):
    """A verify probe's job (experiments.verify.probe): the cells one backend records, levels 1-4.

    cells: cell name -> {"spec": resolved spec, "step_cases": {case: optimizer table} or None (every level-3 case)};
    data_path: an .npz of the training split ("x", "y"); steps: level 4's trajectory length; gradients_dir: where
    the oracle's level-2 gradients (level 3's input) are written and read, one <cell>.npz each."""

    backend: str
    cells: dict
    data_path: str
    threads: int
    levels: list
    steps: int
    gradients_dir: str


def emit(stream: IO[str], event: str, **payload: Any) -> None:
    """Write one event as a JSON line and flush it, so the runner sees it live."""
    stream.write(json.dumps({"event": event, **payload}, default=float) + "\n")
    stream.flush()


def parse_event(line: str) -> dict | None:
    """The event of one line of worker output, or None when the line is not an event."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
