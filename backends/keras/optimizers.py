"""The catalog's SGD and Adam as Keras optimizers, in the torch/optax form rather than Keras' built-ins."""

from backends.keras.framework import keras, tf
from experiments.catalog.base import Entry


class CatalogOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer whose learning rate is a float64 variable the trainer sets before every step.

    Keras' own float learning rate is a variable of keras.config.floatx() (float32 unless set
    process-wide), which would round a float64 run's rates; here the rate stays float64 and
    every base-class extra (weight decay, clipping, EMA, loss scaling, accumulation) is off.
    """

    def __init__(self, name: str):
        rate = keras.Variable(0.0, dtype="float64", trainable=False, name="learning_rate")
        super().__init__(
            learning_rate=lambda: rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
            use_ema=False, loss_scale_factor=None, gradient_accumulation_steps=None, name=name,
        )
        self.rate = rate


class Sgd(CatalogOptimizer):
    """SGD with optional (Nesterov) momentum, torch/optax form (dampening 0).

    b_t = momentum * b_{t-1} + g_t;  d_t = g_t + momentum * b_t if nesterov else b_t;
    p_t = p_{t-1} - lr_t * d_t. Keras' SGD keeps v = momentum * v - lr * g instead, which
    equals this only while lr is constant.
    """

    def __init__(self, momentum: float, nesterov: bool, name: str = "sgd"):
        super().__init__(name)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.buffers = self.add_optimizer_variables(variables, "momentum_buffer") if self.momentum else []

    def update_step(self, gradient, variable, learning_rate):
        lr = tf.cast(learning_rate, variable.dtype)
        g = tf.cast(gradient, variable.dtype)
        if not self.momentum:
            self.assign_sub(variable, lr * g)
            return
        buffer = self.buffers[self._get_variable_index(variable)]
        b = self.momentum * buffer + g
        self.assign(buffer, b)
        d = g + self.momentum * b if self.nesterov else b
        self.assign_sub(variable, lr * d)


class Adam(CatalogOptimizer):
    """Adam with epsilon outside the bias-corrected root (torch, optax).

    m_t = beta_1 m + (1 - beta_1) g;  v_t = beta_2 v + (1 - beta_2) g^2;
    p_t = p - lr_t (m_t / (1 - beta_1^t)) / (sqrt(v_t / (1 - beta_2^t)) + epsilon),
    evaluated as torch does: step size lr_t / (1 - beta_1^t) and sqrt(1 - beta_2^t) in float64,
    then cast to the parameter's dtype. Keras' built-in Adam puts epsilon next to the
    uncorrected sqrt(v_t) ("epsilon hat"), i.e. an effective epsilon / sqrt(1 - beta_2^t).

    References: Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    def __init__(self, beta_1: float, beta_2: float, epsilon: float, name: str = "adam"):
        super().__init__(name)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.first_moments = self.add_optimizer_variables(variables, "m")
        self.second_moments = self.add_optimizer_variables(variables, "v")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        t = tf.cast(self.iterations + 1, tf.float64)  # the step, counted from 1
        step_size = tf.cast(learning_rate, tf.float64) / (1.0 - tf.pow(tf.constant(self.beta_1, tf.float64), t))
        root_correction = tf.sqrt(1.0 - tf.pow(tf.constant(self.beta_2, tf.float64), t))
        step_size, root_correction = tf.cast(step_size, dtype), tf.cast(root_correction, dtype)
        g = tf.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        m = self.beta_1 * self.first_moments[index] + (1.0 - self.beta_1) * g
        v = self.beta_2 * self.second_moments[index] + (1.0 - self.beta_2) * tf.square(g)
        self.assign(self.first_moments[index], m)
        self.assign(self.second_moments[index], v)
        self.assign_sub(variable, step_size * m / (tf.sqrt(v) / root_correction + self.epsilon))


def make_optimizer(entry: Entry) -> CatalogOptimizer:
    """The optimizer of a catalog entry; its learning rate is set per step (see CatalogOptimizer)."""
    if entry.name == "sgd":
        return Sgd(momentum=entry.momentum, nesterov=entry.nesterov)
    if entry.name == "adam":
        return Adam(beta_1=entry.beta_1, beta_2=entry.beta_2, epsilon=entry.epsilon)
    raise KeyError(f"the Keras backend has no optimizer {entry.name!r}")
