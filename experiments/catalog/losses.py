"""Losses on the model's logits z and targets y, each reduced by the mean over the batch.

y is one-hot (N, C) for the 10-digit task and (N, 1) of 0/1 for a binary task. The
probabilities p come from the output activation: softmax or linear outputs are treated as
logits of a softmax (log p = log_softmax(z)); a sigmoid output over C > 1 classes is
normalised to sum to 1 (log p = log_sigmoid(z) - logsumexp(log_sigmoid(z))), which is what
Keras' probability-form losses compute, without their 1e-7 clip.
"""

from typing import Annotated, Literal

from pydantic import Field

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union

Smoothing = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]


class CategoricalCrossentropy(Entry):
    """Categorical cross-entropy: l = -sum_c y'_c log p_c, batch mean.

    y' = (1 - label_smoothing) y + label_smoothing / C (the torch, Keras and optax formula).
    Softmax/linear outputs use the logits directly (torch CrossEntropyLoss, Keras
    from_logits=True, optax softmax_cross_entropy).
    """

    name: Literal["categorical_crossentropy"]
    label_smoothing: Smoothing = 0.0


class BinaryCrossentropy(Entry):
    """Binary cross-entropy from logits: l = mean_c [softplus(z_c) - y'_c z_c], batch mean.

    That is -[y' log sigmoid(z) + (1 - y') log(1 - sigmoid(z))], computed without clipping
    (torch BCEWithLogitsLoss, optax sigmoid_binary_cross_entropy; Keras' probability form clips
    to [1e-7, 1 - 1e-7] and torch's BCELoss clamps logs at -100). Smoothing as Keras does for
    BCE: y' = (1 - label_smoothing) y + label_smoothing / 2. The output activation must be
    sigmoid (or linear: logits). With a binary task (one output) this is the seed's sigmoid
    classifier; with 10 outputs it treats each digit as an independent yes/no.
    """

    name: Literal["binary_crossentropy"]
    label_smoothing: Smoothing = 0.0


class KlDivergence(Entry):
    """Kullback-Leibler divergence KL(y' || p) = sum_c y'_c (log y'_c - log p_c), 0 log 0 = 0, batch mean.

    The batch mean is torch's reduction="batchmean" (its default "mean" divides by N*C too),
    Keras' KLDivergence (which also clips y to >= 1e-7) and optax kl_divergence plus a mean.
    With one-hot targets and no smoothing it equals categorical cross-entropy.
    """

    name: Literal["kl_divergence"]
    label_smoothing: Smoothing = 0.0


class MeanSquaredError(Entry):
    """Mean squared error on the targets: batch mean of (1/C) sum_c (a(z)_c - y_c)^2.

    a is the output activation (softmax, sigmoid or identity). Equals torch MSELoss('mean'),
    Keras MeanSquaredError and mean(optax.squared_error) for (N, C) tensors; note that
    optax.l2_loss carries an extra factor 0.5.
    """

    name: Literal["mse"]


LOSS_ENTRIES = (CategoricalCrossentropy, BinaryCrossentropy, KlDivergence, MeanSquaredError)
LOSSES = registry(*LOSS_ENTRIES)
Loss = tagged_union(*LOSS_ENTRIES)
