"""Per-sample losses on logits, realising the loss catalog's formulas (experiments.catalog.losses)."""

from typing import Callable

import torch
import torch.nn.functional as F

from backends.torch.layers import activation_function

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (N, C), y (N, C)) -> (N,)


def _forward_only(output_activation: str, loss: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def refuse(z: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"{loss} has no probabilities for the forward-only output activation {output_activation!r}; "
                         "use predict_logits (or mse) with it")

    return refuse


def _log_probabilities(output_activation: str, loss: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """log p over the class axis: log_softmax for softmax/linear outputs, normalised sigmoids for sigmoid."""
    if output_activation in ("softmax", "linear"):
        return lambda z: F.log_softmax(z, dim=1)
    if output_activation == "sigmoid":  # p = sigmoid(z) / sum_c sigmoid(z_c), without Keras' 1e-7 clip

        def log_normalised_sigmoid(z: torch.Tensor) -> torch.Tensor:
            log_s = F.logsigmoid(z)
            return log_s - torch.logsumexp(log_s, dim=1, keepdim=True)

        return log_normalised_sigmoid
    if output_activation in ("step", "sign"):  # a model with them is built for forward checks only
        return _forward_only(output_activation, loss)
    raise ValueError(f"the torch backend has no output activation {output_activation!r}")


def _smoothed(y: torch.Tensor, smoothing: float, classes: float) -> torch.Tensor:
    """y' = (1 - smoothing) y + smoothing / classes; y itself without smoothing."""
    return (1.0 - smoothing) * y + smoothing / classes if smoothing > 0.0 else y


def make_loss(loss, output_activation) -> PerSampleLoss:
    """The per-sample loss; the training loss is its batch mean.

    categorical_crossentropy: -sum_c y'_c log p_c, y' = (1 - eps) y + eps / C (as torch's
    CrossEntropyLoss with probability targets and label_smoothing, written out so that the
    sigmoid output shares it).
    kl_divergence: sum_c y'_c (log y'_c - log p_c) with xlogy(0, 0) = 0, same y' and p; the batch
    mean is torch's KLDivLoss(reduction="batchmean").
    binary_crossentropy: mean_c [softplus(z_c) - y'_c z_c], y' = (1 - eps) y + eps / 2, softplus as
    logaddexp(z, 0): BCEWithLogitsLoss's formula, written out because torch has no smoothing for it
    and computes log(exp(-m) + exp(-z - m)), which loses log1p's accuracy where the loss is tiny.
    mse: (1/C) sum_c (a(z)_c - y_c)^2, so the batch mean equals MSELoss(reduction="mean").
    """
    name, output = loss.name, output_activation.name
    if name in ("categorical_crossentropy", "kl_divergence"):
        log_p, smoothing = _log_probabilities(output, name), loss.label_smoothing

        if name == "categorical_crossentropy":

            def crossentropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return -(_smoothed(y, smoothing, y.shape[1]) * log_p(z)).sum(dim=1)

            return crossentropy

        def kl_divergence(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            y = _smoothed(y, smoothing, y.shape[1])
            return (torch.xlogy(y, y) - y * log_p(z)).sum(dim=1)

        return kl_divergence
    if name == "binary_crossentropy":
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"binary_crossentropy takes sigmoid (or linear: logits) outputs, not {output!r}")
        smoothing = loss.label_smoothing

        def binary_crossentropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            y = _smoothed(y, smoothing, 2.0)
            return (torch.logaddexp(z, z.new_zeros(())) - y * z).mean(dim=1)

        return binary_crossentropy
    if name == "mse":
        a = activation_function(output_activation)
        return lambda z, y: (a(z) - y).square().mean(dim=1)
    raise ValueError(f"the torch backend has no loss {name!r}")
