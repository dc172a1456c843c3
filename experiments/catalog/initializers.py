"""Weight initialisers, each reduced to one of four sampling distributions every backend can draw.

Fans: a dense kernel (in, out) has fan_in = in, fan_out = out; a conv kernel
(kh, kw, in, out) has fan_in = kh*kw*in, fan_out = kh*kw*out. Each backend draws from the
distribution with its own random stream (so seeds do not give identical weights across
frameworks; `--same-init` copies one NumPy draw instead).
"""

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from experiments.catalog.base import Entry
from experiments.catalog.tables import registry, tagged_union

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]

# Standard deviation of a unit normal truncated to [-2, 2]; variance-scaling truncated
# normals divide by it so the truncated draw keeps the intended variance (Keras, JAX).
TRUNCATED_NORMAL_STDDEV = 0.87962566103423978


@dataclass(frozen=True)
class Distribution:
    """A sampling distribution: constant(a), uniform[a, b), normal(a, b) or truncated_normal(a, b).

    For normal kinds a is the mean and b the standard deviation; truncated_normal is cut at
    a +- 2b and not rescaled after cutting.
    """

    kind: Literal["constant", "uniform", "normal", "truncated_normal"]
    a: float
    b: float = 0.0


class Zeros(Entry):
    """w = 0."""

    name: Literal["zeros"]

    def distribution(self, fan_in: int, fan_out: int) -> Distribution:
        return Distribution("constant", 0.0)


class Constant(Entry):
    """w = value."""

    name: Literal["constant"]
    value: FiniteFloat

    def distribution(self, fan_in: int, fan_out: int) -> Distribution:
        return Distribution("constant", self.value)


class Normal(Entry):
    """w ~ N(mean, stddev^2). Keras' "normal" kernel initialiser is N(0, 0.05^2)."""

    name: Literal["normal"]
    mean: FiniteFloat = 0.0
    stddev: PositiveFloat

    def distribution(self, fan_in: int, fan_out: int) -> Distribution:
        return Distribution("normal", self.mean, self.stddev)


class TruncatedNormal(Entry):
    """w ~ N(mean, stddev^2) cut to [mean - 2 stddev, mean + 2 stddev]."""

    name: Literal["truncated_normal"]
    mean: FiniteFloat = 0.0
    stddev: PositiveFloat

    def distribution(self, fan_in: int, fan_out: int) -> Distribution:
        return Distribution("truncated_normal", self.mean, self.stddev)


class Uniform(Entry):
    """w ~ U[minval, maxval)."""

    name: Literal["uniform"]
    minval: FiniteFloat
    maxval: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        if not self.minval < self.maxval:
            raise ValueError(f"minval ({self.minval}) must be below maxval ({self.maxval})")
        return self

    def distribution(self, fan_in: int, fan_out: int) -> Distribution:
        return Distribution("uniform", self.minval, self.maxval)


class VarianceScaling(Entry):
    """Var(w) = scale / n, n = fan_in, fan_out or their mean (mode).

    uniform: U[-sqrt(3 scale / n), +sqrt(3 scale / n)); normal: N(0, scale / n);
    truncated_normal: stddev sqrt(scale / n) / 0.8796..., cut at 2 stddev.
    Named special cases: glorot = (1, fan_avg), he = (2, fan_in), lecun = (1, fan_in),
    torch's Linear/Conv default = (1/3, fan_in, uniform), i.e. U(+-1/sqrt(fan_in)).
    """

    name: Literal["variance_scaling"]
    scale: PositiveFloat
    mode: Literal["fan_in", "fan_out", "fan_avg"]
    distribution_kind: Literal["uniform", "normal", "truncated_normal"]

    def distribution(self, fan_in: int, fan_out: int) -> Distribution:
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution_kind == "uniform":
            limit = math.sqrt(3.0 * variance)
            return Distribution("uniform", -limit, limit)
        if self.distribution_kind == "normal":
            return Distribution("normal", 0.0, math.sqrt(variance))
        return Distribution("truncated_normal", 0.0, math.sqrt(variance) / TRUNCATED_NORMAL_STDDEV)


def _named_scaling(name: str, scale: float, mode: str, kind: str, doc: str) -> type:
    """A parameterless entry that is a fixed variance-scaling initialiser."""

    def distribution(self, fan_in: int, fan_out: int) -> Distribution:
        return VarianceScaling(name="variance_scaling", scale=scale, mode=mode, distribution_kind=kind).distribution(
            fan_in, fan_out
        )

    return type(
        "".join(part.title() for part in name.split("_")),
        (Entry,),
        {"__doc__": doc, "__annotations__": {"name": Literal[name]}, "distribution": distribution},
    )


GlorotUniform = _named_scaling("glorot_uniform", 1.0, "fan_avg", "uniform", "U(+-sqrt(6 / (fan_in + fan_out))): Keras' default kernel initialiser.")
GlorotNormal = _named_scaling("glorot_normal", 1.0, "fan_avg", "truncated_normal", "Truncated normal, Var = 2 / (fan_in + fan_out) (Keras GlorotNormal).")
HeUniform = _named_scaling("he_uniform", 2.0, "fan_in", "uniform", "U(+-sqrt(6 / fan_in)).")
HeNormal = _named_scaling("he_normal", 2.0, "fan_in", "truncated_normal", "Truncated normal, Var = 2 / fan_in (Keras HeNormal).")
LecunUniform = _named_scaling("lecun_uniform", 1.0, "fan_in", "uniform", "U(+-sqrt(3 / fan_in)).")
LecunNormal = _named_scaling("lecun_normal", 1.0, "fan_in", "truncated_normal", "Truncated normal, Var = 1 / fan_in: Flax's default kernel initialiser.")
TorchDefault = _named_scaling(
    "torch_default", 1.0 / 3.0, "fan_in", "uniform",
    "U(+-1/sqrt(fan_in)): torch Linear/Conv default for kernel and bias (kaiming_uniform a=sqrt(5)).",
)

INITIALIZER_ENTRIES = (
    Zeros, Constant, Normal, TruncatedNormal, Uniform, VarianceScaling,
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, TorchDefault,
)
INITIALIZERS = registry(*INITIALIZER_ENTRIES)
Initializer = tagged_union(*INITIALIZER_ENTRIES)
