"""The torch model built from a layer plan: NCHW modules that realise the suite's layer formulas."""

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE
from experiments.spec import plan as P
from experiments.spec.plan import same_padding


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _selu(x: torch.Tensor) -> torch.Tensor:
    """scale * elu(x, alpha) with the catalog's constants; F.elu's derivative at 0 is alpha (the x <= 0 branch)."""
    return F.elu(x, alpha=SELU_ALPHA, inplace=False) * SELU_SCALE


def _softplus(beta: float):
    """logaddexp(beta x, 0) / beta: F.softplus returns x itself above its threshold (2e-9 off at 20)."""

    def softplus(x: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp(x * beta, x.new_zeros(())) / beta

    return softplus


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """x / 6 + 1/2 on (-3, 3), else 0 or 1: derivative 1/6 inside and 0 at +-3 (the other branch is constant).

    F.hardsigmoid's backward multiplies by the float32 constant 1/6 even in float64 (3e-8 off).
    """
    return torch.where((x > -3.0) & (x < 3.0), x / 6.0 + 0.5, (x >= 3.0).to(x.dtype))


def _step(x: torch.Tensor) -> torch.Tensor:
    """1 where x > 0, else 0 (forward only: no gradient flows through it)."""
    return (x > 0.0).to(x.dtype)


def activation_function(entry):
    """The catalog's stateless elementwise activation as a tensor function, every argument from the entry.

    Derivatives at 0 (checked in the tests): relu 0 and leaky_relu the slope (torch's kernels),
    elu alpha and selu scale * alpha (F.elu takes the x <= 0 branch at 0), hard_sigmoid 0 at +-3.
    Also the output activations (softmax over the class axis, dim 1).
    """
    name = entry.name
    if name == "relu":
        return torch.relu
    if name == "sigmoid":
        return torch.sigmoid
    if name == "tanh":
        return torch.tanh
    if name == "leaky_relu":
        return functools.partial(F.leaky_relu, negative_slope=entry.negative_slope, inplace=False)
    if name == "elu":
        return functools.partial(F.elu, alpha=entry.alpha, inplace=False)
    if name == "selu":
        return _selu
    if name == "softplus":
        return _softplus(entry.beta)
    if name == "hard_sigmoid":
        return _hard_sigmoid
    if name == "silu":
        return functools.partial(F.silu, inplace=False)
    if name == "gelu":
        return functools.partial(F.gelu, approximate=entry.approximate)
    if name == "step":
        return _step
    if name == "sign":
        return torch.sign
    if name == "softmax":
        return functools.partial(F.softmax, dim=1)
    if name == "linear":
        return _identity
    raise ValueError(f"the torch backend has no activation {name!r}")


class Activation(nn.Module):
    """A stateless elementwise catalog activation."""

    def __init__(self, entry):
        super().__init__()
        self.name = entry.name
        self.function = activation_function(entry)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)


class PReLU(nn.Module):
    """x if x > 0 else alpha x with a trainable alpha: shape (1,) shared, or (C,) over the channel dim 1.

    F.prelu's channel axis is dim 1, the canonical last axis in NCHW (and the features of (N, F)).
    Its derivative is alpha at x = 0 (the catalog's) and d/dalpha = x where x <= 0.
    `weight` starts at initial_value (torch's own default is 0.25); canonical `<layer>/alpha`.
    """

    def __init__(self, entry, channels: int, dtype: torch.dtype):
        super().__init__()
        shape = (channels,) if entry.per_channel else (1,)
        self.weight = nn.Parameter(torch.full(shape, entry.initial_value, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.weight)


class RReLU(nn.Module):
    """Randomized leaky relu: slopes a ~ U(lower, upper), one per element and call, in training; (lower + upper) / 2 in eval.

    The slopes come from the trainer's Generator (F.rrelu would draw from torch's global one).
    torch.where(x > 0, x, a x) has derivative a at x = 0; eval is F.leaky_relu with the mean slope.
    `noise`, when the trainer sets it (a tensor shaped like x, torch layout), replaces the draw:
    the generator is then not touched.
    """

    def __init__(self, entry, generator: torch.Generator):
        super().__init__()
        self.lower, self.upper, self.eval_slope = entry.lower, entry.upper, entry.eval_slope
        self.generator = generator
        self.noise: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.leaky_relu(x, negative_slope=self.eval_slope, inplace=False)
        if self.noise is not None:
            slopes = self.noise
        else:
            slopes = torch.empty_like(x).uniform_(self.lower, self.upper, generator=self.generator)
        return torch.where(x > 0.0, x, x * slopes)


class Maxout(nn.Module):
    """Max over groups of `pieces` consecutive features of dim 1 (channels in NCHW = the canonical last axis).

    (N, C, ...) -> (N, C / pieces, pieces, ...) -> max over the pieces. torch.max(dim) returns the
    index of the first maximum and its backward scatters the whole gradient there.
    """

    def __init__(self, entry):
        super().__init__()
        self.pieces = entry.pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (x.shape[1] // self.pieces, self.pieces)).max(dim=2).values


def activation_module(entry, channels: int, dtype: torch.dtype, generator: torch.Generator) -> nn.Module:
    """The module of one catalog activation whose input has `channels` features on dim 1."""
    if entry.name == "prelu":
        return PReLU(entry, channels, dtype)
    if entry.name == "rrelu":
        return RReLU(entry, generator)
    if entry.name == "maxout":
        return Maxout(entry)
    return Activation(entry)


class Conv2D(nn.Conv2d):
    """Stride-1 convolution with TF/Keras padding: "same" pads k - 1 in total, the extra pixel at the end.

    Odd kernels use Conv2d's symmetric padding; even kernels pad (lo, lo + 1) explicitly, which
    is what torch's padding="same" does too (with a warning), and "valid" pads nothing.
    """

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
    """Max pooling with TF padding: "same" pads with -inf, the extra pixel at the end.

    torch's MaxPool2d has no "same"; it pads symmetrically. This module pads explicitly with
    F.pad(-inf) (max ignores it) and pools with padding 0, so any size/stride is exact.
    (MaxPool2d(2, 2, ceil_mode=True) would also be exact for k=2, s=2, but not in general.)
    """

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
    """Batch norm over the channel axis (dim 1) with the suite's formula (experiments.spec.model.BatchNorm).

    torch's BatchNorm uses momentum' = 1 - momentum and updates running_var with the unbiased
    variance var_B * n / (n - 1); here r <- momentum * r + (1 - momentum) * stat with the biased
    var_B, under no_grad. Train mode writes the formula out in two passes (mean, then the mean of
    squared deviations) and lets autograd differentiate it, instead of F.batch_norm's fused CPU
    kernel: over seed-cnn's 50,176 values per channel that kernel's statistics are 2.2e-13 off in
    float64 (two-pass: 3.6e-16), and in float32 its train-mode gradients came out 1-5% away from the
    oracle, Keras and JAX (which agree to 1e-5), while the written-out formula agrees to 1.2e-5.
    Cost: float32 seed-cnn steady throughput 1,346 -> 1,068-1,132 samples/s here (`mnist-parity run
    seed-cnn --backends torch --set training.epochs=2`). Eval mode keeps F.batch_norm.
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
    """Inverted dropout, x * mask / (1 - rate), mask ~ Bernoulli(1 - rate) from the trainer's Generator.

    Same formula as F.dropout, but the masks come from the trainer's own seeded Generator (two
    trainers in one process do not share a stream), drawn as uniform < keep: on the CPU that is
    about 3x faster than torch's bernoulli_, which F.dropout uses. `noise`, when the trainer sets
    it (the multiplier 0 or 1 / (1 - rate), shaped like x, torch layout), replaces the draw: the
    generator is then not touched.
    """

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
        mask = torch.rand(x.shape, generator=self.generator, dtype=x.dtype) < keep  # Bernoulli(keep)
        return x * mask.to(x.dtype).div_(keep)


def build_module(layer: P.Layer, dtype: torch.dtype, generator: torch.Generator) -> nn.Module:
    """The torch module of one plan layer; dense/conv weights are left uninitialised (see weights.py)."""
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

    def __init__(self, plan: tuple[P.Layer, ...], dtype: torch.dtype, generator: torch.Generator):
        super().__init__()
        self.plan = plan
        self.layers = nn.ModuleDict({layer.name: build_module(layer, dtype, generator) for layer in plan})

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, classes)
        for module in self.layers.values():
            x = module(x)
        return x
