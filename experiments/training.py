"""The training loop every backend shares: batches, learning rates, metrics, NaN checks, timing."""

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from experiments.batching import steps_per_epoch, training_epochs
from experiments.spec import ExperimentSpec

EVAL_BATCH_SIZE = 1000


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class SplitData:
    """Model-ready arrays: x (N, 28, 28, 1) and one-hot y (N, C), in the spec's dtype."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of one backend: train-mode running metrics, then eval-mode validation metrics."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    epoch_time_s: float
    elapsed_s: float


@dataclass(frozen=True)
class TrainingResult:
    """Final metrics of one backend's run."""

    test_loss: float
    test_accuracy: float
    train_time_s: float
    samples_per_s: float
    steady_samples_per_s: float | None  # None with one epoch: it would include compilation
    history: list[EpochRecord]

    def metrics(self) -> dict:
        data = asdict(self)
        data.pop("history")
        return data


def train(trainer, spec: ExperimentSpec, data: SplitData, on_epoch: Callable[[EpochRecord], None]) -> TrainingResult:
    """Train for spec.training.epochs epochs, evaluating on validation each epoch and on test at the end.

    train_time_s counts only the optimizer steps (compilation included); samples_per_s is
    the number of training samples processed divided by it. steady_samples_per_s leaves out
    the first epoch (where jit/tf.function compile); with a single epoch there is no steady state and it is None.
    """
    n = len(data.x_train)
    batch_size, drop_last = spec.training.batch_size, spec.training.drop_last
    per_epoch = steps_per_epoch(n, batch_size, drop_last)
    if per_epoch == 0:
        raise ValueError(f"training.batch_size {batch_size} exceeds the {n} training samples with drop_last")
    trainer.load_training_data(data.x_train, data.y_train)
    history: list[EpochRecord] = []
    train_time, samples, started = 0.0, 0, time.perf_counter()
    for epoch, (batches, rates) in zip(range(1, spec.training.epochs + 1), training_epochs(spec, n, trainer.learning_rates)):
        tick = time.perf_counter()
        stats = trainer.train_epoch(batches, rates)
        epoch_time = time.perf_counter() - tick
        train_time += epoch_time
        sizes = np.array([len(b) for b in batches], dtype=np.float64)
        losses = np.asarray(stats.loss, dtype=np.float64)
        if not np.all(np.isfinite(losses)):
            step = int(np.argmin(np.isfinite(losses)))
            raise NonFiniteLoss(f"loss became {losses[step]} at epoch {epoch}, step {step + 1}")
        samples += int(sizes.sum())
        val_loss, val_accuracy = (
            trainer.evaluate(data.x_val, data.y_val, EVAL_BATCH_SIZE) if len(data.x_val) else (None, None)
        )
        record = EpochRecord(
            epoch=epoch,
            train_loss=float(losses @ sizes / sizes.sum()),
            train_accuracy=float(np.sum(stats.correct) / sizes.sum()),
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            learning_rate=float(rates[-1]),
            epoch_time_s=epoch_time,
            elapsed_s=time.perf_counter() - started,
        )
        history.append(record)
        on_epoch(record)
    test_loss, test_accuracy = trainer.evaluate(data.x_test, data.y_test, EVAL_BATCH_SIZE)
    if not np.isfinite(test_loss):
        raise NonFiniteLoss(f"test loss is {test_loss}")
    return TrainingResult(
        test_loss, test_accuracy, train_time, _rate(samples, train_time), _steady_rate(history, n, drop_last, batch_size), history
    )


def _rate(samples: float, seconds: float) -> float:
    return samples / seconds if seconds > 0 else 0.0


def _steady_rate(history: list[EpochRecord], n: int, drop_last: bool, batch_size: int) -> float | None:
    """Samples per second over epochs 2..; None when there is only one epoch (its time includes compilation)."""
    per_epoch = steps_per_epoch(n, batch_size, drop_last) * batch_size if drop_last else n
    epochs = history[1:]
    return _rate(per_epoch * len(epochs), sum(record.epoch_time_s for record in epochs)) if epochs else None
