"""The experiment spec: one typed, immutable description that every backend realises identically."""

import hashlib
import json
from typing import Annotated, Literal

from pydantic import Field

from experiments.catalog import Loss, Optimizer, Schedule
from experiments.catalog.schedules import Constant
from experiments.catalog.base import Entry
from experiments.spec.model import Model


class DataSpec(Entry):
    """Which dataset to use and how much of its training part to hold out for validation.

    dataset: a name from `mnist-parity list datasets`, or "auto": full MNIST when it is
    found locally, else the embedded 5,000-digit subset (announced loudly).
    The validation split is drawn from `seed` (see experiments.batching).
    """

    dataset: str = "auto"
    validation_fraction: Annotated[float, Field(ge=0.0, le=0.5, allow_inf_nan=False)] = 0.1


class TrainingSpec(Entry):
    """Epochs, batch size, and whether a last partial batch is dropped (it is kept by default)."""

    epochs: Annotated[int, Field(ge=1)]
    batch_size: Annotated[int, Field(ge=1)]
    drop_last: bool = False


class ExperimentSpec(Entry):
    """Model, loss, optimizer, schedule, training loop, data, seed and dtype of one experiment."""

    name: str
    description: str = ""
    model: Model
    loss: Loss
    optimizer: Optimizer
    schedule: Schedule = Field(default_factory=lambda: Constant(name="constant"))
    training: TrainingSpec
    data: DataSpec = Field(default_factory=DataSpec)
    seed: Annotated[int, Field(ge=0, lt=2**31)]
    dtype: Literal["float32", "float64"]

    def to_dict(self) -> dict:
        """The fully resolved spec as plain data (every default written out)."""
        return self.model_dump(mode="json")

    def spec_hash(self) -> str:
        """A short stable hash of the resolved spec (name and description excluded)."""
        data = self.to_dict()
        data.pop("name", None)
        data.pop("description", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
