"""Per-sample losses on logits: the catalog's losses (experiments.catalog.losses) written on torch ops."""

from typing import Callable

import torch
import torch.nn.functional as F

from backends.torch.activations import activation_function

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (N, C), y (N, C)) -> (N,)


def _forward_only(output_activation: str, loss: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def refuse(z: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"{loss} has no probabilities for the forward-only output activation {output_activation!r}; "
                         "use predict_logits (or mse) with it")

    return refuse


def _log_probabilities(output_activation: str, loss: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The catalog's log p over the class axis for the output activation."""
    if output_activation in ("softmax", "linear"):
        return lambda z: F.log_softmax(z, dim=1)
    if output_activation == "sigmoid":

        def log_normalised_sigmoid(z: torch.Tensor) -> torch.Tensor:
            log_s = F.logsigmoid(z)
            return log_s - torch.logsumexp(log_s, dim=1, keepdim=True)

        return log_normalised_sigmoid
    if output_activation in ("step", "sign"):  # a model with them is built for forward checks only
        return _forward_only(output_activation, loss)
    raise ValueError(f"the torch backend has no output activation {output_activation!r}")


def _smoothed(y: torch.Tensor, smoothing: float, classes: float) -> torch.Tensor:
    """The catalog's smoothed targets; y itself without smoothing."""
    return (1.0 - smoothing) * y + smoothing / classes if smoothing > 0.0 else y


def make_loss(loss, output_activation) -> PerSampleLoss:
    """The per-sample loss; the training loss is its batch mean.

    Softmax (or linear: logits) cross-entropy is F.cross_entropy with probability targets and its label_smoothing:
    in torch 2.13 that is -(log_softmax(z) * ((1 - s) y + s / C)).sum(1) in ATen, the catalog's formula op for op
    (bit-identical values and gradients, tests/test_torch_fast_paths.py), with fewer Python-level calls. Written out
    here: a sigmoid output's normalised log p under a categorical loss; the KL divergence (KLDivLoss takes a
    softmax only, and log p is shared with the sigmoid output); binary cross-entropy (BCEWithLogitsLoss has no
    label smoothing and computes log(exp(-m) + exp(-z - m)), which loses log1p's accuracy where the loss is tiny:
    torch.logaddexp here); MSELoss(reduction="mean") is the batch mean of the mse written here.
    """
    name, output = loss.name, output_activation.name
    if name in ("categorical_crossentropy", "kl_divergence"):
        log_p, smoothing = _log_probabilities(output, name), loss.label_smoothing

        if name == "categorical_crossentropy":
            if output in ("softmax", "linear"):  # F.cross_entropy's probability-target path is this formula
                return lambda z, y: F.cross_entropy(z, y, reduction="none", label_smoothing=smoothing)

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


def make_native_loss(loss, output_activation) -> PerSampleLoss | None:
    """implementation = "native": the per-sample loss from torch.nn.functional's built-ins (reduction "none"), or
    None where torch has none for the pairing (the caller falls back to make_loss).

    softmax (or linear: logits) + categorical_crossentropy: F.cross_entropy with probability targets and its own
    label_smoothing; sigmoid (or linear) + binary_crossentropy: F.binary_cross_entropy_with_logits on targets
    smoothed by hand (it has no label_smoothing), mean over the outputs; softmax (or linear) + kl_divergence: F.kl_div
    of F.log_softmax, targets smoothed by hand, summed over the classes; mse: F.mse_loss of the output activation,
    mean over the outputs. A sigmoid output under a categorical loss (normalised sigmoid) has no built-in."""
    name, output = loss.name, output_activation.name
    smoothing = getattr(loss, "label_smoothing", 0.0)
    if name == "categorical_crossentropy" and output in ("softmax", "linear"):
        return lambda z, y: F.cross_entropy(z, y, reduction="none", label_smoothing=smoothing)
    if name == "kl_divergence" and output in ("softmax", "linear"):
        return lambda z, y: F.kl_div(F.log_softmax(z, dim=1), _smoothed(y, smoothing, y.shape[1]),
                                     reduction="none").sum(dim=1)
    if name == "binary_crossentropy" and output in ("sigmoid", "linear"):
        return lambda z, y: F.binary_cross_entropy_with_logits(z, _smoothed(y, smoothing, 2.0), reduction="none").mean(dim=1)
    if name == "mse" and output in ("softmax", "sigmoid", "linear"):
        a = activation_function(output_activation)
        return lambda z, y: F.mse_loss(a(z), y, reduction="none").mean(dim=1)
    return None
