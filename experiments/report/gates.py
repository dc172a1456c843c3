"""Sanity gate: a run far below the known accuracy band for its model is flagged "implementation suspect".

The reference bands are for full MNIST (60,000 training digits) after the standard budget,
without augmentation: a plain MLP trained well reaches 98.0-98.5% test accuracy, a small CNN
99.0-99.3% (LeCun's MNIST table and common practice). Most runs
here train on far fewer digits (the 5,000-digit subset leaves 3,600 for training after a 10%
hold-out; an MLP with ReLU and Adam reaches about 94% there), so the band cannot be applied as
it stands. The rule below is a choice, not a law; its numbers are constants of this module:

1. The gate applies only to the standard recipe the bands describe: the 10-digit task,
   categorical cross-entropy, an adaptive optimizer (Adam, AdamW, Nadam, Adamax, RMSprop),
   an MLP or CNN, at least MIN_EPOCHS epochs and at least MIN_TRAIN_DIGITS training digits.
   Every other run (MSE or SGD study runs, short smoke runs, binary tasks) is marked
   "no reference band", with the reason.
2. The test error the band allows at 60,000 digits is e = 100 - band's lower edge (2.0 points
   for the MLP, 1.0 for the CNN). With n training digits, the expected error is scaled by the
   learning-curve factor sqrt(60,000 / n) (an error ~ n^-1/2 learning curve; never below 1).
3. "Far below" means more than ERROR_FACTOR = 2 times that error: the run is flagged when
   test accuracy < 100 - 2 * e * max(1, sqrt(60,000 / n)).

Thresholds this gives: MLP 96.0% at 60,000 digits, 95.8% at 54,000, 83.7% at 3,600; CNN 98.0%,
97.9% and 91.8%. A run above its threshold is "plausible", which proves nothing about parity;
a flag does not prove a bug either, but asks for one to be looked for (a classic: an optimizer
default that silently differs).

References: Y. LeCun et al., "The MNIST database of handwritten digits" (results table).
"""

import math
from dataclasses import dataclass

REFERENCE_TRAIN_DIGITS = 60_000
ERROR_FACTOR = 2.0
LEARNING_CURVE_EXPONENT = 0.5
MIN_EPOCHS = 10
MIN_TRAIN_DIGITS = 1_000
STANDARD_LOSS = "categorical_crossentropy"
ADAPTIVE_OPTIMIZERS = ("adam", "adamw", "nadam", "adamax", "rmsprop")

PLAUSIBLE = "plausible"
SUSPECT = "implementation suspect"
NO_BAND = "no reference band"
NOT_GATED = "not gated"


@dataclass(frozen=True)
class Band:
    """Test accuracy in points a model of this kind reaches on full MNIST after the standard budget."""

    low: float
    high: float


REFERENCE_BANDS = {"mlp": Band(98.0, 98.5), "cnn": Band(99.0, 99.3)}


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one run and backend; threshold and band in accuracy points."""

    status: str
    reason: str
    threshold: float | None = None
    band: Band | None = None

    @property
    def flagged(self) -> bool:
        return self.status == SUSPECT


def threshold(band: Band, train_digits: int) -> float:
    """The accuracy (points) below which a run with train_digits training digits is flagged."""
    scale = max(1.0, (REFERENCE_TRAIN_DIGITS / train_digits) ** LEARNING_CURVE_EXPONENT)
    return 100.0 - ERROR_FACTOR * (100.0 - band.low) * scale


def _outside_recipe(spec: dict, train_digits: int | None) -> str:
    """Why the run is outside the bands' recipe, or "" when the gate applies."""
    task = spec.get("data", {}).get("task", "digits")
    loss = spec.get("loss", {}).get("name")
    optimizer = spec.get("optimizer", {}).get("name")
    kind = spec.get("model", {}).get("kind")
    epochs = spec.get("training", {}).get("epochs")
    if task != "digits":
        return f"task {task} (the bands are for the 10-digit task)"
    if loss != STANDARD_LOSS:
        return f"loss {loss} (the bands assume {STANDARD_LOSS})"
    if optimizer not in ADAPTIVE_OPTIMIZERS:
        return f"optimizer {optimizer} (the bands assume an adaptive optimizer: {', '.join(ADAPTIVE_OPTIMIZERS)})"
    if kind not in REFERENCE_BANDS:
        return f"model kind {kind} (bands exist for {', '.join(REFERENCE_BANDS)})"
    if not isinstance(epochs, int) or epochs < MIN_EPOCHS:
        return f"{epochs} epoch{'' if epochs == 1 else 's'} (the bands need the standard budget: at least {MIN_EPOCHS})"
    if train_digits is None:
        return "training-set size not recorded"
    if train_digits < MIN_TRAIN_DIGITS:
        return f"{train_digits:,} training digits (fewer than {MIN_TRAIN_DIGITS:,})"
    return ""


def gate(spec: dict, train_digits: int | None, test_accuracy: float | None, ok: bool = True) -> Verdict:
    """Judge one backend's test accuracy (a fraction) against its model's band.

    Args:
        spec: the resolved spec as plain data (results.json "spec").
        train_digits: training digits used, after the validation hold-out.
        test_accuracy: the final test accuracy as a fraction, None when the backend failed.
        ok: whether the backend finished.

    Returns:
        The verdict; its reason says why a run is outside the recipe or how far below it is.
    """
    if not ok:
        return Verdict(NOT_GATED, "the backend did not finish")
    if test_accuracy is None or not math.isfinite(test_accuracy):
        return Verdict(NOT_GATED, "no finite test accuracy: the training diverged")
    outside = _outside_recipe(spec, train_digits)
    if outside:
        return Verdict(NO_BAND, outside)
    band = REFERENCE_BANDS[spec["model"]["kind"]]
    limit = threshold(band, train_digits)
    points = 100.0 * test_accuracy
    where = (f"{points:.2f}% vs threshold {limit:.1f}% ({spec['model']['kind']} band {band.low:g}-{band.high:g}% "
             f"at {REFERENCE_TRAIN_DIGITS:,} digits, scaled to {train_digits:,})")
    if points < limit:
        return Verdict(SUSPECT, where, limit, band)
    return Verdict(PLAUSIBLE, where, limit, band)


def rule_text() -> str:
    """The rule in one paragraph, for the report."""
    mlp, cnn = REFERENCE_BANDS["mlp"], REFERENCE_BANDS["cnn"]
    return (
        f"Sanity gate (a documented choice, not a law). Reference bands on full MNIST ({REFERENCE_TRAIN_DIGITS:,} training "
        f"digits, standard budget): MLP {mlp.low:g}-{mlp.high:g}%, small CNN {cnn.low:g}-{cnn.high:g}% test accuracy. "
        f"The gate applies only to the standard recipe: the 10-digit task, {STANDARD_LOSS}, an adaptive optimizer "
        f"({', '.join(ADAPTIVE_OPTIMIZERS)}), at least {MIN_EPOCHS} epochs and {MIN_TRAIN_DIGITS:,} training digits; "
        f"other runs are marked '{NO_BAND}'. With n training digits, a run is flagged '{SUSPECT}' when its test accuracy "
        f"is below 100 - {ERROR_FACTOR:g} x (100 - band's lower edge) x max(1, sqrt({REFERENCE_TRAIN_DIGITS:,} / n)): "
        f"more than {ERROR_FACTOR:g} times the error the band predicts after scaling it with an error ~ n^-1/2 learning "
        f"curve. That is MLP {threshold(mlp, 60_000):.1f}% / CNN {threshold(cnn, 60_000):.1f}% at 60,000 digits and "
        f"MLP {threshold(mlp, 3_600):.1f}% / CNN {threshold(cnn, 3_600):.1f}% at the subset's 3,600 "
        f"(an MLP with ReLU and Adam measures about 94% there). Flagged runs are listed here and stay in every table."
    )
