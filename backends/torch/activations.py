"""The catalog's activations as torch functions and modules, the features on dim 1 (NCHW channels, the canonical
last axis). Where a torch built-in differs from the catalog, the function says how and what replaces it."""

import functools

import torch
import torch.nn.functional as F
from torch import nn

from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _selu(x: torch.Tensor) -> torch.Tensor:
    """F.elu at the catalog's constants, times the scale (F.elu takes the catalog's branch at 0)."""
    return F.elu(x, alpha=SELU_ALPHA, inplace=False) * SELU_SCALE


def _softplus(beta: float):
    """Not F.softplus: it returns x itself where beta x > threshold (2e-9 off at 20); logaddexp has no threshold."""

    def softplus(x: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp(x * beta, x.new_zeros(())) / beta

    return softplus


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Not F.hardsigmoid: its backward multiplies by a float32 1/6 even in float64 (3e-8 off). The constant
    branches of this where give the catalog's derivative 0 at +-3."""
    return torch.where((x > -3.0) & (x < 3.0), x / 6.0 + 0.5, (x >= 3.0).to(x.dtype))


def _step(x: torch.Tensor) -> torch.Tensor:
    return (x > 0.0).to(x.dtype)  # forward only: no gradient flows through the comparison


def activation_function(entry):
    """The catalog's parameterless elementwise activation, or output activation (softmax over dim 1), as a tensor
    function with every argument from the entry. torch's relu, leaky_relu and elu kernels already give the
    catalog's derivatives at the kinks (checked in the tests)."""
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
        self.name, self.entry = entry.name, entry
        self.function = activation_function(entry)
        self.in_place = None  # in_place_function(entry), set by the model where it may overwrite its input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x) if self.in_place is None else self.in_place(x)


def in_place_function(entry):
    """The activation computed in place (torch.relu_, F.leaky_relu(inplace=True) for a slope > 0), or None. Same
    values and gradients as activation_function's (both backwards read the sign off the output, which is the
    input's for these), one tensor fewer. Only for an input nothing else reads afterwards: backends.torch.model
    decides where."""
    if entry.name == "relu":
        return torch.relu_
    if entry.name == "leaky_relu" and entry.negative_slope > 0.0:
        return functools.partial(F.leaky_relu, negative_slope=entry.negative_slope, inplace=True)
    return None


class PReLU(nn.Module):
    """F.prelu, whose channel axis is dim 1. Not nn.PReLU, which starts alpha at 0.25 unless given `init`: `weight`
    (canonical `<layer>/alpha`, (1,) or (C,)) starts at the entry's initial_value."""

    def __init__(self, entry, channels: int, dtype: torch.dtype):
        super().__init__()
        shape = (channels,) if entry.per_channel else (1,)
        self.weight = nn.Parameter(torch.full(shape, entry.initial_value, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.weight)


class RReLU(nn.Module):
    """Not F.rrelu, which draws its training slopes from torch's global generator: here they come from the trainer's
    Generator, or from `noise` when the trainer sets it (a tensor shaped like x, torch layout), which leaves the
    generator untouched. Eval mode is F.leaky_relu at the entry's eval_slope."""

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
    """Groups on dim 1; torch.max(dim) picks the first maximum and its backward sends the gradient there (the
    catalog's tie rule)."""

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


class NativeRReLU(nn.RReLU):
    """implementation = "native": nn.RReLU (training slopes from torch's global generator, eval (lower + upper) / 2),
    except that slopes given as `noise` (the trainer's injected noise, torch layout) are used as they are."""

    def __init__(self, entry):
        super().__init__(lower=entry.lower, upper=entry.upper)
        self.noise: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise is not None:
            return torch.where(x > 0.0, x, x * self.noise)
        return super().forward(x)


NATIVE_ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "elu", "selu", "softplus", "silu", "gelu",
                      "hard_sigmoid", "prelu", "rrelu")
"""Catalog activations torch.nn has a module for; maxout, step, sign and linear have none (the catalog's is used)."""


def native_activation_module(entry, channels: int, dtype: torch.dtype) -> nn.Module:
    """implementation = "native": torch.nn's module for the entry (NATIVE_ACTIVATIONS), given what the entry states
    (Softplus keeps its default threshold 20, PReLU gets num_parameters and init)."""
    name = entry.name
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=entry.negative_slope)
    if name == "elu":
        return nn.ELU(alpha=entry.alpha)
    if name == "softplus":
        return nn.Softplus(beta=entry.beta)
    if name == "gelu":
        return nn.GELU(approximate=entry.approximate)
    if name == "prelu":
        return nn.PReLU(num_parameters=channels if entry.per_channel else 1, init=entry.initial_value, dtype=dtype)
    if name == "rrelu":
        return NativeRReLU(entry)
    simple = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "selu": nn.SELU, "silu": nn.SiLU,
              "hard_sigmoid": nn.Hardsigmoid}
    if name in simple:
        return simple[name]()
    raise ValueError(f"torch.nn has no module for activation {name!r}")
