"""Shuffling and batching by the runner: one NumPy generator seeded from the spec, same in every backend.

Each backend process re-creates the generator from the same seed, so every backend sees
identical batches in identical order. Streams are keyed by purpose so that adding a
consumer never shifts another: [seed, 2] drives the epoch permutations.
"""

import itertools
from collections.abc import Callable, Iterator

import numpy as np

from experiments.catalog.schedules import learning_rates

SHUFFLE_STREAM = 2


def shuffle_generator(seed: int) -> np.random.Generator:
    """The generator whose successive permutations define every epoch's batch order."""
    return np.random.default_rng([seed, SHUFFLE_STREAM])


def steps_per_epoch(num_samples: int, batch_size: int, drop_last: bool) -> int:
    """floor(N / B) when the last partial batch is dropped, else ceil(N / B)."""
    return num_samples // batch_size if drop_last else -(-num_samples // batch_size)


def epoch_batches(rng: np.random.Generator, num_samples: int, batch_size: int, drop_last: bool) -> list[np.ndarray]:
    """Index arrays of one epoch: a fresh permutation cut into batches of batch_size."""
    order = rng.permutation(num_samples)
    count = steps_per_epoch(num_samples, batch_size, drop_last)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(count)]


RatesFunction = Callable[[int, int, int], np.ndarray]  # (first_step, count, steps_per_epoch) -> float64 rates


def training_epochs(spec, num_samples: int, rates: RatesFunction | None = None) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
    """Each epoch's batches and per-step learning rates, without end, as a run trains them: the spec's seed, batch
    size, drop_last and schedule (the caller stops after spec.training.epochs, or after as many steps as it needs).
    `rates` gives the rates (a trainer's learning_rates, which is the framework's own scheduler in native mode);
    by default the catalog's closed form."""
    batch_size, drop_last = spec.training.batch_size, spec.training.drop_last
    per_epoch = steps_per_epoch(num_samples, batch_size, drop_last)
    if rates is None:
        def rates(first_step: int, count: int, per_epoch: int) -> np.ndarray:
            return learning_rates(spec.optimizer.learning_rate, spec.schedule, first_step, count, per_epoch)
    rng = shuffle_generator(spec.seed)
    for epoch in itertools.count():
        yield epoch_batches(rng, num_samples, batch_size, drop_last), rates(epoch * per_epoch, per_epoch, per_epoch)
