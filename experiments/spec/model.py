"""Model specs: an MLP (dense blocks) or a CNN (conv blocks, then dense blocks), channels-last."""

from typing import Annotated, Literal, Union

from pydantic import Field

from experiments.catalog import Activation, Initializer, OutputActivation
from experiments.catalog.base import Entry

Rate = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
MAX_WIDTH = 65536  # units or filters of one layer; far beyond any MNIST model, still allocatable
MAX_WINDOW = 28  # kernel, pool and stride sizes: the MNIST image side
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Window = Annotated[int, Field(ge=1, le=MAX_WINDOW)]


class BatchNorm(Entry):
    """Batch normalisation over the channel (last) axis, Keras/Flax momentum convention.

    Train: y = scale * (x - mean_B) / sqrt(var_B + epsilon) + offset, var_B biased.
    Running statistics: r <- momentum * r + (1 - momentum) * batch_statistic, with the
    biased batch variance. torch's BatchNorm uses momentum' = 1 - momentum and updates
    running_var with the unbiased variance, so the torch backend corrects that. Defaults
    differ (eps: torch 1e-5, Keras 1e-3, Flax 1e-5), hence no suite default for either field.
    """

    momentum: Rate
    epsilon: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class MaxPool(Entry):
    """Max pooling over size x size windows with the given stride.

    padding "same": out = ceil(n / stride), extra padding at the end (TF/Keras/lax);
    "valid": out = floor((n - size) / stride) + 1.
    """

    size: Window
    stride: Window
    padding: Literal["same", "valid"]


class DenseBlock(Entry):
    """Dense(units) -> activation -> [batch norm] -> [post_activation] -> [dropout]."""

    units: Width
    activation: Activation
    batch_norm: BatchNorm | None = None
    post_activation: Activation | None = None
    dropout: Rate = 0.0
    kernel_init: Initializer | None = None
    bias_init: Initializer | None = None


class ConvBlock(Entry):
    """Conv2D(filters, kernel_size, stride 1, padding) -> activation -> [batch norm]
    -> [post_activation] -> [max pool] -> [dropout]."""

    filters: Width
    kernel_size: Window
    padding: Literal["same", "valid"]
    activation: Activation
    batch_norm: BatchNorm | None = None
    post_activation: Activation | None = None
    pool: MaxPool | None = None
    dropout: Rate = 0.0
    kernel_init: Initializer | None = None
    bias_init: Initializer | None = None


class MLP(Entry):
    """Flatten -> dense blocks -> Dense(num_classes) -> output activation."""

    kind: Literal["mlp"]
    hidden: Annotated[tuple[DenseBlock, ...], Field(strict=False)]
    output_activation: OutputActivation
    kernel_init: Initializer
    bias_init: Initializer


class CNN(Entry):
    """Conv blocks -> flatten (H, W, C order) -> dense blocks -> Dense(num_classes) -> output activation."""

    kind: Literal["cnn"]
    conv: Annotated[tuple[ConvBlock, ...], Field(min_length=1, strict=False)]
    hidden: Annotated[tuple[DenseBlock, ...], Field(strict=False)] = ()
    output_activation: OutputActivation
    kernel_init: Initializer
    bias_init: Initializer


Model = Annotated[Union[MLP, CNN], Field(discriminator="kind")]
