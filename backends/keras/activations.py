"""The catalog's hidden and output activations in TF ops, with the catalog's derivatives at the kinks.

Constants enter as Python floats, which TF converts to x's dtype (a float64 graph gets the full
double), never through an op attribute: `tf.nn.leaky_relu(alpha=...)` and other attribute
constants are float32 even in float64 graphs. Where TF's own gradient differs from the catalog
(elu/selu take the x > 0 branch at 0, softplus through logaddexp, reduce_max ties), the
function is written so that TF's autodiff gives the catalog's derivative; each says how.
"""

import math
from typing import Callable

from backends.keras.framework import exact, keras, tf
from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE
from experiments.catalog.base import Entry

Function = Callable[[tf.Tensor], tf.Tensor]

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_TANH_CUBIC = 0.044715


def leaky(x: tf.Tensor, slope) -> tf.Tensor:
    """Leaky relu with this slope (prelu and rrelu use it too); at 0 the negative branch's derivative."""
    return tf.where(x > 0, x, slope * x)


def leaky_relu(negative_slope: float) -> Function:
    """Not keras.layers.LeakyReLU: on TF it runs tf.nn.leaky_relu, whose `alpha` is a float32 op
    attribute, so a float64 model gets float32(0.1) = 0.10000000149 as its slope."""
    return lambda x: leaky(x, negative_slope)


def elu(alpha: float, scale: float = 1.0) -> Function:
    """elu, and selu with scale. tf.nn.elu's gradient takes the x > 0 branch at exactly 0 (1 instead of alpha).
    Here the select sends x = 0 to the alpha branch; expm1 sees min(x, 0), so the unselected branch cannot overflow
    to inf (whose 0 * inf cotangent would be NaN), and tf.minimum passes the gradient to x at the tie x = 0 (TF's
    Minimum gradient selects x where x <= y)."""

    def function(x: tf.Tensor) -> tf.Tensor:
        y = tf.where(x > 0, x, alpha * tf.math.expm1(tf.minimum(x, tf.zeros_like(x))))
        return scale * y if scale != 1.0 else y

    return function


def softplus(beta: float) -> Function:
    """Computed as NumPy's logaddexp(beta x, 0) / beta, with the catalog's gradient written out: autodiff through
    it would give 1 instead of 1/2 at x = 0 (TF's Maximum sends the whole gradient to a at the tie and |a| has
    derivative sign(0) = 0)."""

    @tf.custom_gradient
    def function(x: tf.Tensor):
        a = beta * x if beta != 1.0 else x
        y = tf.maximum(a, tf.zeros_like(a)) + tf.math.log1p(tf.exp(-tf.abs(a)))
        if beta != 1.0:
            y = y / beta

        def gradient(cotangent):
            return cotangent * tf.math.sigmoid(a)

        return y, gradient

    return function


def hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
    """Through relu6, whose gradient is 0 at both kinks, the catalog's pin."""
    return tf.nn.relu6(x + 3.0) / 6.0


def silu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.math.sigmoid(x)


def gelu(approximate: str) -> Function:
    """Written as the catalog writes it: not tf.nn.gelu (which computes the exact form through erfc) nor
    keras.ops.gelu (whose `approximate` defaults to True, tanh)."""
    if approximate == "none":
        return lambda x: 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))
    if approximate == "tanh":
        return lambda x: 0.5 * x * (1.0 + tf.math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x)))
    raise KeyError(f"the Keras backend has no gelu approximation {approximate!r}")


def step(x: tf.Tensor) -> tf.Tensor:
    """Forward only: no gradient flows through the comparison."""
    return tf.cast(x > 0, x.dtype)


def sign(x: tf.Tensor) -> tf.Tensor:
    """Forward only: TF's Sign gradient is 0."""
    return tf.math.sign(x)


def elementwise(entry: Entry) -> Function:
    """The function of a parameterless, deterministic catalog activation (hidden or output)."""
    name = entry.name
    if name == "leaky_relu":
        return leaky_relu(entry.negative_slope)
    if name == "elu":
        return elu(entry.alpha)
    if name == "selu":
        return elu(SELU_ALPHA, SELU_SCALE)
    if name == "softplus":
        return softplus(entry.beta)
    if name == "gelu":
        return gelu(entry.approximate)
    functions = {
        "relu": tf.nn.relu,  # derivative 0 at 0
        "sigmoid": tf.math.sigmoid,
        "tanh": tf.math.tanh,
        "linear": tf.identity,
        "hard_sigmoid": hard_sigmoid,
        "silu": silu,
        "step": step,
        "sign": sign,
        "softmax": lambda z: tf.nn.softmax(z, axis=-1),
    }
    if name not in functions:
        raise KeyError(f"the Keras backend has no elementwise activation {name!r}")
    return functions[name]


class PReLU(keras.layers.Layer):
    """prelu with the canonical `<layer>/alpha`. Not keras.layers.PReLU: its alpha has shape input_shape[1:]
    (one per element, per H, W and C in a CNN) unless shared_axes is given, and starts at zero by default."""

    def __init__(self, initial_value: float, per_channel: bool, **kwargs):
        super().__init__(**kwargs)
        self.initial_value = float(initial_value)
        self.per_channel = bool(per_channel)

    def build(self, input_shape):
        shape = (input_shape[-1],) if self.per_channel else (1,)
        self.alpha = self.add_weight(
            shape=shape, initializer=keras.initializers.Constant(exact(self.initial_value)), trainable=True, name="alpha"
        )

    def call(self, x):
        return leaky(x, tf.convert_to_tensor(self.alpha))  # alpha broadcasts over the last axis

    def compute_output_shape(self, input_shape):
        return input_shape


class RReLU(keras.layers.Layer):
    """rrelu. Training draws the slopes with keras.random.uniform (TF stateless_uniform) from this layer's
    SeedGenerator, whose state advances at every call, so every step draws afresh; the bounds go in as float64
    scalars (framework.exact), else a float64 draw would use float32(1/3) as its upper bound."""

    def __init__(self, lower: float, upper: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.lower, self.upper = float(lower), float(upper)
        self.eval_slope = (self.lower + self.upper) / 2.0
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if training:
            slope = keras.random.uniform(
                tf.shape(x), minval=exact(self.lower), maxval=exact(self.upper), dtype=x.dtype, seed=self.seed_generator
            )
        else:
            slope = self.eval_slope
        return leaky(x, slope)

    def compute_output_shape(self, input_shape):
        return input_shape


def maxout(pieces: int) -> Function:
    """(..., F) -> (..., F / pieces), gathered at each group's first maximum (found explicitly: tf.argmax's tie
    order is not guaranteed), so autodiff sends the gradient there alone; tf.reduce_max would split a tie's."""

    def function(x: tf.Tensor) -> tf.Tensor:
        features = x.shape[-1]
        groups = tf.reshape(x, tf.concat([tf.shape(x)[:-1], [features // pieces, pieces]], axis=0))  # (..., G, P)
        largest = tf.reduce_max(groups, axis=-1, keepdims=True)
        positions = tf.range(pieces, dtype=tf.int32)
        first = tf.reduce_min(tf.where(groups == largest, positions, pieces), axis=-1)  # (..., G)
        return tf.gather(groups, first, axis=-1, batch_dims=len(x.shape))

    return function


class Maxout(keras.layers.Layer):
    """The layer of `maxout`."""

    def __init__(self, pieces: int, **kwargs):
        super().__init__(**kwargs)
        self.pieces = int(pieces)
        self.function = maxout(self.pieces)

    def call(self, x):
        return self.function(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.pieces)


def activation_layer(entry: Entry, name: str, dtype: str, seed: int) -> keras.layers.Layer:
    """The Keras layer of a hidden activation: prelu, rrelu and maxout layers, else keras.layers.Activation.

    Plain TF ops: the backend is TF only, and Keras' TF sigmoid also attaches cached logits to
    its output (harmless here: the losses take logits, never probabilities). `seed` seeds
    rrelu's slopes.
    """
    if entry.name == "prelu":
        return PReLU(entry.initial_value, entry.per_channel, name=name, dtype=dtype)
    if entry.name == "rrelu":
        return RReLU(entry.lower, entry.upper, seed, name=name, dtype=dtype)
    if entry.name == "maxout":
        return Maxout(entry.pieces, name=name, dtype=dtype)
    return keras.layers.Activation(elementwise(entry), name=name, dtype=dtype)


# Native mode: Keras' own activations ----------------------------------------------------------------------------

NATIVE_FUNCTIONS = ("relu", "sigmoid", "tanh", "selu", "silu", "hard_sigmoid", "linear")  # keras.activations by name


def has_native(entry: Entry) -> bool:
    """Whether Keras has a built-in for the hidden activation entry (softplus only with beta 1: Keras' has none)."""
    if entry.name == "softplus":
        return entry.beta == 1.0
    return entry.name in (*NATIVE_FUNCTIONS, "elu", "gelu", "leaky_relu", "prelu")


def native_activation_layer(entry: Entry, name: str, dtype: str, input_rank: int) -> keras.layers.Layer:
    """Keras' own layer for a hidden activation Keras has (has_native), with the entry's values as Keras takes them:
    keras.layers.Activation of keras.activations (elu alpha, gelu approximate: "tanh" -> True), LeakyReLU
    (negative_slope), PReLU (alpha_initializer Constant(initial_value); per channel: shared_axes every axis but the
    channels, else every axis, so alpha is (C,) in an MLP and (1, 1, C) in a CNN; backends.keras.weights keeps the
    canonical (C,) / (1,) name). input_rank: the rank of the layer's input, batch axis included."""
    kind = entry.name
    if kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=entry.negative_slope, name=name, dtype=dtype)
    if kind == "prelu":
        channels = list(range(1, input_rank - 1))  # the spatial axes of an image (none in an MLP)
        shared = channels if entry.per_channel else list(range(1, input_rank))
        return keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(entry.initial_value),
                                  shared_axes=shared or None, name=name, dtype=dtype)
    if kind == "elu":
        alpha = entry.alpha
        return keras.layers.Activation(lambda x: keras.activations.elu(x, alpha=alpha), name=name, dtype=dtype)
    if kind == "gelu":
        approximate = entry.approximate == "tanh"
        return keras.layers.Activation(lambda x: keras.activations.gelu(x, approximate=approximate), name=name, dtype=dtype)
    if kind == "softplus" and entry.beta == 1.0:
        return keras.layers.Activation(keras.activations.softplus, name=name, dtype=dtype)
    if kind in NATIVE_FUNCTIONS:
        return keras.layers.Activation(keras.activations.get(kind), name=name, dtype=dtype)
    raise KeyError(f"Keras has no built-in activation {kind!r}")
