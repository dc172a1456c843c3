"""Native schedules: in native mode each backend's learning rates are its framework's own scheduler's values.

Expected values are the frameworks' documented behaviour written out here (torch's CosineAnnealingLR is periodic,
Keras computes in float32 and switches piecewise rates one step after the boundary), never read back from the
backend under test.
"""

import math

import numpy as np
import pytest

from experiments.batching import training_epochs
from experiments.catalog.schedules import learning_rates as catalog_rates
from tests.conftest import make_trainer

BASE = 1e-3  # mlp-relu-adam's learning rate
PER_EPOCH = 20
STEPS = 120
EXACT = 1e-15  # float64 rounding of a closed form, normwise relative
RECURSIVE = STEPS * EXACT  # torch's schedulers multiply the previous rate: one rounding per step
FLOAT32 = 2.0 ** -23  # one float32 ulp, normwise relative

SCHEDULES = {
    "exponential": "{name = \"exponential\", decay_steps = 20, decay_rate = 0.5}",
    "polynomial": "{name = \"polynomial\", decay_steps = 80, power = 2.0}",
    "cosine": "{name = \"cosine\", decay_steps = 40, alpha = 0.1}",
    "piecewise_constant": "{name = \"piecewise_constant\", boundaries = [20, 40], factors = [1.0, 0.5, 0.25]}",
    "inverse_time": "{name = \"inverse_time\", decay_steps = 20, decay_rate = 0.5}",
}


def rates(backend: str, schedule: str, native: bool = True):
    overrides = (f"schedule = {SCHEDULES[schedule]}", *(['implementation = "native"'] if native else []))
    trainer, _ = make_trainer(backend, "mlp-relu-adam", "float64", overrides)
    # asked for in two pieces, as epochs ask: a recursive scheduler must carry on where it stopped
    values = np.concatenate([trainer.learning_rates(0, STEPS // 2, PER_EPOCH), trainer.learning_rates(STEPS // 2, STEPS // 2, PER_EPOCH)])
    expected = catalog_rates(BASE, trainer.spec.schedule, 0, STEPS, PER_EPOCH)
    return trainer, values, expected


def relative(a, b):
    """Normwise relative difference ||a - b|| / ||b||, the ladder's measure."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("schedule", ["exponential", "polynomial", "piecewise_constant"])
def test_closed_form_schedules_of_torch_and_optax_are_the_catalogs(backend, schedule):
    trainer, values, expected = rates(backend, schedule)
    assert trainer.native_fallbacks == []
    assert relative(values, expected) <= (RECURSIVE if backend == "torch" else 4 * EXACT)


def test_torch_cosine_annealing_rises_again_after_its_period():
    """CosineAnnealingLR has period 2 T_max: the rate climbs back to the base rate at 2 T, where the catalog (and
    Keras, optax) hold alpha * base after T."""
    trainer, values, expected = rates("torch", "cosine")
    t, period, alpha = np.arange(STEPS), 40, 0.1
    periodic = BASE * (alpha + (1 - alpha) * 0.5 * (1 + np.cos(math.pi * t / period)))
    assert relative(values, periodic) <= RECURSIVE  # recursive form, drifting by rounding only
    assert values[2 * period] == pytest.approx(BASE, rel=1e-12) and expected[2 * period] == pytest.approx(alpha * BASE)
    assert relative(values[:period + 1], expected[:period + 1]) <= RECURSIVE


def test_optax_cosine_holds_alpha_after_its_period():
    _, values, expected = rates("jax", "cosine")
    assert relative(values, expected) <= 4 * EXACT


@pytest.mark.parametrize("schedule", ["exponential", "polynomial", "cosine", "inverse_time", "piecewise_constant"])
def test_keras_schedules_compute_in_float32(schedule):
    trainer, values, expected = rates("keras", schedule)
    assert trainer.native_fallbacks == []
    assert np.array_equal(values, values.astype(np.float32).astype(np.float64))  # every rate is a float32 number
    assert np.any(values != expected)
    if schedule != "piecewise_constant":
        assert relative(values, expected) <= 4 * FLOAT32


def test_keras_piecewise_constant_switches_one_step_after_each_boundary():
    _, values, expected = rates("keras", "piecewise_constant")
    late = np.concatenate([[expected[0]], expected[:-1]])  # the catalog's rates, one step later
    assert relative(values, late) <= FLOAT32
    assert values[20] == np.float32(BASE) and expected[20] == 0.5 * BASE


@pytest.mark.parametrize("backend", ["torch", "keras", "jax"])
def test_a_native_constant_rate_is_the_base_rate_at_every_step(backend):
    trainer, _ = make_trainer(backend, "mlp-relu-adam", "float64", ('implementation = "native"',))
    assert trainer.spec.schedule.name == "constant" and trainer.native_fallbacks == []
    assert np.array_equal(trainer.learning_rates(57, 57, 57), np.full(57, BASE))


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_schedule_without_a_built_in_falls_back_to_the_catalog_and_says_so(backend):
    trainer, values, expected = rates(backend, "inverse_time")
    assert trainer.native_fallbacks == ["schedule"]
    assert np.array_equal(values, expected)


@pytest.mark.parametrize("backend", ["torch", "keras", "jax", "numpy"])
def test_catalog_mode_and_a_catalog_schedule_keep_the_closed_form(backend):
    for overrides in ((), ('implementation = "native"', 'catalog_components = ["schedule"]')):
        trainer, _ = make_trainer(backend, "mlp-relu-adam", "float64", (f"schedule = {SCHEDULES['cosine']}", *overrides))
        values = trainer.learning_rates(0, STEPS, PER_EPOCH)
        assert np.array_equal(values, catalog_rates(BASE, trainer.spec.schedule, 0, STEPS, PER_EPOCH)), overrides


def test_a_native_run_trains_with_the_frameworks_rates():
    """training_epochs hands the trainer's own rates to each epoch: torch's cosine, past its period, climbs again."""
    trainer, _ = make_trainer("torch", "mlp-relu-adam", "float64", (f"schedule = {SCHEDULES['cosine']}",
                                                                     'implementation = "native"', "training.batch_size = 5"))
    epochs = training_epochs(trainer.spec, 100, trainer.learning_rates)  # 20 steps per epoch
    per_epoch = [rates for _, (_, rates) in zip(range(5), epochs)]
    assert per_epoch[4][-1] > per_epoch[1][-1]  # step 99 (rising) above step 39 (the minimum)
    assert per_epoch[4][0] == pytest.approx(BASE * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 80 / 40))), rel=1e-12)
