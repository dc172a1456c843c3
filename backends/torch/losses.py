"""Per-sample losses on logits, realising the loss catalog's formulas (experiments.catalog.losses)."""

from typing import Callable

import torch
import torch.nn.functional as F

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (N, C), y (N, C)) -> (N,)


def _log_probabilities(output_activation: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """log p over the class axis: log_softmax for softmax/linear outputs, normalised sigmoids for sigmoid."""
    if output_activation in ("softmax", "linear"):
        return lambda z: F.log_softmax(z, dim=1)
    if output_activation == "sigmoid":  # p = sigmoid(z) / sum_c sigmoid(z_c), without Keras' 1e-7 clip

        def log_normalised_sigmoid(z: torch.Tensor) -> torch.Tensor:
            log_s = F.logsigmoid(z)
            return log_s - torch.logsumexp(log_s, dim=1, keepdim=True)

        return log_normalised_sigmoid
    raise ValueError(f"the torch backend has no output activation {output_activation!r}")


def _output(output_activation: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The output activation a(z) applied to the logits."""
    if output_activation == "softmax":
        return lambda z: F.softmax(z, dim=1)
    if output_activation == "sigmoid":
        return torch.sigmoid
    if output_activation == "linear":
        return lambda z: z
    raise ValueError(f"the torch backend has no output activation {output_activation!r}")


def make_loss(loss, output_activation) -> PerSampleLoss:
    """The per-sample loss; the training loss is its batch mean.

    categorical_crossentropy: -sum_c y'_c log p_c, y' = (1 - eps) y + eps / C (as torch's
    CrossEntropyLoss with probability targets and label_smoothing, written out so that the
    sigmoid output shares it). mse: (1/C) sum_c (a(z)_c - y_c)^2, so the batch mean equals
    MSELoss(reduction="mean").
    """
    if loss.name == "categorical_crossentropy":
        log_p, smoothing = _log_probabilities(output_activation.name), loss.label_smoothing

        def crossentropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if smoothing > 0.0:
                y = (1.0 - smoothing) * y + smoothing / y.shape[1]
            return -(y * log_p(z)).sum(dim=1)

        return crossentropy
    if loss.name == "mse":
        a = _output(output_activation.name)
        return lambda z, y: (a(z) - y).square().mean(dim=1)
    raise ValueError(f"the torch backend has no loss {loss.name!r}")
