"""The torch model built from a layer plan: one NCHW module per plan layer, each realising the suite's formula."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from backends.torch.activations import NATIVE_ACTIVATIONS, activation_module, native_activation_module
from experiments.spec import plan as P
from experiments.spec.plan import same_padding


class Conv2D(nn.Conv2d):
    """Conv2d pads symmetrically (its padding="same" pads an even kernel like TF, with a warning): odd kernels use
    that padding, even kernels F.pad the extra pixel at the end explicitly, "valid" pads nothing."""

    def __init__(self, layer: P.Conv2D, dtype: torch.dtype):
        k = layer.kernel_size
        lo, hi = same_padding(layer.input_shape[0], k, 1) if layer.padding == "same" else (0, 0)
        super().__init__(
            layer.input_shape[-1], layer.filters, k, stride=1, padding=lo if lo == hi else 0,
            dilation=1, groups=1, bias=True, padding_mode="zeros", device="meta", dtype=dtype,
        )
        self.asymmetric = (lo, hi, lo, hi) if lo != hi else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        if self.asymmetric is not None:
            x = F.pad(x, self.asymmetric, mode="constant", value=0.0)
        return super().forward(x)


class MaxPool2D(nn.Module):
    """nn.MaxPool2d has no "same" and pads symmetrically: this module F.pads with -inf (the extra pixel at the end)
    and pools with padding 0, exact for any size and stride (ceil_mode=True would be exact for k = s = 2 only)."""

    def __init__(self, layer: P.MaxPool2D):
        super().__init__()
        self.size, self.stride = layer.size, layer.stride
        height, width, _ = layer.input_shape
        if layer.padding == "same":
            (top, bottom), (left, right) = same_padding(height, self.size, self.stride), same_padding(width, self.size, self.stride)
        else:
            top = bottom = left = right = 0
        self.pad = (left, right, top, bottom) if any((top, bottom, left, right)) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        if self.pad is not None:
            x = F.pad(x, self.pad, mode="constant", value=-math.inf)
        return F.max_pool2d(x, self.size, self.stride, padding=0, dilation=1, ceil_mode=False, return_indices=False)


class BatchNorm(nn.Module):
    """The suite's batch norm (experiments.spec.model.BatchNorm) over dim 1.

    Not nn.BatchNorm: its momentum is 1 - the suite's and its running variance unbiased. Train mode is written out
    in two passes (mean, then mean squared deviation) under autograd rather than F.batch_norm's fused CPU kernel:
    over seed-cnn's 50,176 values per channel that kernel's statistics are 2.2e-13 off in float64 (two-pass:
    3.6e-16), and in float32 its gradients came out 1-5% away from the oracle, Keras and JAX (which agree to 1e-5;
    written out: 1.2e-5). Cost: float32 seed-cnn 1,346 -> 1,068-1,132 samples/s. Eval mode keeps F.batch_norm.
    """

    def __init__(self, layer: P.BatchNormalization, dtype: torch.dtype):
        super().__init__()
        features = layer.input_shape[-1]
        self.momentum, self.epsilon = layer.momentum, layer.epsilon
        self.weight = nn.Parameter(torch.ones(features, dtype=dtype))  # canonical "scale"
        self.bias = nn.Parameter(torch.zeros(features, dtype=dtype))  # canonical "offset"
        self.register_buffer("running_mean", torch.zeros(features, dtype=dtype))
        self.register_buffer("running_var", torch.ones(features, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C) or (N, C, H, W)
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                training=False, momentum=0.0, eps=self.epsilon)
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dim=dims, keepdim=True)
        var = (x - mean).square().mean(dim=dims, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.epsilon) * self.weight.reshape(mean.shape) + self.bias.reshape(mean.shape)
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(m).add_((1.0 - m) * mean.detach().reshape(-1))
            self.running_var.mul_(m).add_((1.0 - m) * var.detach().reshape(-1))
        return y


class Dropout(nn.Module):
    """Not F.dropout, which draws from torch's global generator: masks come from the trainer's Generator, as
    uniform < keep (about 3x faster than F.dropout's bernoulli_ on the CPU), or from `noise` when the trainer sets
    it (the multiplier, shaped like x, torch layout), which leaves the generator untouched."""

    def __init__(self, layer: P.Dropout, generator: torch.Generator):
        super().__init__()
        self.rate, self.generator = layer.rate, generator
        self.noise: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if self.noise is not None:
            return x * self.noise
        keep = 1.0 - self.rate
        mask = torch.rand(x.shape, generator=self.generator, dtype=x.dtype) < keep
        return x * mask.to(x.dtype).div_(keep)


class NativeDropout(nn.Dropout):
    """implementation = "native": nn.Dropout (masks from torch's global generator), except that a multiplier given as
    `noise` (the trainer's injected noise, torch layout) is used as it is."""

    def __init__(self, layer: P.Dropout):
        super().__init__(p=layer.rate)
        self.noise: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise is not None:
            return x * self.noise
        return super().forward(x)


def native_module(layer: P.Layer, dtype: torch.dtype, native) -> nn.Module | None:
    """implementation = "native": torch.nn's own module for the layer where `native(component, entry, available=...)`
    (backends.base.Trainer.native) says so, else None (the catalog's module). BatchNorm: nn.BatchNorm2d/1d with
    momentum 1 - the spec's (torch's convention), eps, torch's kernel (unbiased running variance); MaxPool2D:
    nn.MaxPool2d for "valid" padding only (torch has no "same"); Dropout: nn.Dropout; activations: torch.nn's module
    where there is one (activations.NATIVE_ACTIVATIONS)."""
    if isinstance(layer, P.BatchNormalization) and native("batch_norm"):
        features = layer.input_shape[-1]
        kind = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
        return kind(features, eps=layer.epsilon, momentum=1.0 - layer.momentum, dtype=dtype)
    if isinstance(layer, P.MaxPool2D) and native("pooling", available=layer.padding == "valid"):
        return nn.MaxPool2d(layer.size, stride=layer.stride)
    if isinstance(layer, P.Dropout) and native("dropout"):
        return NativeDropout(layer)
    if isinstance(layer, P.Activation):
        entry = layer.activation
        if native("activation", entry.name, available=entry.name in NATIVE_ACTIVATIONS):
            return native_activation_module(entry, layer.input_shape[-1], dtype)
    return None


def build_module(layer: P.Layer, dtype: torch.dtype, generator: torch.Generator, native=None) -> nn.Module:
    """The torch module of one plan layer; dense/conv weights are left uninitialised (see weights.py). `native`:
    None (implementation "catalog") or the trainer's `native` method (see native_module)."""
    if native is not None:
        module = native_module(layer, dtype, native)
        if module is not None:
            return module
    if isinstance(layer, P.Dense):  # built on "meta", then given storage: torch's default init never runs
        return nn.Linear(layer.input_shape[-1], layer.units, bias=True, device="meta", dtype=dtype).to_empty(device="cpu")
    if isinstance(layer, P.Conv2D):
        return Conv2D(layer, dtype).to_empty(device="cpu")
    if isinstance(layer, P.Activation):
        return activation_module(layer.activation, layer.input_shape[-1], dtype, generator)
    if isinstance(layer, P.BatchNormalization):
        return BatchNorm(layer, dtype)
    if isinstance(layer, P.MaxPool2D):
        return MaxPool2D(layer)
    if isinstance(layer, P.Dropout):
        return Dropout(layer, generator)
    if isinstance(layer, P.Flatten):
        return nn.Flatten(start_dim=1, end_dim=-1)  # (C, H, W) order; weights.py maps to (H, W, C)
    raise ValueError(f"the torch backend cannot build layer {layer.name} ({type(layer).__name__})")


class PlanModel(nn.Module):
    """The plan's layers in order, one module per plan layer keyed by its name; NCHW (contiguous) input.

    Contiguous NCHW rather than channels_last on purpose: torch's CPU channels-last (and 2-D)
    batch-norm kernels accumulate float32 statistics in float32 (7.6e-4 error on the normalised
    output of a 64x32x28x28 batch here, against 5e-7 for NCHW), although channels_last made a
    seed-cnn step about 25% faster.
    """

    def __init__(self, plan: tuple[P.Layer, ...], dtype: torch.dtype, generator: torch.Generator, native=None):
        super().__init__()
        self.plan = plan
        self.layers = nn.ModuleDict({layer.name: build_module(layer, dtype, generator, native) for layer in plan})

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, classes)
        for module in self.layers.values():
            x = module(x)
        return x
