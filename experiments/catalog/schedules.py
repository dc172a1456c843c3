"""Learning-rate schedules: one closed form lr_t = learning_rate * factor(t), t = 0 at the first update.

The runner evaluates the closed form in NumPy float64 for every optimizer step and hands
the values to every backend, so all backends step with identical rates. This removes the
granularity trap (Keras and optax step per batch, torch schedulers per `step()` call).
"""

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union


class Constant(Entry):
    """factor(t) = 1."""

    name: Literal["constant"]

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        return np.ones(steps.shape, dtype=np.float64)


class Exponential(Entry):
    """factor(t) = decay_rate ** (t / T), with the exponent floored when staircase.

    T = decay_steps, or decay_epochs * steps_per_epoch; exactly one of them is given.
    Keras ExponentialDecay and optax exponential_decay compute the same closed form.
    """

    name: Literal["exponential"]
    decay_rate: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    decay_steps: Annotated[int, Field(ge=1)] | None = None
    decay_epochs: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    staircase: bool = False

    @model_validator(mode="after")
    def _one_period(self) -> "Exponential":
        if (self.decay_steps is None) == (self.decay_epochs is None):
            raise ValueError("give exactly one of decay_steps or decay_epochs")
        return self

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        period = self.decay_steps if self.decay_steps is not None else self.decay_epochs * steps_per_epoch
        exponent = steps.astype(np.float64) / float(period)
        if self.staircase:
            exponent = np.floor(exponent)
        return np.power(self.decay_rate, exponent)


SCHEDULE_ENTRIES = (Constant, Exponential)
SCHEDULES = registry(*SCHEDULE_ENTRIES)
Schedule = tagged_union(*SCHEDULE_ENTRIES)


def learning_rates(base_rate: float, schedule: Entry, first_step: int, count: int, steps_per_epoch: int) -> np.ndarray:
    """The float64 learning rates of optimizer steps first_step .. first_step + count - 1."""
    steps = np.arange(first_step, first_step + count, dtype=np.int64)
    return base_rate * schedule.factors(steps, steps_per_epoch)
