"""The suite's schedule closed forms against Keras' and Optax's own schedule objects.

Both frameworks evaluate schedules in float32 here, hence the 1e-6 relative tolerance.
Documented difference: Keras PiecewiseConstantDecay switches one step after the boundary
(step > b), the suite and Optax at it (step >= b), so Keras gets boundaries b - 1.
"""

import numpy as np
import pytest
from pydantic import TypeAdapter

from experiments.catalog import Schedule
from experiments.catalog.schedules import learning_rates

FRAMEWORK_SCHEDULE_RTOL = 1e-6
LR, STEPS = 0.1, 40

CASES = {
    "exponential": {"name": "exponential", "decay_rate": 0.9, "decay_steps": 7},
    "exponential-staircase": {"name": "exponential", "decay_rate": 0.5, "decay_steps": 5, "staircase": True},
    "inverse_time": {"name": "inverse_time", "decay_rate": 0.5, "decay_steps": 4},
    "polynomial": {"name": "polynomial", "end_factor": 0.1, "power": 2.0, "decay_steps": 30},
    "cosine": {"name": "cosine", "alpha": 0.05, "decay_steps": 25},
    "piecewise_constant": {"name": "piecewise_constant", "boundaries": [10, 20], "factors": [1.0, 0.5, 0.1]},
}


def suite(case):
    schedule = TypeAdapter(Schedule).validate_python(CASES[case])
    return schedule, learning_rates(LR, schedule, 0, STEPS, 10)


def keras_schedule(s):
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from keras.optimizers import schedules as ks

    if s.name == "exponential":
        return ks.ExponentialDecay(LR, s.decay_steps, s.decay_rate, staircase=s.staircase)
    if s.name == "inverse_time":
        return ks.InverseTimeDecay(LR, s.decay_steps, s.decay_rate, staircase=s.staircase)
    if s.name == "polynomial":
        return ks.PolynomialDecay(LR, s.decay_steps, end_learning_rate=LR * s.end_factor, power=s.power, cycle=False)
    if s.name == "cosine":
        return ks.CosineDecay(LR, s.decay_steps, alpha=s.alpha)
    return ks.PiecewiseConstantDecay([b - 1 for b in s.boundaries], [LR * f for f in s.factors_])


def optax_schedule(s):
    import optax

    if s.name == "exponential":
        return optax.exponential_decay(LR, s.decay_steps, s.decay_rate, staircase=s.staircase)
    if s.name == "polynomial":
        return optax.polynomial_schedule(LR, LR * s.end_factor, s.power, s.decay_steps)
    if s.name == "cosine":
        return optax.cosine_decay_schedule(LR, s.decay_steps, alpha=s.alpha)
    if s.name == "piecewise_constant":
        scales = {b: s.factors_[i + 1] / s.factors_[i] for i, b in enumerate(s.boundaries)}
        return optax.piecewise_constant_schedule(LR, scales)
    return None  # optax has no inverse-time schedule


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("framework", ["keras", "optax"])
def test_closed_form_matches_framework_schedule(framework, case):
    schedule, expected = suite(case)
    built = keras_schedule(schedule) if framework == "keras" else optax_schedule(schedule)
    if built is None:
        pytest.skip(f"{framework} has no {schedule.name} schedule (the suite's closed form is the only one)")
    got = np.array([float(built(step)) for step in range(STEPS)])
    np.testing.assert_allclose(got, expected, rtol=FRAMEWORK_SCHEDULE_RTOL, err_msg=f"{framework} {case}")
