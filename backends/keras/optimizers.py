"""The catalog's optimizers as Keras optimizers, in the catalog's (torch) form rather than Keras' built-ins.

Keras' built-ins differ: SGD and RMSprop fold the learning rate into their momentum buffers,
Adam uses "epsilon hat", RMSprop and Adagrad put epsilon inside the root, Adamax adds epsilon
to u, Nadam hard-codes 0.96^t, Adagrad starts its accumulator at 0.1 by default. Each class
below writes the catalog formula; its scalar coefficients (bias corrections, momentum
schedules, lr products) are computed in float64, as torch does in Python, then cast to the
parameter's dtype.
"""

from backends.keras.framework import exact, keras, tf
from experiments.catalog.base import Entry


class CatalogOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer whose learning rate is a float64 variable the trainer sets before every step.

    Keras' own float learning rate is a variable of keras.config.floatx() (float32 unless set
    process-wide), which would round a float64 run's rates; here the rate stays float64 and
    every base-class extra (weight decay, clipping, EMA, loss scaling, accumulation) is off.
    Global-norm clipping is the catalog's (see `clip`), applied in `apply` before the update.
    """

    def __init__(self, name: str, clip_global_norm: float | None = None):
        rate = keras.Variable(0.0, dtype="float64", trainable=False, name="learning_rate")
        super().__init__(
            learning_rate=lambda: rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
            use_ema=False, loss_scale_factor=None, gradient_accumulation_steps=None, name=name,
        )
        self.rate = rate
        self.clip_global_norm = None if clip_global_norm is None else float(clip_global_norm)

    def clip(self, grads: list) -> list:
        """g * min(1, c / ||g||), ||g|| the L2 norm over all gradients, in the gradients' dtype.

        Not keras' global_clipnorm nor tf.clip_by_global_norm: both scale by
        c * min(1 / ||g||, 1 / c), which below the threshold is c * (1 / c), not always 1
        (49 * (1 / 49) = 1 - 2^-53), so they nudge unclipped gradients too. Here the scale
        is exactly 1 below the threshold and c / ||g|| (one rounding) above it.
        """
        if self.clip_global_norm is None:
            return grads
        present = [g for g in grads if g is not None]
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in present]))
        scale = tf.minimum(tf.ones_like(norm), self.clip_global_norm / norm)  # c / 0 = inf: scale 1
        return [None if g is None else g * scale for g in grads]

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

    def slots(self, variables, *names: str, initializer="zeros") -> list:
        """One list of optimizer variables (shaped and typed like the parameters) per name."""
        return [self.add_optimizer_variables(variables, name, initializer=initializer) for name in names]

    def slot(self, slots: list, variable):
        return slots[self._get_variable_index(variable)]

    def state_slots(self) -> dict[str, list]:
        """The slots the formula uses, by the catalog's slot names (backends/numpy/optimizers.py):
        slot name -> one optimizer variable per trainable variable, in build order."""
        return {}

    def state_of(self, variable) -> dict[str, object]:
        """{slot name: optimizer variable} of one trainable variable (see `state_slots`)."""
        index = self._get_variable_index(variable)
        return {name: slots[index] for name, slots in self.state_slots().items()}


def bias_correction(beta: float, t: tf.Tensor) -> tf.Tensor:
    """1 - beta^t in float64."""
    return 1.0 - tf.pow(tf.constant(beta, tf.float64), t)


def as_dtype(value: tf.Tensor, variable) -> tf.Tensor:
    return tf.cast(value, variable.dtype)


class Sgd(CatalogOptimizer):
    """SGD with optional (Nesterov) momentum, torch/optax form (dampening 0).

    b_t = momentum * b_{t-1} + g_t;  d_t = g_t + momentum * b_t if nesterov else b_t;
    p_t = p_{t-1} - lr_t * d_t. Keras' SGD keeps v = momentum * v - lr * g instead, which
    equals this only while lr is constant.
    """

    def __init__(self, momentum: float, nesterov: bool, clip_global_norm=None, name: str = "sgd"):
        super().__init__(name, clip_global_norm)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.buffers = self.add_optimizer_variables(variables, "momentum_buffer") if self.momentum else []

    def state_slots(self):
        return {"momentum": self.buffers} if self.momentum else {}

    def update_step(self, gradient, variable, learning_rate):
        lr = as_dtype(learning_rate, variable)
        g = as_dtype(gradient, variable)
        if not self.momentum:
            self.assign_sub(variable, lr * g)
            return
        buffer = self.slot(self.buffers, variable)
        b = self.momentum * buffer + g
        self.assign(buffer, b)
        d = g + self.momentum * b if self.nesterov else b
        self.assign_sub(variable, lr * d)


class Adagrad(CatalogOptimizer):
    """Adagrad, epsilon outside the root (torch): s_t = s_{t-1} + g^2, s_0 = initial_accumulator_value;
    p_t = p_{t-1} - lr_t g / (sqrt(s_t) + epsilon). Keras' Adagrad uses sqrt(s_t + epsilon).

    References: Duchi et al., "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 2011. The accumulator starts at exact(initial_accumulator_value):
    keras.initializers.Constant(0.1) alone would fill a float64 slot with float32(0.1).
    """

    def __init__(self, initial_accumulator_value: float, epsilon: float, clip_global_norm=None, name: str = "adagrad"):
        super().__init__(name, clip_global_norm)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        (self.accumulators,) = self.slots(
            variables, "accumulator", initializer=keras.initializers.Constant(exact(self.initial_accumulator_value))
        )

    def state_slots(self):
        return {"sum": self.accumulators}

    def update_step(self, gradient, variable, learning_rate):
        lr, g = as_dtype(learning_rate, variable), as_dtype(gradient, variable)
        accumulator = self.slot(self.accumulators, variable)
        s = accumulator + g * g
        self.assign(accumulator, s)
        self.assign_sub(variable, lr * (g / (tf.sqrt(s) + self.epsilon)))


class Rmsprop(CatalogOptimizer):
    """RMSprop in torch's form (epsilon outside the root, lr outside the momentum buffer).

    v_t = rho v + (1 - rho) g^2; centered: gbar_t = rho gbar + (1 - rho) g, denominator
    sqrt(v_t - gbar_t^2) + epsilon, else sqrt(v_t) + epsilon. momentum > 0:
    b_t = momentum b + g / denominator, p -= lr_t b_t; else p -= lr_t g / denominator.
    Keras' RMSprop puts epsilon inside the root and lr inside its momentum buffer.

    References: Tieleman and Hinton, Lecture 6.5 of "Neural Networks for Machine Learning", 2012.
    """

    def __init__(self, rho: float, epsilon: float, momentum: float, centered: bool, clip_global_norm=None,
                 name: str = "rmsprop"):
        super().__init__(name, clip_global_norm)
        self.rho, self.epsilon, self.momentum, self.centered = float(rho), float(epsilon), float(momentum), bool(centered)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        (self.square_averages,) = self.slots(variables, "square_average")
        self.averages = self.slots(variables, "average")[0] if self.centered else []
        self.buffers = self.slots(variables, "momentum_buffer")[0] if self.momentum else []

    def state_slots(self):
        slots = {"square": self.square_averages}
        if self.centered:
            slots["mean"] = self.averages
        if self.momentum:
            slots["momentum"] = self.buffers
        return slots

    def update_step(self, gradient, variable, learning_rate):
        lr, g = as_dtype(learning_rate, variable), as_dtype(gradient, variable)
        square_average = self.slot(self.square_averages, variable)
        v = self.rho * square_average + (1.0 - self.rho) * (g * g)
        self.assign(square_average, v)
        if self.centered:
            average = self.slot(self.averages, variable)
            gbar = self.rho * average + (1.0 - self.rho) * g
            self.assign(average, gbar)
            denominator = tf.sqrt(v - gbar * gbar) + self.epsilon
        else:
            denominator = tf.sqrt(v) + self.epsilon
        if self.momentum:
            buffer = self.slot(self.buffers, variable)
            b = self.momentum * buffer + g / denominator
            self.assign(buffer, b)
            self.assign_sub(variable, lr * b)
        else:
            self.assign_sub(variable, lr * (g / denominator))


class Adam(CatalogOptimizer):
    """Adam with epsilon outside the bias-corrected root (torch, optax); with weight_decay, AdamW.

    m_t = beta_1 m + (1 - beta_1) g;  v_t = beta_2 v + (1 - beta_2) g^2;
    p_t = p - lr_t (m_t / (1 - beta_1^t)) / (sqrt(v_t / (1 - beta_2^t)) + epsilon),
    evaluated as torch does: step size lr_t / (1 - beta_1^t) and sqrt(1 - beta_2^t) in float64,
    then cast to the parameter's dtype. Keras' built-in Adam puts epsilon next to the
    uncorrected sqrt(v_t) ("epsilon hat"), i.e. an effective epsilon / sqrt(1 - beta_2^t).
    AdamW (weight_decay > 0, decoupled): p <- p - lr_t weight_decay p first, then the Adam
    update of the decayed p (torch, Keras AdamW, optax adamw).

    References: Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015;
    Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """

    def __init__(self, beta_1: float, beta_2: float, epsilon: float, weight_decay: float = 0.0, clip_global_norm=None,
                 name: str = "adam"):
        super().__init__(name, clip_global_norm)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.decay = float(weight_decay)  # not `weight_decay`: Keras' base class owns that name (and it is off)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.first_moments, self.second_moments = self.slots(variables, "m", "v")

    def state_slots(self):
        return {"m": self.first_moments, "v": self.second_moments}

    def update_step(self, gradient, variable, learning_rate):
        t = self.step_count()
        rate = tf.cast(learning_rate, tf.float64)
        step_size = as_dtype(rate / bias_correction(self.beta_1, t), variable)
        root_correction = as_dtype(tf.sqrt(bias_correction(self.beta_2, t)), variable)
        g = as_dtype(gradient, variable)
        first, second = self.slot(self.first_moments, variable), self.slot(self.second_moments, variable)
        m = self.beta_1 * first + (1.0 - self.beta_1) * g
        v = self.beta_2 * second + (1.0 - self.beta_2) * (g * g)
        self.assign(first, m)
        self.assign(second, v)
        update = step_size * m / (tf.sqrt(v) / root_correction + self.epsilon)
        if self.decay:
            p = tf.convert_to_tensor(variable)
            self.assign(variable, (p - as_dtype(rate * self.decay, variable) * p) - update)
        else:
            self.assign_sub(variable, update)


class Adadelta(CatalogOptimizer):
    """Adadelta: v_t = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v_t + eps) g;
    u_t = rho u + (1 - rho) d^2; p -= lr_t d (the same structure as torch, Keras and optax).

    References: Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012.
    """

    def __init__(self, rho: float, epsilon: float, clip_global_norm=None, name: str = "adadelta"):
        super().__init__(name, clip_global_norm)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.square_averages, self.delta_averages = self.slots(variables, "square_average", "delta_average")

    def state_slots(self):
        return {"square": self.square_averages, "delta": self.delta_averages}

    def update_step(self, gradient, variable, learning_rate):
        lr, g = as_dtype(learning_rate, variable), as_dtype(gradient, variable)
        square_average, delta_average = self.slot(self.square_averages, variable), self.slot(self.delta_averages, variable)
        v = self.rho * square_average + (1.0 - self.rho) * (g * g)
        d = tf.sqrt(delta_average + self.epsilon) / tf.sqrt(v + self.epsilon) * g
        self.assign(square_average, v)
        self.assign(delta_average, self.rho * delta_average + (1.0 - self.rho) * (d * d))
        self.assign_sub(variable, lr * d)


class Adamax(CatalogOptimizer):
    """Adamax (torch, optax): m_t = beta_1 m + (1 - beta_1) g; u_t = max(beta_2 u, |g| + epsilon);
    p -= lr_t / (1 - beta_1^t) m_t / u_t. Keras' Adamax divides by u_t + epsilon with u_t = max(beta_2 u, |g|).

    References: Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.
    """

    def __init__(self, beta_1: float, beta_2: float, epsilon: float, clip_global_norm=None, name: str = "adamax"):
        super().__init__(name, clip_global_norm)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.first_moments, self.norms = self.slots(variables, "m", "u")

    def state_slots(self):
        return {"m": self.first_moments, "u": self.norms}

    def update_step(self, gradient, variable, learning_rate):
        t = self.step_count()
        step_size = as_dtype(tf.cast(learning_rate, tf.float64) / bias_correction(self.beta_1, t), variable)
        g = as_dtype(gradient, variable)
        first, norm = self.slot(self.first_moments, variable), self.slot(self.norms, variable)
        m = self.beta_1 * first + (1.0 - self.beta_1) * g
        u = tf.maximum(self.beta_2 * norm, tf.abs(g) + self.epsilon)
        self.assign(first, m)
        self.assign(norm, u)
        self.assign_sub(variable, step_size * (m / u))


class Nadam(CatalogOptimizer):
    """NAdam with torch's momentum schedule mu_t = beta_1 (1 - 0.5 * 0.96^(t psi)), psi = momentum_decay.

    m_t = beta_1 m + (1 - beta_1) g;  v_t = beta_2 v + (1 - beta_2) g^2;  P_t = prod_{i<=t} mu_i;
    denominator = sqrt(v_t / (1 - beta_2^t)) + epsilon;
    p -= lr_t (1 - mu_t) / (1 - P_t) g / denominator + lr_t mu_{t+1} / (1 - P_t mu_{t+1}) m_t / denominator.
    P_t is a float64 variable multiplied by mu_t once per step (in `begin_step`, before the
    variables' updates). Keras' Nadam hard-codes 0.96^t (psi = 1) and computes its constants in the variable's
    dtype; its epsilon sits where this one does (added to sqrt(v_t / (1 - beta_2^t))), unlike Keras' Adam.

    References: Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    """

    def __init__(self, beta_1: float, beta_2: float, epsilon: float, momentum_decay: float, clip_global_norm=None,
                 name: str = "nadam"):
        super().__init__(name, clip_global_norm)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.momentum_decay = float(momentum_decay)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.first_moments, self.second_moments = self.slots(variables, "m", "v")
        self.mu_product = self.add_variable(shape=(), initializer=keras.initializers.Ones(), dtype="float64", name="mu_product")

    def state_slots(self):
        return {"m": self.first_moments, "v": self.second_moments}

    def mu(self, t: tf.Tensor) -> tf.Tensor:
        """mu_t = beta_1 (1 - 0.5 * 0.96^(t psi)) in float64."""
        return self.beta_1 * (1.0 - 0.5 * tf.pow(tf.constant(0.96, tf.float64), t * self.momentum_decay))

    def begin_step(self) -> None:
        self.mu_product.assign(self.mu_product * self.mu(self.step_count()))

    def update_step(self, gradient, variable, learning_rate):
        t = self.step_count()
        rate = tf.cast(learning_rate, tf.float64)
        mu, mu_next = self.mu(t), self.mu(t + 1.0)
        product = tf.convert_to_tensor(self.mu_product)  # P_t, this step's factor included
        gradient_coefficient = as_dtype(rate * (1.0 - mu) / (1.0 - product), variable)
        moment_coefficient = as_dtype(rate * mu_next / (1.0 - product * mu_next), variable)
        correction = as_dtype(bias_correction(self.beta_2, t), variable)
        g = as_dtype(gradient, variable)
        first, second = self.slot(self.first_moments, variable), self.slot(self.second_moments, variable)
        m = self.beta_1 * first + (1.0 - self.beta_1) * g
        v = self.beta_2 * second + (1.0 - self.beta_2) * (g * g)
        self.assign(first, m)
        self.assign(second, v)
        denominator = tf.sqrt(v / correction) + self.epsilon
        p = tf.convert_to_tensor(variable)
        self.assign(variable, p - gradient_coefficient * (g / denominator) - moment_coefficient * (m / denominator))


def make_optimizer(entry: Entry) -> CatalogOptimizer:
    """The optimizer of a catalog entry; its learning rate is set per step (see CatalogOptimizer)."""
    clip = entry.clip_global_norm
    name = entry.name
    if name == "sgd":
        return Sgd(momentum=entry.momentum, nesterov=entry.nesterov, clip_global_norm=clip)
    if name in ("momentum", "nesterov"):
        return Sgd(momentum=entry.momentum, nesterov=name == "nesterov", clip_global_norm=clip, name=name)
    if name == "adagrad":
        return Adagrad(entry.initial_accumulator_value, entry.epsilon, clip_global_norm=clip)
    if name == "rmsprop":
        return Rmsprop(entry.rho, entry.epsilon, entry.momentum, entry.centered, clip_global_norm=clip)
    if name == "adam":
        return Adam(entry.beta_1, entry.beta_2, entry.epsilon, clip_global_norm=clip)
    if name == "adamw":
        return Adam(entry.beta_1, entry.beta_2, entry.epsilon, entry.weight_decay, clip_global_norm=clip, name="adamw")
    if name == "adadelta":
        return Adadelta(entry.rho, entry.epsilon, clip_global_norm=clip)
    if name == "adamax":
        return Adamax(entry.beta_1, entry.beta_2, entry.epsilon, clip_global_norm=clip)
    if name == "nadam":
        return Nadam(entry.beta_1, entry.beta_2, entry.epsilon, entry.momentum_decay, clip_global_norm=clip)
    raise KeyError(f"the Keras backend has no optimizer {name!r}")
