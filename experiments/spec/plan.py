"""Compile a model spec into the primitive layer plan every backend builds, with checked shapes.

Shapes are per sample and channels-last: (H, W, C) for images, (F,) for features.
Canonical parameter names are `<layer name>/<parameter>`, e.g. `conv2d_0/kernel`; canonical
layouts: dense kernel (in, out), conv kernel (kh, kw, in, out), vectors (features,), PReLU
`alpha` (1,) shared or (C,) per channel of the last axis.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from experiments.catalog.base import Entry
from experiments.errors import SpecError
from experiments.spec.model import CNN, MLP, BatchNorm, ConvBlock, DenseBlock, MaxPool

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    """One primitive layer; `where` names the spec field it came from (for error messages)."""

    name: str
    input_shape: Shape
    output_shape: Shape
    where: str = field(compare=False)


@dataclass(frozen=True)
class Dense(Layer):
    units: int = 0
    kernel_init: Entry | None = None
    bias_init: Entry | None = None


@dataclass(frozen=True)
class Conv2D(Layer):
    filters: int = 0
    kernel_size: int = 0
    padding: str = "same"
    kernel_init: Entry | None = None
    bias_init: Entry | None = None


@dataclass(frozen=True)
class Activation(Layer):
    activation: Entry | None = None


@dataclass(frozen=True)
class BatchNormalization(Layer):
    momentum: float = 0.0
    epsilon: float = 0.0


@dataclass(frozen=True)
class MaxPool2D(Layer):
    size: int = 0
    stride: int = 0
    padding: str = "same"


@dataclass(frozen=True)
class Dropout(Layer):
    rate: float = 0.0


@dataclass(frozen=True)
class Flatten(Layer):
    pass


@dataclass(frozen=True)
class ParameterInfo:
    """A canonical parameter: its shape and whether the optimizer trains it."""

    shape: Shape
    trainable: bool


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis for "same" (TensorFlow's rule, which every backend follows):
    out = ceil(size / stride), the odd pixel at the end."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def same_or_valid_size(size: int, window: int, stride: int, padding: str) -> int:
    """Output length of a window op: ceil(n/s) for "same", floor((n-k)/s)+1 for "valid"."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1 if size >= window else 0


class _Builder:
    """Accumulates layers, tracking the running shape and per-type name counters."""

    def __init__(self, input_shape: Shape):
        self.shape = tuple(input_shape)
        self.layers: list[Layer] = []
        self._counts: dict[str, int] = {}

    def _name(self, kind: str) -> str:
        index = self._counts.get(kind, 0)
        self._counts[kind] = index + 1
        return f"{kind}_{index}"

    def add(self, cls: type, kind: str, output_shape: Shape, where: str, **params) -> None:
        self.layers.append(cls(self._name(kind), self.shape, tuple(output_shape), where, **params))
        self.shape = tuple(output_shape)

    def activation(self, activation: Entry | None, where: str) -> None:
        if activation is None or activation.name == "linear":
            return
        features = self.shape[-1]
        if activation.name == "maxout" and features % activation.pieces:
            raise SpecError(
                f"{where}.pieces: {activation.pieces} does not divide the {features} features of its input; "
                f"use a layer width that is a multiple of {activation.pieces}"
            )
        output = (*self.shape[:-1], activation.output_features(features))
        self.add(Activation, "activation", output, where, activation=activation)

    def batch_norm(self, spec: BatchNorm | None, where: str) -> None:
        if spec is not None:
            self.add(BatchNormalization, "batch_norm", self.shape, where, momentum=spec.momentum, epsilon=spec.epsilon)

    def dropout(self, rate: float, where: str) -> None:
        if rate > 0.0:
            self.add(Dropout, "dropout", self.shape, where, rate=rate)


def _add_conv_block(b: _Builder, block: ConvBlock, where: str, kernel_init: Entry, bias_init: Entry) -> None:
    height, width, _ = b.shape
    out_h = same_or_valid_size(height, block.kernel_size, 1, block.padding)
    out_w = same_or_valid_size(width, block.kernel_size, 1, block.padding)
    if out_h < 1 or out_w < 1:
        raise SpecError(
            f"{where}.kernel_size: {block.kernel_size} does not fit the {height}x{width} input of this block "
            f"with padding 'valid'; use padding 'same' or a kernel of at most {min(height, width)}"
        )
    b.add(
        Conv2D, "conv2d", (out_h, out_w, block.filters), where,
        filters=block.filters, kernel_size=block.kernel_size, padding=block.padding,
        kernel_init=block.kernel_init or kernel_init, bias_init=block.bias_init or bias_init,
    )
    b.activation(block.activation, f"{where}.activation")
    b.batch_norm(block.batch_norm, f"{where}.batch_norm")
    b.activation(block.post_activation, f"{where}.post_activation")
    if block.pool is not None:
        _add_pool(b, block.pool, f"{where}.pool")
    b.dropout(block.dropout, f"{where}.dropout")


def _add_pool(b: _Builder, pool: MaxPool, where: str) -> None:
    height, width, channels = b.shape
    out_h = same_or_valid_size(height, pool.size, pool.stride, pool.padding)
    out_w = same_or_valid_size(width, pool.size, pool.stride, pool.padding)
    if out_h < 1 or out_w < 1:
        raise SpecError(
            f"{where}.size: a {pool.size}x{pool.size} 'valid' pool does not fit the {height}x{width} input; "
            f"use padding 'same' or a size of at most {min(height, width)}"
        )
    b.add(MaxPool2D, "max_pool", (out_h, out_w, channels), where, size=pool.size, stride=pool.stride, padding=pool.padding)


def _add_dense_block(b: _Builder, block: DenseBlock, where: str, kernel_init: Entry, bias_init: Entry) -> None:
    b.add(
        Dense, "dense", (block.units,), where, units=block.units,
        kernel_init=block.kernel_init or kernel_init, bias_init=block.bias_init or bias_init,
    )
    b.activation(block.activation, f"{where}.activation")
    b.batch_norm(block.batch_norm, f"{where}.batch_norm")
    b.activation(block.post_activation, f"{where}.post_activation")
    b.dropout(block.dropout, f"{where}.dropout")


def build_plan(model: MLP | CNN, input_shape: Shape, num_classes: int) -> tuple[Layer, ...]:
    """The model's primitive layers, from the (H, W, C) input to the num_classes logits.

    The output activation is not a layer: losses consume logits (see the loss catalog).
    """
    b = _Builder(input_shape)
    if isinstance(model, CNN):
        for index, block in enumerate(model.conv):
            _add_conv_block(b, block, f"model.conv[{index}]", model.kernel_init, model.bias_init)
    b.add(Flatten, "flatten", (math.prod(b.shape),), "model")
    for index, block in enumerate(model.hidden):
        _add_dense_block(b, block, f"model.hidden[{index}]", model.kernel_init, model.bias_init)
    b.layers.append(
        Dense("logits", b.shape, (num_classes,), "model.output_activation", units=num_classes,
              kernel_init=model.kernel_init, bias_init=model.bias_init)
    )
    return tuple(b.layers)


IMAGE_SHAPE = (28, 28, 1)  # (H, W, C) of every dataset the suite reads


def plan_of(spec) -> tuple[Layer, ...]:
    """The plan of an ExperimentSpec: its model on IMAGE_SHAPE inputs with the task's number of outputs."""
    return build_plan(spec.model, IMAGE_SHAPE, spec.data.num_outputs)


def noisy_layers(plan: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """The layers that draw random values in training, in plan order: every Dropout and every rrelu Activation
    (a fresh slope per element and step). Their per-step values are what `noise` injects (experiments.noise)."""
    return tuple(layer for layer in plan if isinstance(layer, Dropout)
                 or (isinstance(layer, Activation) and layer.activation.name == "rrelu"))


def parameter_info(plan: tuple[Layer, ...]) -> dict[str, ParameterInfo]:
    """Canonical name -> shape and trainability for every parameter and buffer of the plan."""
    info: dict[str, ParameterInfo] = {}
    for layer in plan:
        if isinstance(layer, Dense):
            info[f"{layer.name}/kernel"] = ParameterInfo((layer.input_shape[-1], layer.units), True)
            info[f"{layer.name}/bias"] = ParameterInfo((layer.units,), True)
        elif isinstance(layer, Conv2D):
            k = layer.kernel_size
            info[f"{layer.name}/kernel"] = ParameterInfo((k, k, layer.input_shape[-1], layer.filters), True)
            info[f"{layer.name}/bias"] = ParameterInfo((layer.filters,), True)
        elif isinstance(layer, Activation) and layer.activation.has_parameters:  # prelu
            alpha_shape = (layer.input_shape[-1],) if layer.activation.per_channel else (1,)
            info[f"{layer.name}/alpha"] = ParameterInfo(alpha_shape, True)
        elif isinstance(layer, BatchNormalization):
            features = (layer.input_shape[-1],)
            info[f"{layer.name}/scale"] = ParameterInfo(features, True)
            info[f"{layer.name}/offset"] = ParameterInfo(features, True)
            info[f"{layer.name}/mean"] = ParameterInfo(features, False)
            info[f"{layer.name}/variance"] = ParameterInfo(features, False)
    return info


def trainable_parameter_count(plan: tuple[Layer, ...]) -> int:
    """Number of scalars the optimizer updates (batch-norm running statistics excluded)."""
    return sum(math.prod(p.shape) for p in parameter_info(plan).values() if p.trainable)


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a canonical kernel: (in, out) or (kh, kw, in, out)."""
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def check_initial_distributions(plan: tuple[Layer, ...], dtype: str) -> None:
    """Every weight initialiser draws from a distribution the dtype can hold: finite bounds and a
    spread that neither overflows (uniform(-1e308, 1e308)) nor underflows to 0 (a zero stddev)."""
    tiny, largest = float(np.finfo(dtype).tiny), float(np.finfo(dtype).max)
    for layer in plan:
        if not isinstance(layer, (Dense, Conv2D)):
            continue
        kernel = parameter_info((layer,))[f"{layer.name}/kernel"].shape
        for part, entry in (("kernel", layer.kernel_init), ("bias", layer.bias_init)):
            d = entry.distribution(*fans(kernel))
            if d.kind == "constant":
                continue
            spread = d.b - d.a if d.kind == "uniform" else d.b
            bounds = (d.a, d.b) if d.kind == "uniform" else (d.a - 2 * d.b, d.a + 2 * d.b)
            if not (tiny <= spread <= largest and all(abs(bound) <= largest for bound in bounds)):
                raise SpecError(
                    f"{layer.where}: the {part} initialiser {entry.name} gives {d.kind}({d.a:.4g}, {d.b:.4g}) for layer "
                    f"{layer.name}, which dtype {dtype} cannot draw from; keep its spread between {tiny:.4g} and {largest:.4g}"
                )
