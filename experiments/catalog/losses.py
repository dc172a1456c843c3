"""Losses on the model's logits z and one-hot targets y, each reduced by the mean over the batch."""

from typing import Annotated, Literal

from pydantic import Field

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union


class CategoricalCrossentropy(Entry):
    """Categorical cross-entropy, batch mean of l = -sum_c y'_c log p_c.

    y' = (1 - label_smoothing) * y + label_smoothing / C (the torch, Keras and optax formula).
    The probabilities p come from the output activation:
    - softmax or linear output: log p = log_softmax(z), computed from the logits
      (torch CrossEntropyLoss, Keras from_logits=True, optax softmax_cross_entropy);
    - sigmoid output (the seed MLP): p = sigmoid(z) / sum_c sigmoid(z_c), i.e.
      log p = log_sigmoid(z) - logsumexp(log_sigmoid(z)). This is what Keras'
      probability-form categorical_crossentropy computes, without its 1e-7 clip.
    """

    name: Literal["categorical_crossentropy"]
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] = 0.0


class MeanSquaredError(Entry):
    """Mean squared error on one-hot targets: batch mean of (1/C) sum_c (a(z)_c - y_c)^2.

    a is the output activation (softmax, sigmoid or identity). Equals torch MSELoss('mean'),
    Keras MeanSquaredError and mean(optax.squared_error) for (N, C) tensors; note that
    optax.l2_loss carries an extra factor 0.5.
    """

    name: Literal["mse"]


LOSS_ENTRIES = (CategoricalCrossentropy, MeanSquaredError)
LOSSES = registry(*LOSS_ENTRIES)
Loss = tagged_union(*LOSS_ENTRIES)
