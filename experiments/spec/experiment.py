"""The experiment spec: one typed, immutable description that every backend realises identically."""

import hashlib
import json
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from experiments.catalog import ACTIVATIONS, Loss, Optimizer, Schedule
from experiments.catalog.schedules import Constant
from experiments.catalog.base import Entry
from experiments.spec.model import Model


Task = Literal["digits", "even_odd", *[f"digit_{k}" for k in range(10)]]  # type: ignore[misc]
Implementation = Literal["catalog", "native"]
COMPONENTS = ("optimizer", "clipping", "activation", "batch_norm", "loss", "initializer", "pooling", "dropout", "schedule")
"""What a native backend builds from its framework's own API, component by component; "activation:<name>" names
one activation entry of the catalog."""


class DataSpec(Entry):
    """Which dataset, how much of its training part to hold out for validation, and the task.

    task "digits": the 10-class problem. Binary tasks (one sigmoid output, targets 0/1, as in
    the seed's sigmoid classifier): "even_odd" (1 = odd digit) and "digit_k" (1 = the digit k).

    dataset: a name from `mnist-parity list datasets`, or "auto": full MNIST when it is
    found locally, else the embedded 5,000-digit subset (announced loudly).
    The validation split is drawn from `seed` (see experiments.batching).
    """

    dataset: str = "auto"
    validation_fraction: Annotated[float, Field(ge=0.0, le=0.5, allow_inf_nan=False)] = 0.1
    task: Task = "digits"

    @property
    def num_outputs(self) -> int:
        """10 logits for the digit task, 1 for a binary task."""
        return 10 if self.task == "digits" else 1


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
    implementation: Implementation = "catalog"
    catalog_components: list[str] = Field(default_factory=list)

    @field_validator("catalog_components")
    @classmethod
    def _known_components(cls, value: list[str]) -> list[str]:
        allowed = [*COMPONENTS, *(f"activation:{name}" for name in ACTIVATIONS)]
        for component in value:
            if component not in allowed:
                raise ValueError(f"{component!r} is not a component; allowed: {', '.join(COMPONENTS)}, or activation:<name> "
                                 f"for one activation")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _components_need_native(self) -> "ExperimentSpec":
        if self.catalog_components and self.implementation != "native":
            raise ValueError("catalog_components: only with implementation = \"native\" (the catalog implementation "
                             "already uses the catalog for every component)")
        return self

    def uses_native(self, component: str, entry: str | None = None) -> bool:
        """Whether the backend builds `component` (and, for an activation, the entry `entry`) from its framework's
        own API: implementation native and the component not kept on the catalog."""
        if self.implementation != "native" or component in self.catalog_components:
            return False
        return entry is None or f"{component}:{entry}" not in self.catalog_components

    @model_validator(mode="after")
    def _task_fits(self) -> "ExperimentSpec":
        output, loss = self.model.output_activation.name, self.loss.name
        if self.data.task != "digits" and output == "softmax":
            raise ValueError(f"model.output_activation: softmax over the single output of task {self.data.task!r} is always 1; use sigmoid")
        if self.data.task != "digits" and loss in ("categorical_crossentropy", "kl_divergence"):
            raise ValueError(f"loss: {loss} needs several classes; task {self.data.task!r} has one output: use binary_crossentropy or mse")
        if loss == "binary_crossentropy" and output not in ("sigmoid", "linear"):
            raise ValueError(f"loss: binary_crossentropy takes sigmoid (or linear) outputs, not {output}")
        return self

    @model_validator(mode="after")
    def _values_fit_dtype(self) -> "ExperimentSpec":
        """Every float of the spec must be representable in its dtype (1e300 is finite, but not in float32)."""
        largest = float(np.finfo(self.dtype).max)
        for where, value in _floats(self.model_dump(by_alias=True)):
            if abs(value) > largest:
                raise ValueError(f"{where}: {value!r} does not fit dtype {self.dtype} (largest {largest:.4g}); use a smaller value"
                                 + (" or dtype float64" if self.dtype == "float32" else ""))
        return self

    def to_dict(self) -> dict:
        """The fully resolved spec as plain data (every default written out)."""
        return self.model_dump(mode="json", by_alias=True)

    def spec_hash(self) -> str:
        """A short stable hash of the resolved spec (name and description excluded)."""
        data = self.to_dict()
        data.pop("name", None)
        data.pop("description", None)
        if data.get("implementation") == "catalog" and not data.get("catalog_components"):  # hashes from before
            data.pop("implementation", None)                                                  # these fields stay
            data.pop("catalog_components", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _floats(node, where: str = ""):
    """(path, value) for every float in nested dicts and lists, paths written as in messages."""
    if isinstance(node, float):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _floats(value, f"{where}.{key}" if where else key)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _floats(value, f"{where}[{index}]")
