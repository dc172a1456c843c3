"""The catalog's optimizers (formulas in experiments.catalog.optimizers) as Keras optimizers written by hand.

Keras' built-ins are not the catalog's formulas, and no argument makes them so: SGD and RMSprop fold the learning
rate into their momentum buffers, Adam and AdamW use "epsilon hat", RMSprop and Adagrad put epsilon inside the root,
Adamax adds epsilon to u, Nadam hard-codes psi = 1; each class below names its built-in's difference. Scalar
coefficients (bias corrections, momentum schedules, lr products) are computed in float64, as torch does in Python,
then cast to the parameter's dtype.

In native mode (implementation "native") `make_optimizer` returns Keras' built-in itself instead (native_optimizer);
set_learning_rate, apply_gradients and optimizer_slots serve both kinds.
"""

import numpy as np

from backends.keras.framework import exact, keras, tf
from experiments.catalog.base import Entry
from experiments.catalog.optimizers import state_slots as catalog_state_slots


class CatalogOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer whose learning rate is a float64 variable the trainer sets before every step.

    Keras' own float learning rate is a variable of keras.config.floatx() (float32 unless set process-wide), which
    would round a float64 run's rates; here the rate stays float64 and every base-class extra (weight decay,
    clipping, EMA, loss scaling, accumulation) is off. Clipping is the catalog's (`clip`), applied in `apply`.
    The state slots are the ones experiments.catalog.optimizers.state_slots names for the entry, one optimizer
    variable per trainable variable each.
    """

    def __init__(self, entry: Entry, native_clipping: bool = False):
        rate = keras.Variable(0.0, dtype="float64", trainable=False, name="learning_rate")
        c = None if entry.clip_global_norm is None else float(entry.clip_global_norm)
        super().__init__(  # native clipping (native mode): Keras' own global_clipnorm instead of `clip`
            learning_rate=lambda: rate, weight_decay=None, clipnorm=None, clipvalue=None,
            global_clipnorm=c if native_clipping else None,
            use_ema=False, loss_scale_factor=None, gradient_accumulation_steps=None, name=entry.name,
        )
        self.rate = rate
        self.clip_global_norm = None if native_clipping else c
        self.slot_names = catalog_state_slots(entry)

    def slot_initializer(self, name: str):
        return "zeros"

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.slot_variables = {
            name: self.add_optimizer_variables(variables, name, initializer=self.slot_initializer(name))
            for name in self.slot_names
        }

    def slot(self, name: str, variable):
        return self.slot_variables[name][self._get_variable_index(variable)]

    def state_slots(self, variable) -> dict[str, keras.Variable]:
        """{catalog slot name: optimizer variable} of one trainable variable."""
        return {name: self.slot(name, variable) for name in self.slot_names}

    def clip(self, grads: list) -> list:
        """The catalog's clip_global_norm, in the gradients' dtype.

        Not keras' global_clipnorm nor tf.clip_by_global_norm: both scale by c * min(1 / ||g||, 1 / c), which
        below the threshold is c * (1 / c), not always 1 (49 * (1 / 49) = 1 - 2^-53), so they nudge unclipped
        gradients too. Here the scale is exactly 1 below the threshold and c / ||g|| (one rounding) above it.
        """
        return clip_global_norm(grads, self.clip_global_norm)

    def begin_step(self) -> None:
        """Per-step (not per-variable) state updates before the variables' updates; none by default."""

    def apply(self, grads, trainable_variables=None):
        grads = self.clip(list(grads))
        if trainable_variables is not None and not self.built:
            self.build(list(trainable_variables))
        self.begin_step()
        return super().apply(grads, trainable_variables)

    def step_count(self) -> tf.Tensor:
        """t, the step being taken, counted from 1, as float64 (Keras counts `iterations` from 0)."""
        return tf.cast(self.iterations + 1, tf.float64)


def clip_global_norm(grads: list, c: float | None) -> list:
    """The catalog's clip_global_norm c (see CatalogOptimizer.clip); c None: the gradients unchanged."""
    if c is None:
        return grads
    present = [g for g in grads if g is not None]
    norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in present]))
    scale = tf.minimum(tf.ones_like(norm), c / norm)  # c / 0 = inf: scale 1
    return [None if g is None else g * scale for g in grads]


def bias_correction(beta: float, t: tf.Tensor) -> tf.Tensor:
    """1 - beta^t in float64."""
    return 1.0 - tf.pow(tf.constant(beta, tf.float64), t)


def as_dtype(value: tf.Tensor, variable) -> tf.Tensor:
    return tf.cast(value, variable.dtype)


class Sgd(CatalogOptimizer):
    """sgd, momentum and nesterov. keras.optimizers.SGD keeps v = momentum v - lr g, the catalog's only while lr is
    constant."""

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.momentum = float(entry.momentum)
        self.nesterov = entry.name == "nesterov" or bool(getattr(entry, "nesterov", False))

    def update_step(self, gradient, variable, learning_rate):
        lr = as_dtype(learning_rate, variable)
        g = as_dtype(gradient, variable)
        if not self.momentum:
            self.assign_sub(variable, lr * g)
            return
        buffer = self.slot("momentum", variable)
        b = self.momentum * buffer + g
        self.assign(buffer, b)
        d = g + self.momentum * b if self.nesterov else b
        self.assign_sub(variable, lr * d)


class Adagrad(CatalogOptimizer):
    """keras.optimizers.Adagrad puts epsilon inside the root. The accumulator starts at
    exact(initial_accumulator_value): keras.initializers.Constant(0.1) would fill a float64 slot with float32(0.1)."""

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.initial_accumulator_value = float(entry.initial_accumulator_value)
        self.epsilon = float(entry.epsilon)

    def slot_initializer(self, name: str):
        return keras.initializers.Constant(exact(self.initial_accumulator_value))

    def update_step(self, gradient, variable, learning_rate):
        lr, g = as_dtype(learning_rate, variable), as_dtype(gradient, variable)
        accumulator = self.slot("sum", variable)
        s = accumulator + g * g
        self.assign(accumulator, s)
        self.assign_sub(variable, lr * (g / (tf.sqrt(s) + self.epsilon)))


class Rmsprop(CatalogOptimizer):
    """keras.optimizers.RMSprop puts epsilon inside the root and lr inside its momentum buffer."""

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.rho, self.epsilon = float(entry.rho), float(entry.epsilon)
        self.momentum, self.centered = float(entry.momentum), bool(entry.centered)

    def update_step(self, gradient, variable, learning_rate):
        lr, g = as_dtype(learning_rate, variable), as_dtype(gradient, variable)
        square_average = self.slot("square", variable)
        v = self.rho * square_average + (1.0 - self.rho) * (g * g)
        self.assign(square_average, v)
        if self.centered:
            average = self.slot("mean", variable)
            gbar = self.rho * average + (1.0 - self.rho) * g
            self.assign(average, gbar)
            denominator = tf.sqrt(v - gbar * gbar) + self.epsilon
        else:
            denominator = tf.sqrt(v) + self.epsilon
        if self.momentum:
            buffer = self.slot("momentum", variable)
            b = self.momentum * buffer + g / denominator
            self.assign(buffer, b)
            self.assign_sub(variable, lr * b)
        else:
            self.assign_sub(variable, lr * (g / denominator))


class AdamMoments(CatalogOptimizer):
    """The moment slots m and v that adam, adamw and nadam share, updated the same way."""

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(entry.beta_1), float(entry.beta_2), float(entry.epsilon)

    def moments(self, gradient, variable) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(g, m, v): the gradient in the variable's dtype and the updated moments, assigned to their slots.

        v adds ((1 - beta_2) g) g, the order of torch's addcmul and of the NumPy oracle; inside a tf.function grappler
        reassociated the (1 - beta_2) (g g) written before into that order anyway, so only eager updates change."""
        g = as_dtype(gradient, variable)
        first, second = self.slot("m", variable), self.slot("v", variable)
        m = self.beta_1 * first + (1.0 - self.beta_1) * g
        v = self.beta_2 * second + (1.0 - self.beta_2) * g * g
        self.assign(first, m)
        self.assign(second, v)
        return g, m, v


class Adam(AdamMoments):
    """adam and adamw. keras.optimizers.Adam and AdamW put epsilon next to the uncorrected root ("epsilon hat").
    Evaluated as torch does: the step size and the root's bias correction in float64, then cast.

    Those scalars (and adamw's rate x decay) depend on the step, not the variable: `begin_step` computes them once
    per step (the rate and the step count read once, each dtype's cast once) instead of once per variable, about
    ten scalar ops fewer per variable. One compiled update of seed-cnn's 22 float32 variables (median of interleaved
    runs, two runs): per-variable scalars took 1.06-1.11x as long, keras.optimizers.Adam 0.93-0.94x; what is left is
    the formula's extra elementwise passes per variable (beta_1 m + (1 - beta_1) g where Keras adds (g - m)(1 -
    beta_1) to m, and the division by the root's correction), and the values are the formula's.

    The shared Sqrt also keeps grappler from rewriting sqrt(v) / root_correction into sqrt(v) * rsqrt(...), which it
    did in float64 (no cast sits between them there) while that Sqrt had a single consumer: the compiled update is
    bit for bit the eager one in both dtypes whenever there are two or more variables (tests/test_keras_adam_graph.py).
    """

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.decay = float(getattr(entry, "weight_decay", 0.0))  # not `weight_decay`: Keras' base class owns it (off)
        self._step_scalars, self._cast_scalars = None, {}

    def begin_step(self) -> None:
        super().begin_step()
        t = self.step_count()
        rate = tf.cast(self.rate, tf.float64)
        self._step_scalars = (rate / bias_correction(self.beta_1, t), tf.sqrt(bias_correction(self.beta_2, t)),
                              rate * self.decay)
        self._cast_scalars = {}

    def scalars(self, variable) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(step size, root correction, rate x decay) of this step in the variable's dtype."""
        if variable.dtype not in self._cast_scalars:
            self._cast_scalars[variable.dtype] = tuple(as_dtype(s, variable) for s in self._step_scalars)
        return self._cast_scalars[variable.dtype]

    def update_step(self, gradient, variable, learning_rate):
        step_size, root_correction, decay = self.scalars(variable)
        _, m, v = self.moments(gradient, variable)
        update = step_size * m / (tf.sqrt(v) / root_correction + self.epsilon)
        if self.decay:
            p = tf.convert_to_tensor(variable)
            self.assign(variable, (p - decay * p) - update)
        else:
            self.assign_sub(variable, update)


class Adadelta(CatalogOptimizer):
    """keras.optimizers.Adadelta has the catalog's structure; written here for the float64 learning rate."""

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.rho, self.epsilon = float(entry.rho), float(entry.epsilon)

    def update_step(self, gradient, variable, learning_rate):
        lr, g = as_dtype(learning_rate, variable), as_dtype(gradient, variable)
        square_average, delta_average = self.slot("square", variable), self.slot("delta", variable)
        v = self.rho * square_average + (1.0 - self.rho) * (g * g)
        d = tf.sqrt(delta_average + self.epsilon) / tf.sqrt(v + self.epsilon) * g
        self.assign(square_average, v)
        self.assign(delta_average, self.rho * delta_average + (1.0 - self.rho) * (d * d))
        self.assign_sub(variable, lr * d)


class Adamax(CatalogOptimizer):
    """keras.optimizers.Adamax adds epsilon to the denominator instead of to |g| inside the max."""

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(entry.beta_1), float(entry.beta_2), float(entry.epsilon)

    def update_step(self, gradient, variable, learning_rate):
        t = self.step_count()
        step_size = as_dtype(tf.cast(learning_rate, tf.float64) / bias_correction(self.beta_1, t), variable)
        g = as_dtype(gradient, variable)
        first, norm = self.slot("m", variable), self.slot("u", variable)
        m = self.beta_1 * first + (1.0 - self.beta_1) * g
        u = tf.maximum(self.beta_2 * norm, tf.abs(g) + self.epsilon)
        self.assign(first, m)
        self.assign(norm, u)
        self.assign_sub(variable, step_size * (m / u))


class Nadam(AdamMoments):
    """keras.optimizers.Nadam has no momentum_decay (it hard-codes psi = 1) and computes its constants in the
    variable's dtype; its epsilon sits where the catalog's does. The product of the mu_t is a float64 variable
    multiplied by mu_t once per step (`begin_step`, before the variables' updates)."""

    def __init__(self, entry: Entry, **kwargs):
        super().__init__(entry, **kwargs)
        self.momentum_decay = float(entry.momentum_decay)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.mu_product = self.add_variable(shape=(), initializer=keras.initializers.Ones(), dtype="float64", name="mu_product")

    def mu(self, t: tf.Tensor) -> tf.Tensor:
        """The catalog's momentum schedule mu_t in float64."""
        return self.beta_1 * (1.0 - 0.5 * tf.pow(tf.constant(0.96, tf.float64), t * self.momentum_decay))

    def begin_step(self) -> None:
        self.mu_product.assign(self.mu_product * self.mu(self.step_count()))

    def update_step(self, gradient, variable, learning_rate):
        t = self.step_count()
        rate = tf.cast(learning_rate, tf.float64)
        mu, mu_next = self.mu(t), self.mu(t + 1.0)
        product = tf.convert_to_tensor(self.mu_product)  # this step's factor included
        gradient_coefficient = as_dtype(rate * (1.0 - mu) / (1.0 - product), variable)
        moment_coefficient = as_dtype(rate * mu_next / (1.0 - product * mu_next), variable)
        correction = as_dtype(bias_correction(self.beta_2, t), variable)
        g, m, v = self.moments(gradient, variable)
        denominator = tf.sqrt(v / correction) + self.epsilon
        p = tf.convert_to_tensor(variable)
        self.assign(variable, p - gradient_coefficient * (g / denominator) - moment_coefficient * (m / denominator))


OPTIMIZERS = {
    "sgd": Sgd, "momentum": Sgd, "nesterov": Sgd, "adagrad": Adagrad, "rmsprop": Rmsprop, "adam": Adam, "adamw": Adam,
    "adadelta": Adadelta, "adamax": Adamax, "nadam": Nadam,
}


def make_optimizer(entry: Entry, native: bool = False, native_clipping: bool = False) -> keras.optimizers.Optimizer:
    """The optimizer of a catalog entry; its learning rate is set per step (`set_learning_rate`).

    native (implementation "native"): Keras' own built-in (`native_optimizer`); else the catalog's formula
    (CatalogOptimizer). native_clipping: clip_global_norm as Keras' global_clipnorm, else the catalog's clip (for
    a built-in optimizer, `apply_gradients` applies it)."""
    if entry.name not in OPTIMIZERS:
        raise KeyError(f"the Keras backend has no optimizer {entry.name!r}")
    if native:
        return native_optimizer(entry, native_clipping)
    return OPTIMIZERS[entry.name](entry, native_clipping=native_clipping)


# Native mode: Keras' built-ins -------------------------------------------------------------------------------

# Catalog slot -> the built-in's list of slot variables (one per trainable variable). Where Keras keeps a
# differently-defined quantity it is reported as Keras has it: SGD's "momentum" is Keras' v = momentum v - lr g
# (the lr folded in, sign flipped), RMSprop's "momentum" is Keras' b = momentum b + lr g / sqrt(v + eps), Adagrad's
# "sum" and RMSprop's "square" hold no epsilon (Keras adds it inside the root when it divides).
NATIVE_SLOTS = {
    "sgd": {"momentum": "momentums"}, "momentum": {"momentum": "momentums"}, "nesterov": {"momentum": "momentums"},
    "adagrad": {"sum": "_accumulators"},
    "rmsprop": {"square": "_velocities", "mean": "_average_gradients", "momentum": "_momentums"},
    "adam": {"m": "_momentums", "v": "_velocities"}, "adamw": {"m": "_momentums", "v": "_velocities"},
    "nadam": {"m": "_momentums", "v": "_velocities"},
    "adadelta": {"square": "_accumulated_grads", "delta": "_accumulated_delta_vars"},
    "adamax": {"m": "_m", "u": "_u"},
}


def native_optimizer(entry: Entry, clipping: bool) -> keras.optimizers.Optimizer:
    """Keras' built-in for the entry, with every value the spec states in Keras' own parameterisation and Keras'
    defaults for the rest (NAdam's momentum schedule is Keras' hard-coded psi = 1: momentum_decay has no argument).
    The learning rate is Keras' float variable (keras.config.floatx()), set before every step. clipping:
    clip_global_norm as global_clipnorm."""
    name = entry.name
    common = {"learning_rate": 0.0, "global_clipnorm": entry.clip_global_norm if clipping else None}
    if name in ("sgd", "momentum", "nesterov"):
        nesterov = name == "nesterov" or bool(getattr(entry, "nesterov", False))
        return keras.optimizers.SGD(momentum=float(entry.momentum), nesterov=nesterov, **common)
    if name == "adagrad":
        return keras.optimizers.Adagrad(initial_accumulator_value=entry.initial_accumulator_value,
                                        epsilon=entry.epsilon, **common)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rho=entry.rho, momentum=entry.momentum, epsilon=entry.epsilon,
                                        centered=entry.centered, **common)
    if name == "adam":
        return keras.optimizers.Adam(beta_1=entry.beta_1, beta_2=entry.beta_2, epsilon=entry.epsilon, **common)
    if name == "adamw":
        return keras.optimizers.AdamW(weight_decay=entry.weight_decay, beta_1=entry.beta_1, beta_2=entry.beta_2,
                                      epsilon=entry.epsilon, **common)
    if name == "adadelta":
        return keras.optimizers.Adadelta(rho=entry.rho, epsilon=entry.epsilon, **common)
    if name == "adamax":
        return keras.optimizers.Adamax(beta_1=entry.beta_1, beta_2=entry.beta_2, epsilon=entry.epsilon, **common)
    if name == "nadam":
        return keras.optimizers.Nadam(beta_1=entry.beta_1, beta_2=entry.beta_2, epsilon=entry.epsilon, **common)
    raise KeyError(f"Keras has no built-in for optimizer {name!r}")


def set_learning_rate(optimizer: keras.optimizers.Optimizer, rate) -> None:
    """This step's rate: the catalog optimizer's float64 variable, or the built-in's own (floatx) variable."""
    if isinstance(optimizer, CatalogOptimizer):
        optimizer.rate.assign(rate)
        return
    variable = optimizer.learning_rate  # the variable itself (the optimizer was made with a float rate)
    variable.assign(tf.cast(rate, variable.dtype))


def apply_gradients(optimizer: keras.optimizers.Optimizer, grads: list, variables: list, clip: float | None = None):
    """One update; clip: the catalog's clip_global_norm applied first (a built-in optimizer with catalog clipping)."""
    optimizer.apply(clip_global_norm(list(grads), clip) if clip is not None else grads, variables)


def optimizer_slots(optimizer: keras.optimizers.Optimizer, entry: Entry, variable) -> dict[str, keras.Variable]:
    """{catalog slot name: optimizer variable} of one trainable variable, for the catalog's or the built-in."""
    if isinstance(optimizer, CatalogOptimizer):
        return optimizer.state_slots(variable)
    index = optimizer._get_variable_index(variable)
    return {slot: getattr(optimizer, NATIVE_SLOTS[entry.name][slot])[index] for slot in catalog_state_slots(entry)}


def native_schedule(schedule, base_rate: float, steps_per_epoch: int):
    """implementation = "native": keras.optimizers.schedules' own schedule for the spec's schedule (ExponentialDecay,
    InverseTimeDecay, PolynomialDecay with cycle off, CosineDecay, PiecewiseConstantDecay; a constant rate as a
    float), evaluated at each step as a Keras optimizer evaluates it at its iteration count, as a function of an
    int64 array of steps to their rates; None where Keras has no built-in (piecewise boundaries that are not whole
    steps).

    Keras computes every schedule in the dtype of the initial rate, float32 (floatx), and PiecewiseConstantDecay
    switches only after a boundary (step > b), one step after the catalog (step >= b)."""
    schedules, name = keras.optimizers.schedules, schedule.name
    period = schedule.period(steps_per_epoch) if hasattr(schedule, "period") else None
    if name == "constant":
        return lambda steps: [base_rate] * len(steps)
    if name == "exponential":
        function = schedules.ExponentialDecay(base_rate, period, schedule.decay_rate, staircase=schedule.staircase)
    elif name == "inverse_time":
        function = schedules.InverseTimeDecay(base_rate, period, schedule.decay_rate, staircase=schedule.staircase)
    elif name == "polynomial":
        function = schedules.PolynomialDecay(base_rate, period, end_learning_rate=schedule.end_factor * base_rate,
                                             power=schedule.power, cycle=False)
    elif name == "cosine":
        function = schedules.CosineDecay(base_rate, period, alpha=schedule.alpha)
    elif name == "piecewise_constant":
        bounds = schedule.boundaries if schedule.boundaries is not None else [b * steps_per_epoch for b in schedule.boundary_epochs]
        if not all(float(b).is_integer() for b in bounds):
            return None
        function = schedules.PiecewiseConstantDecay([int(b) for b in bounds], [base_rate * f for f in schedule.factors_])
    else:
        return None
    return lambda steps: np.asarray(function(tf.constant(steps, dtype=tf.int64)), dtype=np.float64).reshape(-1)
