"""What one backend produced in a run: status, reason, versions, metrics and per-epoch history."""

from dataclasses import asdict, dataclass, field


@dataclass
class BackendOutcome:
    """One backend's result. status: "pending" (not started), "running", then "ok" or "failed" (with a one-line
    reason); "interrupted" when the run was stopped while this backend trained."""

    backend: str
    status: str = "pending"
    reason: str = ""
    versions: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    parameter_count: int | None = None
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    log: str = ""

    def apply(self, event: dict) -> None:
        """Fold one worker event into the outcome."""
        kind = event["event"]
        payload = {k: v for k, v in event.items() if k != "event"}
        if kind == "started":
            self.status = "running"
            self.versions = payload["versions"]
            self.settings = payload["settings"]
            self.parameter_count = payload["parameter_count"]
        elif kind == "epoch":
            self.history.append(payload)
        elif kind == "finished":
            self.status = "ok"
            self.metrics = payload
        elif kind == "failed":
            self.status = "failed"
            self.reason = payload["reason"]

    @property
    def framework_version(self) -> str:
        return " ".join(f"{name} {version}" for name, version in self.versions.items())

    def to_dict(self) -> dict:
        return asdict(self)
