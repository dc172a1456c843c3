"""Activation functions: hidden-layer activations and output activations, with their formulas.

Derivatives at kinks are pinned here (the frameworks do not all agree): relu 0 at x = 0;
leaky_relu, prelu and rrelu the slope at x = 0; elu and selu the x <= 0 branch at x = 0;
hard_sigmoid 0 at x = -3 and x = 3; maxout sends the gradient to the first maximum.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class ActivationEntry(Entry):
    """Base of activation entries: elementwise, no parameters, trainable through, unless stated."""

    forward_only: ClassVar[bool] = False
    has_parameters: ClassVar[bool] = False

    def output_features(self, features: int) -> int:
        """Size of the last axis after the activation (only maxout changes it)."""
        return features


class Relu(ActivationEntry):
    """relu(x) = max(0, x); derivative 0 at x = 0 (torch, TF and jax.nn agree)."""

    name: Literal["relu"]


class Sigmoid(ActivationEntry):
    """sigmoid(x) = 1 / (1 + exp(-x)); derivative sigmoid(x) (1 - sigmoid(x))."""

    name: Literal["sigmoid"]


class Tanh(ActivationEntry):
    """tanh(x); derivative 1 - tanh(x)^2."""

    name: Literal["tanh"]


class LeakyRelu(ActivationEntry):
    """leaky_relu(x) = x if x > 0 else negative_slope * x; the derivative at 0 is negative_slope.

    The slope has no suite default on purpose: torch and Flax default to 0.01, the Keras
    layer to 0.3 and the Keras function to 0.2. The derivative at the
    kink follows torch and TF (`jax.nn.leaky_relu` gives 1 there, so the JAX backend writes the
    function itself). TF's own leaky_relu keeps the slope in float32 even in float64 graphs,
    so the Keras backend writes it too.
    """

    name: Literal["leaky_relu"]
    negative_slope: NonNegative


class Prelu(ActivationEntry):
    """prelu(x) = x if x > 0 else alpha * x, with alpha learned (He et al., 2015).

    alpha starts at initial_value (no suite default: torch 0.25, Keras 0, Flax 0.01) and is one
    scalar (per_channel false, torch's default and Flax's only form) or one value per channel of
    the last axis (per_channel true: torch num_parameters=C, Keras shared_axes over H and W).
    Canonical parameter `<layer>/alpha`, shape (1,) or (C,). d/dalpha = x where x <= 0.

    References: He et al., "Delving Deep into Rectifiers", ICCV 2015.
    """

    name: Literal["prelu"]
    initial_value: FiniteFloat
    per_channel: bool
    has_parameters: ClassVar[bool] = True


class Rrelu(ActivationEntry):
    """Randomized leaky relu (Xu et al., 2015): x if x > 0 else a * x.

    Training: a ~ U(lower, upper) drawn independently for every element and every step.
    Evaluation: a = (lower + upper) / 2. Defaults are torch's (the only framework with it);
    Keras and JAX backends implement it with their own random streams.

    References: Xu et al., "Empirical Evaluation of Rectified Activations", 2015.
    """

    name: Literal["rrelu"]
    lower: NonNegative = 1.0 / 8.0
    upper: NonNegative = 1.0 / 3.0

    @model_validator(mode="after")
    def _ordered(self) -> "Rrelu":
        if not self.lower <= self.upper:
            raise ValueError(f"lower ({self.lower}) must not exceed upper ({self.upper})")
        return self

    @property
    def eval_slope(self) -> float:
        return (self.lower + self.upper) / 2.0


class Elu(ActivationEntry):
    """elu(x) = x if x > 0 else alpha (exp(x) - 1); derivative alpha exp(x) for x <= 0.

    TF's gradient takes the x > 0 branch at exactly 0 (1 instead of alpha); the suite takes alpha.
    """

    name: Literal["elu"]
    alpha: Positive


class Selu(ActivationEntry):
    """selu(x) = scale * elu(x, alpha), alpha = 1.6732632423543772848, scale = 1.0507009873554804934.

    References: Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017.
    """

    name: Literal["selu"]


class Softplus(ActivationEntry):
    """softplus(x) = (1 / beta) log(1 + exp(beta x)), computed as logaddexp(beta x, 0) / beta.

    torch's Softplus returns x itself when beta x > threshold (20 by default), an error of
    about 2e-9 that the torch backend avoids by writing the formula; its derivative is
    sigmoid(beta x).
    """

    name: Literal["softplus"]
    beta: Positive = 1.0


class Linear(ActivationEntry):
    """linear(x) = x (identity)."""

    name: Literal["linear"]


class Maxout(ActivationEntry):
    """maxout(x)_j = max_i x[..., j * pieces + i]: groups of `pieces` consecutive features, one max each.

    A Dense(pieces * units) followed by maxout(pieces) is Goodfellow et al.'s maxout unit.
    The last axis shrinks from F to F / pieces (F must be divisible); in a CNN the groups are
    consecutive channels. The gradient goes to the first maximum of each group.

    References: Goodfellow et al., "Maxout Networks", ICML 2013.
    """

    name: Literal["maxout"]
    pieces: Annotated[int, Field(ge=2)]

    def output_features(self, features: int) -> int:
        return features // self.pieces


class HardSigmoid(ActivationEntry):
    """hard_sigmoid(x) = relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1); derivative 1/6 on (-3, 3), else 0.

    This is Keras 3's, torch's and JAX's; Keras 2 used clip(0.2 x + 0.5, 0, 1).
    """

    name: Literal["hard_sigmoid"]


class Silu(ActivationEntry):
    """silu(x) = swish(x) = x sigmoid(x)."""

    name: Literal["silu"]


class Gelu(ActivationEntry):
    """gelu(x) = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (approximate "none"), or
    x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2 (approximate "tanh").

    No suite default: torch and Keras' `gelu` activation are exact, `jax.nn.gelu` and
    `keras.ops.gelu` default to tanh.

    References: Hendrycks and Gimpel, "Gaussian Error Linear Units", 2016.
    """

    name: Literal["gelu"]
    approximate: Literal["none", "tanh"]


class Step(ActivationEntry):
    """step(x) = 1 if x > 0 else 0 (the perceptron's Heaviside step). Forward only: its derivative is 0
    almost everywhere, so no weight below it could ever learn."""

    name: Literal["step"]
    forward_only: ClassVar[bool] = True


class Sign(ActivationEntry):
    """sign(x) = -1, 0 or 1. Forward only, for the same reason as step."""

    name: Literal["sign"]
    forward_only: ClassVar[bool] = True


class Softmax(ActivationEntry):
    """softmax(z)_i = exp(z_i) / sum_j exp(z_j) over the class axis (output layer only)."""

    name: Literal["softmax"]


HIDDEN_ACTIVATIONS = (
    Sigmoid, Tanh, Relu, LeakyRelu, Prelu, Rrelu, Elu, Selu, Softplus, Linear, Maxout, HardSigmoid, Silu, Gelu,
    Step, Sign,
)
OUTPUT_ACTIVATION_ENTRIES = (Softmax, Sigmoid, Linear, Step, Sign)

ACTIVATIONS = registry(*HIDDEN_ACTIVATIONS)
OUTPUT_ACTIVATIONS = registry(*OUTPUT_ACTIVATION_ENTRIES)

Activation = tagged_union(*HIDDEN_ACTIVATIONS, aliases={"swish": "silu"})
OutputActivation = tagged_union(*OUTPUT_ACTIVATION_ENTRIES)

