"""The catalog's activations in JAX, and ActivationLayer, the Flax module PlanModel and ops.activation_vjp run."""

import functools
from typing import Any, Callable

from backends.jax.framework import jax, jnp, nn
from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE


def leaky_relu(x: jax.Array, negative_slope: Any) -> jax.Array:
    """Written here: jax.nn.leaky_relu's derivative at 0 is 1, not the slope. Also prelu and rrelu: negative_slope
    is a Python float or an array in x's dtype (alpha, per-element slopes)."""
    return jnp.where(x > 0, x, jnp.asarray(negative_slope, x.dtype) * x)


def maxout(x: jax.Array, pieces: int) -> jax.Array:
    """argmax + take_along_axis, so the gradient goes to the first maximum; jnp.max splits it among ties."""
    groups = x.reshape(*x.shape[:-1], x.shape[-1] // pieces, pieces)
    first = jnp.argmax(groups, axis=-1, keepdims=True)
    return jnp.take_along_axis(groups, first, axis=-1)[..., 0]


def softplus(x: jax.Array, beta: float) -> jax.Array:
    """Written here: jax.nn.softplus has no beta."""
    return jnp.logaddexp(beta * x, 0.0) / beta


def step(x: jax.Array) -> jax.Array:
    """In x's dtype (jax.nn has no step)."""
    return jnp.where(x > 0, jnp.ones((), x.dtype), jnp.zeros((), x.dtype))


def activation_fn(entry) -> Callable[[jax.Array], jax.Array]:
    """The parameterless, deterministic activation of a catalog entry, every argument explicit.

    jax.nn where its values and derivatives at the kinks are the catalog's (relu, elu, hard_sigmoid via relu6's
    custom JVP, silu, sigmoid); gelu's `approximate` pinned (jax.nn.gelu defaults to the tanh form); selu through
    jax.nn.elu with the catalog's constants.
    """
    name = entry.name
    if name == "relu":
        return jax.nn.relu
    if name == "sigmoid":
        return jax.nn.sigmoid
    if name == "tanh":
        return jnp.tanh
    if name == "leaky_relu":
        return functools.partial(leaky_relu, negative_slope=entry.negative_slope)
    if name == "elu":
        return functools.partial(jax.nn.elu, alpha=entry.alpha)
    if name == "selu":
        return lambda x: SELU_SCALE * jax.nn.elu(x, alpha=SELU_ALPHA)
    if name == "softplus":
        return functools.partial(softplus, beta=entry.beta)
    if name == "maxout":
        return functools.partial(maxout, pieces=entry.pieces)
    if name == "hard_sigmoid":
        return jax.nn.hard_sigmoid
    if name == "silu":
        return jax.nn.silu
    if name == "gelu":
        return functools.partial(jax.nn.gelu, approximate=entry.approximate == "tanh")
    if name == "step":
        return step
    if name == "sign":
        return jnp.sign
    if name == "linear":
        return lambda x: x
    raise ValueError(f"unsupported activation {name!r}")


_NATIVE = {  # entry name -> jax.nn's built-in, called with the entry's stated values in jax.nn's parameterisation
    "relu": lambda entry: jax.nn.relu,
    "sigmoid": lambda entry: jax.nn.sigmoid,
    "tanh": lambda entry: jax.nn.tanh,
    "leaky_relu": lambda entry: functools.partial(jax.nn.leaky_relu, negative_slope=entry.negative_slope),
    "elu": lambda entry: functools.partial(jax.nn.elu, alpha=entry.alpha),
    "selu": lambda entry: jax.nn.selu,
    "softplus": lambda entry: jax.nn.softplus,  # beta 1 only (has_native)
    "silu": lambda entry: jax.nn.silu,
    "gelu": lambda entry: functools.partial(jax.nn.gelu, approximate=entry.approximate == "tanh"),
    "hard_sigmoid": lambda entry: jax.nn.hard_sigmoid,
    "linear": lambda entry: jax.nn.identity,
}


def has_native(entry) -> bool:
    """Whether jax.nn (or Flax, for prelu) has a built-in taking every value the entry states: not for rrelu, maxout,
    step, sign, a softplus with beta != 1 (jax.nn.softplus has no beta), nor a per-channel prelu (nn.PReLU holds one
    scalar)."""
    if entry.name == "softplus":
        return entry.beta == 1.0
    if entry.name == "prelu":
        return not entry.per_channel
    return entry.name in _NATIVE


def _constant(value: float) -> Callable:
    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        return jnp.full(shape, value, dtype)

    return init


class ActivationLayer(nn.Module):
    """One catalog activation as a Flax module (named after the plan layer); every dtype explicit.

    prelu: `alpha` of the entry's shape, initial value and dtype (Flax's nn.PReLU is one float32 scalar starting at
    0.01). rrelu in training: slopes from the "rrelu" rng stream (one key per step, like dropout), or the injected
    `slopes` (x's shape).

    native (implementation "native", has_native(entry)): jax.nn's function, or for prelu nn.PReLU applied with this
    layer's own `alpha` (canonical name and shape (1,); nn.PReLU keeps a () `negative_slope`).
    """

    entry: Any
    dtype: Any
    native: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, slopes: jax.Array | None = None) -> jax.Array:
        entry = self.entry
        if self.native and entry.name == "prelu":
            alpha = self.param("alpha", _constant(entry.initial_value), (1,), self.dtype)
            prelu = nn.PReLU(param_dtype=self.dtype, negative_slope_init=entry.initial_value, parent=None)
            return prelu.apply({"params": {"negative_slope": alpha[0]}}, x)
        if self.native:
            return _NATIVE[entry.name](entry)(x)
        if entry.name == "prelu":
            shape = (x.shape[-1],) if entry.per_channel else (1,)
            return leaky_relu(x, self.param("alpha", _constant(entry.initial_value), shape, self.dtype))
        if entry.name == "rrelu":
            if not train:
                return leaky_relu(x, entry.eval_slope)
            if slopes is None:
                slopes = jax.random.uniform(self.make_rng("rrelu"), x.shape, self.dtype, entry.lower, entry.upper)
            return leaky_relu(x, jnp.asarray(slopes, self.dtype))
        return activation_fn(entry)(x)
