"""The runner's batch order and learning-rate closed forms (the seed's test vector)."""

import numpy as np
import pytest
from pydantic import TypeAdapter

from experiments.batching import epoch_batches, shuffle_generator, steps_per_epoch
from experiments.catalog import Schedule
from experiments.catalog.schedules import learning_rates

EXACT = 1e-15  # relative: closed forms evaluated in float64


def schedule(**table):
    return TypeAdapter(Schedule).validate_python(table)


def test_seed_exponential_staircase_vector():
    rates = learning_rates(0.1, schedule(name="exponential", decay_rate=0.9, decay_epochs=1, staircase=True), 0, 6, 2)
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.09, 0.09, 0.081, 0.081], rtol=EXACT)


def test_exponential_smooth_and_by_steps():
    rates = learning_rates(0.1, schedule(name="exponential", decay_rate=0.5, decay_steps=4), 0, 5, 100)
    np.testing.assert_allclose(rates, 0.1 * 0.5 ** (np.arange(5) / 4), rtol=EXACT)


def test_exponential_needs_exactly_one_period():
    with pytest.raises(Exception, match="exactly one of decay_steps or decay_epochs"):
        schedule(name="exponential", decay_rate=0.9)


def test_constant_offsets_are_continuous():
    s = schedule(name="constant")
    assert np.all(learning_rates(0.01, s, 10, 3, 5) == 0.01)


@pytest.mark.parametrize("n, batch, drop_last, steps", [(10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (2, 5, True, 0)])
def test_steps_per_epoch(n, batch, drop_last, steps):
    assert steps_per_epoch(n, batch, drop_last) == steps


def test_batches_are_a_deterministic_partition():
    first = [epoch_batches(shuffle_generator(7), 100, 32, False) for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*first))
    assert [len(b) for b in first[0]] == [32, 32, 32, 4]
    assert sorted(np.concatenate(first[0]).tolist()) == list(range(100))
    rng = shuffle_generator(7)
    epoch1, epoch2 = epoch_batches(rng, 100, 32, False), epoch_batches(rng, 100, 32, False)
    assert not np.array_equal(epoch1[0], epoch2[0])
    other_seed = epoch_batches(shuffle_generator(8), 100, 32, False)
    assert not np.array_equal(epoch1[0], other_seed[0])
