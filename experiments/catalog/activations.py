"""Activation functions: hidden-layer activations and the output activation, with their formulas."""

from typing import Annotated, Literal

from pydantic import Field

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Relu(Entry):
    """relu(x) = max(0, x); the derivative at 0 is taken as 0 (torch, TF and jax.nn agree)."""

    name: Literal["relu"]


class Sigmoid(Entry):
    """sigmoid(x) = 1 / (1 + exp(-x))."""

    name: Literal["sigmoid"]


class Tanh(Entry):
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x)."""

    name: Literal["tanh"]


class LeakyRelu(Entry):
    """leaky_relu(x) = x if x > 0 else negative_slope * x; the derivative at 0 is negative_slope.

    The derivative at the kink follows torch and TF (`jax.nn.leaky_relu` gives 1 there, so the
    JAX backend writes the function itself).

    The slope has no suite default on purpose: torch and Flax default to 0.01, the Keras
    layer to 0.3 and the Keras function to 0.2 (PARITY_CANON section 1). Every backend
    passes this value explicitly.
    """

    name: Literal["leaky_relu"]
    negative_slope: Annotated[FiniteFloat, Field(ge=0.0)]


class Linear(Entry):
    """linear(x) = x (identity)."""

    name: Literal["linear"]


class Softmax(Entry):
    """softmax(z)_i = exp(z_i) / sum_j exp(z_j) over the class axis (output layer only)."""

    name: Literal["softmax"]


HIDDEN_ACTIVATIONS = (Relu, Sigmoid, Tanh, LeakyRelu, Linear)
OUTPUT_ACTIVATION_ENTRIES = (Softmax, Sigmoid, Linear)

ACTIVATIONS = registry(*HIDDEN_ACTIVATIONS)
OUTPUT_ACTIVATIONS = registry(*OUTPUT_ACTIVATION_ENTRIES)

Activation = tagged_union(*HIDDEN_ACTIVATIONS)
OutputActivation = tagged_union(*OUTPUT_ACTIVATION_ENTRIES)
