"""The job file a backend worker reads and the JSON-lines events it writes back to the runner."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class Job:
    """Everything one backend process needs: the resolved spec, the prepared data file, threads."""

    backend: str
    spec: dict
    data_path: str
    threads: int
    init_path: str | None = None  # canonical initial weights (.npz) every backend loads, for --same-init

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> "Job":
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


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
