"""Learning-rate schedules: one closed form lr_t = learning_rate * factor(t), t = 0 at the first update.

The runner evaluates the closed form in NumPy float64 for every optimizer step and hands
the values to every backend, so all backends step with identical rates. This removes the
granularity trap (Keras and optax step per batch, torch schedulers per `step()` call) and
torch's recursive CosineAnnealingLR drift. Periods are given in steps (decay_steps) or in
epochs (decay_epochs, converted with the run's steps per epoch), exactly one of the two.
"""

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union

Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Factor = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class ScheduleEntry(Entry):
    """Base: subclasses define factors(steps, steps_per_epoch) -> float64 array."""

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        raise NotImplementedError


class Periodic(ScheduleEntry):
    """A schedule with a period T = decay_steps or decay_epochs * steps_per_epoch."""

    decay_steps: Annotated[int, Field(ge=1)] | None = None
    decay_epochs: Positive | None = None

    @model_validator(mode="after")
    def _one_period(self):
        if (self.decay_steps is None) == (self.decay_epochs is None):
            raise ValueError("give exactly one of decay_steps or decay_epochs")
        return self

    def period(self, steps_per_epoch: int) -> float:
        return float(self.decay_steps) if self.decay_steps is not None else self.decay_epochs * steps_per_epoch


class Constant(ScheduleEntry):
    """factor(t) = 1."""

    name: Literal["constant"]

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        return np.ones(steps.shape, dtype=np.float64)


class Exponential(Periodic):
    """factor(t) = decay_rate ** (t / T), the exponent floored when staircase (Keras ExponentialDecay,
    optax exponential_decay; torch ExponentialLR is the per-epoch staircase)."""

    name: Literal["exponential"]
    decay_rate: Positive
    staircase: bool = False

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        exponent = steps / self.period(steps_per_epoch)
        return np.power(self.decay_rate, np.floor(exponent) if self.staircase else exponent)


class InverseTime(Periodic):
    """factor(t) = 1 / (1 + decay_rate * t / T), t / T floored when staircase (Keras InverseTimeDecay)."""

    name: Literal["inverse_time"]
    decay_rate: Factor
    staircase: bool = False

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        ratio = steps / self.period(steps_per_epoch)
        return 1.0 / (1.0 + self.decay_rate * (np.floor(ratio) if self.staircase else ratio))


class Polynomial(Periodic):
    """factor(t) = (1 - end_factor) (1 - min(t, T) / T) ** power + end_factor.

    Keras PolynomialDecay with end_learning_rate = end_factor * learning_rate (cycle off);
    torch PolynomialLR is end_factor 0.
    """

    name: Literal["polynomial"]
    end_factor: Factor = 0.0
    power: Positive = 1.0

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        period = self.period(steps_per_epoch)
        return (1.0 - self.end_factor) * (1.0 - np.minimum(steps, period) / period) ** self.power + self.end_factor


class Cosine(Periodic):
    """factor(t) = (1 - alpha) (1 + cos(pi min(t, T) / T)) / 2 + alpha (Keras CosineDecay, optax
    cosine_decay_schedule; torch's CosineAnnealingLR computes it recursively, with drift)."""

    name: Literal["cosine"]
    alpha: Factor = 0.0

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        period = self.period(steps_per_epoch)
        return (1.0 - self.alpha) * 0.5 * (1.0 + np.cos(np.pi * np.minimum(steps, period) / period)) + self.alpha


class PiecewiseConstant(ScheduleEntry):
    """factor(t) = factors[k], k = the number of boundaries b with t >= b (switching AT the boundary).

    optax piecewise_constant_schedule switches at count >= boundary; Keras
    PiecewiseConstantDecay only after it (step > boundary), one step later. Boundaries are in
    steps, or in epochs with boundary_epochs; factors has one more entry than boundaries.
    """

    name: Literal["piecewise_constant"]
    boundaries: Annotated[tuple[int, ...], Field(strict=False)] | None = None
    boundary_epochs: Annotated[tuple[float, ...], Field(strict=False)] | None = None
    factors_: Annotated[tuple[Factor, ...], Field(strict=False, alias="factors", min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> "PiecewiseConstant":
        bounds = self.boundaries if self.boundaries is not None else self.boundary_epochs
        if (self.boundaries is None) == (self.boundary_epochs is None):
            raise ValueError("give exactly one of boundaries (steps) or boundary_epochs")
        if len(self.factors_) != len(bounds) + 1:
            raise ValueError(f"factors needs {len(bounds) + 1} entries for {len(bounds)} boundaries, got {len(self.factors_)}")
        if list(bounds) != sorted(bounds) or any(b < 0 for b in bounds):
            raise ValueError("boundaries must be non-negative and increasing")
        return self

    def factors(self, steps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        bounds = np.array(self.boundaries if self.boundaries is not None else [b * steps_per_epoch for b in self.boundary_epochs])
        index = np.searchsorted(bounds, steps, side="right")  # number of boundaries <= t
        return np.asarray(self.factors_, dtype=np.float64)[index]


SCHEDULE_ENTRIES = (Constant, Exponential, InverseTime, Polynomial, Cosine, PiecewiseConstant)
SCHEDULES = registry(*SCHEDULE_ENTRIES)
Schedule = tagged_union(*SCHEDULE_ENTRIES)


def learning_rates(base_rate: float, schedule: ScheduleEntry, first_step: int, count: int, steps_per_epoch: int) -> np.ndarray:
    """The float64 learning rates of optimizer steps first_step .. first_step + count - 1."""
    steps = np.arange(first_step, first_step + count, dtype=np.float64)
    return base_rate * schedule.factors(steps, steps_per_epoch)
