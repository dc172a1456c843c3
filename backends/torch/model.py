"""The torch model built from a layer plan: one NCHW module per plan layer, each realising the suite's formula."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from backends.torch.activations import (NATIVE_ACTIVATIONS, Activation, activation_module, in_place_function,
                                        native_activation_module)
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
    """nn.MaxPool2d has no "same" and pads symmetrically. Where "same" pads only at the end (at most the one odd
    pixel, as 2x2 / stride 2 on an odd size) and ceil_mode=True gives the plan's output size, this pools with
    ceil_mode: its last window is clipped to the input, the same maximum (and argmax, hence gradient) as a window
    padded with -inf, without F.pad's copy forward and slice backward. Otherwise it F.pads with -inf (the extra pixel
    at the end) and pools with padding 0, exact for any size and stride."""

    def __init__(self, layer: P.MaxPool2D):
        super().__init__()
        self.size, self.stride = layer.size, layer.stride
        height, width, _ = layer.input_shape
        if layer.padding == "same":
            (top, bottom), (left, right) = same_padding(height, self.size, self.stride), same_padding(width, self.size, self.stride)
        else:
            top = bottom = left = right = 0
        self.pad = (left, right, top, bottom) if any((top, bottom, left, right)) else None
        self.ceil_mode = False
        if self.pad is not None and top == left == 0 and min(height, width) >= self.size and all(
                _ceil_mode_size(n, self.size, self.stride) == out for n, out in zip((height, width), layer.output_shape[:2])):
            self.pad, self.ceil_mode = None, True

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        if self.pad is not None:
            x = F.pad(x, self.pad, mode="constant", value=-math.inf)
        return F.max_pool2d(x, self.size, self.stride, padding=0, dilation=1, ceil_mode=self.ceil_mode, return_indices=False)


def _ceil_mode_size(size: int, window: int, stride: int) -> int:
    """Output length of F.max_pool2d(ceil_mode=True, padding=0): ceil((n - k) / s) + 1, less the last window where
    it would start past the input."""
    out = -(-(size - window) // stride) + 1
    return out - 1 if (out - 1) * stride >= size else out


class _TrainBatchNorm(torch.autograd.Function):
    """Train-mode batch norm over every dim but 1 with a hand-written backward; returns (y, mean, var), the batch
    statistics (biased variance) shaped (C,), not differentiable.

    Forward: the two-pass statistics (mean, then mean squared deviation, torch's cascade-summed reductions), then
    y = offset + (x - mean) * (scale * inv_std) with inv_std = 1 / sqrt(var + eps): the oracle's scale * x_hat +
    offset, x_hat = (x - mean) * inv_std, with one rounding fewer. Backward (N values per channel, dy the incoming
    gradient, x_hat never stored: sum(dy * x_hat) = inv_std * sum(dy * (x - mean))): d offset = sum(dy),
    d scale = sum(dy * x_hat), dx = (scale * inv_std / N) * (N * dy - sum(dy) - x_hat * sum(dy * x_hat)), written
    as dx = dy * k - k * sum(dy) / N - (x - mean) * (k * inv_std * sum(dy * x_hat) / N) with k = scale * inv_std.
    Three elementwise passes and two reductions each way (the autograd two-pass form took about twice as many).
    A channels_last input is reduced in place as the (N*H*W, C) matrix it is in memory (torch's cascade sums down
    the rows); every output keeps the input's memory format.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, epsilon):
        dims, shape = _channel_dims(x), _channel_shape(x)
        mean = x.mean(dim=dims, keepdim=True)
        centred = x - mean
        squares = centred.square()
        var = squares.mean(dim=dims, keepdim=True)
        inv_std = torch.sqrt(var + epsilon).reciprocal_()
        y = torch.addcmul(bias.reshape(shape), centred, weight.reshape(shape) * inv_std, out=squares)
        ctx.save_for_backward(centred, weight, inv_std)
        mean, var = mean.reshape(-1), var.reshape(-1)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, _mean_grad, _var_grad):
        centred, weight, inv_std = ctx.saved_tensors
        dims = _channel_dims(dy)
        count = dy.numel() // dy.shape[1]
        sum_dy = dy.sum(dim=dims, keepdim=True)
        products = dy * centred
        sum_dy_x_hat = products.sum(dim=dims, keepdim=True).mul_(inv_std)
        d_weight = sum_dy_x_hat.reshape(-1) if ctx.needs_input_grad[1] else None
        d_bias = sum_dy.reshape(-1) if ctx.needs_input_grad[2] else None
        dx = None
        if ctx.needs_input_grad[0]:
            k = weight.reshape(inv_std.shape) * inv_std
            dx = torch.addcmul(k * sum_dy / -count, dy, k, out=products)
            dx.addcmul_(centred, k * inv_std * sum_dy_x_hat / -count)
        return dx, d_weight, d_bias, None


def _channel_dims(x: torch.Tensor) -> list[int]:
    return [0, *range(2, x.dim())]


def _channel_shape(x: torch.Tensor) -> tuple[int, ...]:
    return (1, x.shape[1], *([1] * (x.dim() - 2)))


class BatchNorm(nn.Module):
    """The suite's batch norm (experiments.spec.model.BatchNorm) over dim 1.

    Not nn.BatchNorm: its momentum is 1 - the suite's and its running variance unbiased. Train mode is
    _TrainBatchNorm (two-pass statistics, hand-written backward) rather than F.batch_norm's fused CPU kernel: over
    seed-cnn's 50,176 values per channel that kernel's statistics are 2.2e-13 off in float64 (two-pass: 3.6e-16),
    and its channels_last kernel accumulates float32 statistics in float32 (on a (64, 32, 28, 28) float32 layer
    against the float64 oracle: gradients 6e-6 off, _TrainBatchNorm 6e-7 in either memory format; an earlier
    whole-model float32 comparison had the fused kernel's gradients 1-5% away from the oracle, Keras and JAX).
    Measured in float32 seed-cnn steps interleaved with the bench's reference (CPU-time ratios, libgomp's default
    waiting): the autograd two-pass form this
    replaces was 0.66-0.68x the reference's speed, _TrainBatchNorm on NCHW 1.02-1.05x (about 1.5x faster), on
    channels_last 1.18x, no slower there than F.batch_norm's kernel (1.07-1.19x). Eval mode keeps F.batch_norm.
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
        y, mean, var = _TrainBatchNorm.apply(x, self.weight, self.bias, self.epsilon)
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(m).add_((1.0 - m) * mean)
            self.running_var.mul_(m).add_((1.0 - m) * var)
        return y


class Dropout(nn.Module):
    """Not F.dropout, which draws from torch's global generator: masks come from the trainer's Generator, as
    uniform < keep (about 3x faster than F.dropout's bernoulli_ on the CPU; compared and divided by keep in place on
    the NCHW-ordered draw, the same multiplier as before channels_last), or from `noise` when the trainer sets it
    (the multiplier, shaped like x, torch layout), which leaves the generator untouched."""

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
        multiplier = torch.rand(x.shape, generator=self.generator, dtype=x.dtype).lt_(keep).div_(keep)  # in place
        return x * multiplier


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


IN_PLACE_AFTER = (nn.Linear, Conv2D, BatchNorm)
"""Modules whose output their own backward never reads (Linear and Conv2d keep their input and weight, BatchNorm its
centred input): an activation right after one may overwrite that output."""


def _activate_in_place(modules) -> None:
    """Relu and leaky_relu (slope > 0) catalog activations right after an IN_PLACE_AFTER module compute in place."""
    previous = None
    for module in modules:
        if isinstance(module, Activation) and isinstance(previous, IN_PLACE_AFTER):
            module.in_place = in_place_function(module.entry)
        previous = module


class PlanModel(nn.Module):
    """The plan's layers in order, one module per plan layer keyed by its name; every 4-D tensor in NCHW logical
    order (dim 1 the channels), whatever its memory format.

    The catalog model (native None) of a plan with a Conv2D runs channels_last: its conv kernels are converted at
    build, forward converts the input (standard-strided NCHW from the trainer), and every 4-D activation keeps the
    format (mkldnn convolutions, pooling, activations, dropout; _TrainBatchNorm reduces with torch's cascade sums
    on either layout); Flatten copies to (C, H, W) order. It used to stay contiguous NCHW because torch's CPU
    channels-last batch-norm kernel accumulates float32 statistics in float32 (7.6e-4 error on the normalised
    output of a 64x32x28x28 batch measured then, against 5e-7 for NCHW), which _TrainBatchNorm does not use.
    Measured on float32 seed-cnn steps interleaved with the bench's reference (CPU-time ratios, busy 2-core
    machine): channels_last 1.18-1.21x the reference's speed against 1.02-1.05x for NCHW (about 15% faster);
    float64 about 10% faster; in the bench workers' environment (OMP_WAIT_POLICY=PASSIVE) 0.98x -> 1.14x. Relu
    and leaky_relu right after Conv2D, Dense or BatchNorm compute in place (_activate_in_place): about 5% more
    with libgomp's default waiting, 1-2% in the workers' environment. The native model stays NCHW with out-of-place activations: its
    nn.BatchNorm2d would take the channels-last kernel.
    """

    def __init__(self, plan: tuple[P.Layer, ...], dtype: torch.dtype, generator: torch.Generator, native=None):
        super().__init__()
        self.plan = plan
        self.layers = nn.ModuleDict({layer.name: build_module(layer, dtype, generator, native) for layer in plan})
        self.channels_last = native is None and any(isinstance(layer, P.Conv2D) for layer in plan)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)  # the 4-D tensors (conv kernels), in place of their data
        if native is None:
            _activate_in_place(self.layers.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, classes)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        for module in self.layers.values():
            x = module(x)
        return x
