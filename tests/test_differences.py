"""Every entry of the differences catalog re-measured against the installed frameworks: present where it says, at
about the size it records, and absent where it says the built-in is the catalog's formula. An upgrade of torch,
Keras, optax or flax that changes a formula fails the test named after the entry."""

import math
import os

import numpy as np
import pytest

from experiments.catalog.differences import BY_ID, DIFFERENCES

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GUARD_FACTOR = 3.0
"""A present difference must measure within this factor of its recorded size (sizes are deterministic here; the
factor leaves room for another CPU's summation order, not for another formula)."""
ABSENT = 1e-13
"""An absent difference: the built-in agrees with the catalog's formula to float64 rounding."""


def relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --- activation probes -----------------------------------------------------------------------------------------

SOFTPLUS_GRID = np.linspace(19.0, 25.0, 61)
KINK_GRID = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
SLOPE = 0.1
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
HARD_SIGMOID_GRID = np.linspace(-4.0, 4.0, 9)  # the kinks -3 and 3 and 0 included
GELU_FORMS = ("none", "tanh")


def torch_derivative(function, grid=KINK_GRID):
    import torch

    x = torch.tensor(grid, requires_grad=True)
    function(x).sum().backward()
    return x.grad.numpy()


def keras_derivative(function, grid=KINK_GRID):
    import tensorflow as tf

    x = tf.Variable(grid)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(function(x))
    return tape.gradient(total, x).numpy()


def jax_derivative(function, grid=KINK_GRID):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    return np.asarray(jax.grad(lambda x: function(x).sum())(jnp.asarray(grid)))


def softplus(framework: str) -> float:
    exact = np.logaddexp(0.0, SOFTPLUS_GRID)
    if framework == "torch":
        import torch

        return relative(torch.nn.Softplus()(torch.tensor(SOFTPLUS_GRID)).numpy(), exact)
    if framework == "keras":
        import keras
        import tensorflow as tf

        return relative(keras.activations.softplus(tf.constant(SOFTPLUS_GRID)).numpy(), exact)
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    return relative(jax.nn.softplus(jnp.asarray(SOFTPLUS_GRID)), exact)


def leaky_relu_derivative(framework: str) -> float:
    catalog = np.where(KINK_GRID > 0, 1.0, SLOPE)  # the slope at 0 (experiments.catalog.activations)
    if framework == "torch":
        import torch

        return relative(torch_derivative(lambda x: torch.nn.functional.leaky_relu(x, SLOPE)), catalog)
    if framework == "keras":
        import keras

        return relative(keras_derivative(lambda x: keras.layers.LeakyReLU(negative_slope=SLOPE)(x)), catalog)
    import jax

    return relative(jax_derivative(lambda x: jax.nn.leaky_relu(x, SLOPE)), catalog)


def selu_derivative(framework: str) -> float:
    catalog = SELU_SCALE * np.where(KINK_GRID > 0, 1.0, SELU_ALPHA * np.exp(KINK_GRID))
    if framework == "torch":
        import torch

        return relative(torch_derivative(torch.nn.functional.selu), catalog)
    if framework == "keras":
        import keras

        return relative(keras_derivative(keras.activations.selu), catalog)
    import jax

    return relative(jax_derivative(jax.nn.selu), catalog)


def gelu_form(framework: str, approximate: str) -> float:
    """One form of the built-in gelu on KINK_GRID against the catalog's (backends/numpy: erf, and sqrt(2 / pi),
    0.044715 in float64)."""
    from scipy.special import erf

    x = KINK_GRID
    if approximate == "none":
        catalog = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    else:
        catalog = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if framework == "torch":
        import torch

        return relative(torch.nn.GELU(approximate=approximate)(torch.tensor(x)).numpy(), catalog)
    if framework == "keras":
        import keras
        import tensorflow as tf

        return relative(keras.activations.gelu(tf.constant(x), approximate=approximate == "tanh").numpy(), catalog)
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    return relative(jax.nn.gelu(jnp.asarray(x), approximate=approximate == "tanh"), catalog)


def gelu(framework: str) -> float:
    """Both forms: where the entry records the difference, the smaller of the two (a fix of either form falls
    below the recorded size); where it records the framework absent, the larger (a change in either shows)."""
    sizes = [gelu_form(framework, approximate) for approximate in GELU_FORMS]
    return min(sizes) if framework in BY_ID["keras-gelu-float32-constants"].present else max(sizes)


def prelu_derivative(framework: str) -> float:
    """d/dx of the built-in prelu with one alpha (SLOPE), built as the native backends build it."""
    catalog = np.where(KINK_GRID > 0, 1.0, SLOPE)  # alpha at 0 (experiments.catalog.activations)
    if framework == "torch":
        import torch

        return relative(torch_derivative(torch.nn.PReLU(num_parameters=1, init=SLOPE, dtype=torch.float64)), catalog)
    if framework == "keras":
        import keras

        layer = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(SLOPE), shared_axes=[1], dtype="float64")
        layer.build((1, KINK_GRID.size))
        layer.alpha.assign([SLOPE])  # Constant(0.1) goes through float32; the native trainer sets alpha exactly
        return relative(keras_derivative(lambda x: layer(x[None, :])[0]), catalog)
    import flax.linen as nn
    import jax.numpy as jnp

    prelu = nn.PReLU(param_dtype=jnp.float64, negative_slope_init=SLOPE, parent=None)
    return relative(jax_derivative(lambda x: prelu.apply({"params": {"negative_slope": jnp.float64(SLOPE)}}, x)), catalog)


def hard_sigmoid_derivative(framework: str) -> float:
    catalog = np.where(np.abs(HARD_SIGMOID_GRID) < 3.0, 1.0 / 6.0, 0.0)  # 0 at the kinks -3 and 3
    if framework == "torch":
        import torch

        return relative(torch_derivative(torch.nn.Hardsigmoid(), HARD_SIGMOID_GRID), catalog)
    if framework == "keras":
        import keras

        return relative(keras_derivative(keras.activations.get("hard_sigmoid"), HARD_SIGMOID_GRID), catalog)
    import jax

    return relative(jax_derivative(jax.nn.hard_sigmoid, HARD_SIGMOID_GRID), catalog)


# --- the batch-norm probe --------------------------------------------------------------------------------------

BATCH_NORM_EPSILON = 1e-3


@pytest.fixture(scope="module")
def offset_digits(mnist_subset):
    """64 real digits in 8 channels, pixel / 255 * a + b (the batch-norm probe of the differences catalog)."""
    rng = np.random.default_rng(0)
    scale, shift = rng.uniform(0.5, 2.0, 8), rng.uniform(2.0, 6.0, 8)
    return (mnist_subset.x_test[:64].astype(np.float64) / 255.0)[..., None] * scale + shift


def exact_batch_norm(x: np.ndarray) -> np.ndarray:
    wide = x.astype(np.longdouble)
    mean = wide.mean(axis=(0, 1, 2))
    variance = ((wide - mean) ** 2).mean(axis=(0, 1, 2))
    return ((wide - mean) / np.sqrt(variance + BATCH_NORM_EPSILON)).astype(np.float64)


def batch_norm(framework: str, x: np.ndarray) -> float:
    if framework == "torch":
        import torch

        layer = torch.nn.BatchNorm2d(x.shape[-1], eps=BATCH_NORM_EPSILON).double().train()
        out = layer(torch.tensor(x).permute(0, 3, 1, 2).contiguous()).detach().permute(0, 2, 3, 1).numpy()
    elif framework == "keras":
        import keras
        import tensorflow as tf

        layer = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, momentum=0.99, dtype="float64")
        out = layer(tf.constant(x), training=True).numpy()
    else:
        import flax.linen as nn
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        layer = nn.BatchNorm(use_running_average=False, momentum=0.99, epsilon=BATCH_NORM_EPSILON,
                             dtype=jnp.float64, param_dtype=jnp.float64)
        variables = layer.init(jax.random.key(0), jnp.asarray(x))
        out, _ = layer.apply(variables, jnp.asarray(x), mutable=["batch_stats"])
    return relative(out, exact_batch_norm(x))


# --- the optimizer probe: native trainers against the oracle --------------------------------------------------

PROBE_STEPS = 20


def optimizer_probe(framework: str, table: dict, rates=None) -> float:
    """A float64 784-4-10 MLP in native mode and the NumPy oracle from the same weights, PROBE_STEPS steps of
    apply_gradients with the gradient p - p* (fixed random p*): the parameters' difference after the last step
    relative to the oracle's displacement."""
    from backends import load_trainer
    from experiments.spec import load_spec, plan_of
    from experiments.spec.loading import toml_value
    from experiments.spec.weights import initial_weights

    spec = load_spec("mlp-relu-adam", ['dtype="float64"', 'implementation="native"',
                                       'model.hidden=[{units = 4, activation = "relu"}]', f"optimizer={toml_value(table)}"])
    plan = plan_of(spec)
    native, oracle = load_trainer(framework)(spec, plan, 1), load_trainer("numpy")(spec, plan, 1)
    start = initial_weights(plan, 0)
    rng = np.random.default_rng(1)
    target = {name: rng.normal(0.0, 1.0, start[name].shape) for name in oracle.trainable_names}
    for trainer in (native, oracle):
        trainer.set_weights(start)
        for rate in np.full(PROBE_STEPS, table["learning_rate"]) if rates is None else rates:
            weights = trainer.get_weights()
            trainer.apply_gradients({name: weights[name] - target[name] for name in trainer.trainable_names}, float(rate))
    flat = lambda weights: np.concatenate([weights[name].ravel() for name in oracle.trainable_names])
    got, want, before = flat(native.get_weights()), flat(oracle.get_weights()), flat(start)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want - before))


ADAM = {"name": "adam", "learning_rate": 1e-3, "epsilon": 1e-7}
RMSPROP = {"name": "rmsprop", "learning_rate": 1e-3, "rho": 0.9, "epsilon": 1e-7}
ADAGRAD = {"name": "adagrad", "learning_rate": 1e-2, "initial_accumulator_value": 0.1, "epsilon": 1e-7}
NADAM = {"name": "nadam", "learning_rate": 2e-3, "epsilon": 1e-7, "momentum_decay": 0.004}
OPTIMIZER_PROBES = {
    "keras-adam-epsilon-hat": (ADAM, None),
    "keras-rmsprop-epsilon-in-root": (RMSPROP, None),
    "optax-rmsprop-epsilon-in-root": (RMSPROP, None),
    "keras-adagrad-epsilon-in-root": (ADAGRAD, None),
    "optax-adagrad-epsilon-in-root": (ADAGRAD, None),
    "keras-adamax-epsilon-on-u": ({"name": "adamax", "learning_rate": 2e-3, "epsilon": 1e-7}, None),
    "keras-nadam-fixed-schedule": (NADAM, None),
    "optax-nadam-constant-momentum": (NADAM, None),
    "torch-nadam-float32-product": (NADAM, None),
    "keras-sgd-learning-rate-in-velocity": ({"name": "momentum", "learning_rate": 1e-2, "momentum": 0.9},
                                            1e-2 * 0.8 ** np.arange(PROBE_STEPS)),
    "keras-float32-hyperparameters": ({"name": "sgd", "learning_rate": 0.1}, None),
    "torch-clip-grad-norm-epsilon": ({"name": "sgd", "learning_rate": 0.1, "clip_global_norm": 1.0}, None),
}

RUNNING_MOMENTUM = 0.99


def running_variance(framework: str, x: np.ndarray) -> float:
    """The running variance after one train-mode step from 1, against the catalog's m + (1 - m) var (biased)."""
    catalog = RUNNING_MOMENTUM + (1.0 - RUNNING_MOMENTUM) * x.var(axis=(0, 1, 2))
    if framework == "torch":
        import torch

        layer = torch.nn.BatchNorm2d(x.shape[-1], eps=BATCH_NORM_EPSILON, momentum=1.0 - RUNNING_MOMENTUM).double().train()
        layer(torch.tensor(x).permute(0, 3, 1, 2).contiguous())
        return relative(layer.running_var.numpy(), catalog)
    if framework == "keras":
        import keras
        import tensorflow as tf

        layer = keras.layers.BatchNormalization(momentum=RUNNING_MOMENTUM, epsilon=BATCH_NORM_EPSILON, dtype="float64")
        layer(tf.constant(x), training=True)
        return relative(layer.moving_variance.numpy(), catalog)
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    layer = nn.BatchNorm(use_running_average=False, momentum=RUNNING_MOMENTUM, epsilon=BATCH_NORM_EPSILON,
                         dtype=jnp.float64, param_dtype=jnp.float64)
    _, updated = layer.apply(layer.init(jax.random.key(0), jnp.asarray(x)), jnp.asarray(x), mutable=["batch_stats"])
    return relative(updated["batch_stats"]["var"], catalog)


# --- the initializer probe -------------------------------------------------------------------------------------

INITIALIZER_HIDDEN = 'model.hidden=[{units = 48, activation = "relu"}, {units = 24, activation = "relu"}]'


def initializer_probe(framework: str, entry: str) -> float:
    """A native trainer's own dense_0 kernel (784 x 48, seed 0) against the catalog's distribution for it: a constant's
    relative difference, else the share of values beyond the catalog's support (its bounds, or a truncated normal's
    cut at 2 standard deviations)."""
    from experiments.spec.plan import fans
    from tests.conftest import make_trainer

    table = '{name = "constant", value = 0.01}' if entry == "constant" else f'"{entry}"'
    trainer, plan = make_trainer(framework, "mlp-relu-adam", "float64", (
        INITIALIZER_HIDDEN, f"model.kernel_init={table}", 'model.bias_init="zeros"', 'implementation="native"'))
    assert "initializer" not in trainer.native_fallbacks and f"initializer:{entry}" not in trainer.native_fallbacks
    kernel = trainer.get_weights()["dense_0/kernel"]
    layer = next(layer for layer in plan if layer.name == "dense_0")
    distribution = layer.kernel_init.distribution(*fans(kernel.shape))
    if distribution.kind == "constant":
        return relative(kernel, np.full(kernel.shape, distribution.a))
    assert distribution.kind == "truncated_normal", distribution
    return float(np.mean(np.abs(kernel - distribution.a) > 2.0 * distribution.b))


INITIALIZER_PROBES = {"torch-normal-initializers-untruncated": "glorot_normal", "keras-constant-float32": "constant"}


# --- the loss probe --------------------------------------------------------------------------------------------


def loss_probe(framework: str, loss: str, digits) -> float:
    """A native trainer's train-mode loss of 64 real digits against the oracle's, from the same weights."""
    from experiments.spec.weights import initial_weights
    from tests.conftest import make_trainer

    overrides = (INITIALIZER_HIDDEN, f'loss="{loss}"', 'implementation="native"')
    native, plan = make_trainer(framework, "mlp-relu-adam", "float64", overrides)
    oracle, _ = make_trainer("numpy", "mlp-relu-adam", "float64", overrides)
    assert "loss" not in native.native_fallbacks
    x, y = digits
    losses = []
    for trainer in (native, oracle):
        trainer.set_weights(initial_weights(plan, 0))
        losses.append(trainer.loss_and_gradients(x, y)[0])
    return relative(losses[0], losses[1])


# --- the schedule probe ----------------------------------------------------------------------------------------

SCHEDULE_PROBES = {
    "torch-cosine-annealing-periodic": '{name = "cosine", decay_steps = 40, alpha = 0.1}',
    "keras-schedules-float32": '{name = "exponential", decay_steps = 20, decay_rate = 0.5}',
    "keras-piecewise-constant-after-boundary": '{name = "piecewise_constant", boundaries = [20, 40], factors = [1.0, 0.5, 0.25]}',
}


def schedule_probe(framework: str, schedule: str) -> float:
    """A native trainer's rates for steps 0-119 (20 per epoch) against the catalog's closed form."""
    from experiments.catalog.schedules import learning_rates as catalog_learning_rates
    from tests.conftest import make_trainer

    trainer, _ = make_trainer(framework, "mlp-relu-adam", "float64", (f"schedule = {schedule}", 'implementation = "native"'))
    assert "schedule" not in trainer.native_fallbacks
    native = trainer.learning_rates(0, 120, 20)
    return relative(native, catalog_learning_rates(trainer.spec.optimizer.learning_rate, trainer.spec.schedule, 0, 120, 20))


MEASURES = {
    "torch-batch-norm-unbiased-running-variance": lambda framework, fixtures: running_variance(framework, fixtures("offset_digits")),
    "flax-batch-norm-float32-running-statistics": lambda framework, fixtures: running_variance(framework, fixtures("offset_digits")),
    **{name: (lambda framework, fixtures, probe=probe: optimizer_probe(framework, *probe))
       for name, probe in OPTIMIZER_PROBES.items()},
    "torch-softplus-threshold": lambda framework, fixtures: softplus(framework),
    "jax-leaky-relu-derivative-at-zero": lambda framework, fixtures: leaky_relu_derivative(framework),
    "keras-leaky-relu-float32-slope": lambda framework, fixtures: leaky_relu_derivative(framework),
    "tf-selu-derivative-at-zero": lambda framework, fixtures: selu_derivative(framework),
    "keras-gelu-float32-constants": lambda framework, fixtures: gelu(framework),
    "keras-prelu-derivative-at-zero": lambda framework, fixtures: prelu_derivative(framework),
    "flax-prelu-derivative-at-zero": lambda framework, fixtures: prelu_derivative(framework),
    "torch-hardsigmoid-float32-backward": lambda framework, fixtures: hard_sigmoid_derivative(framework),
    "keras-kl-divergence-clip": lambda framework, fixtures: loss_probe(framework, "kl_divergence", fixtures("labelled_digits")),
    **{name: (lambda framework, fixtures, entry=entry: initializer_probe(framework, entry))
       for name, entry in INITIALIZER_PROBES.items()},
    **{name: (lambda framework, fixtures, schedule=schedule: schedule_probe(framework, schedule))
       for name, schedule in SCHEDULE_PROBES.items()},
    "flax-batch-norm-fast-variance": lambda framework, fixtures: batch_norm(framework, fixtures("offset_digits")),
    "torch-batch-norm-cpu-kernel": lambda framework, fixtures: batch_norm(framework, fixtures("offset_digits")),
    "tf-batch-norm-moments": lambda framework, fixtures: batch_norm(framework, fixtures("offset_digits")),
}

CASES = [(d.id, framework, "present") for d in DIFFERENCES if d.id in MEASURES for framework in d.present]
CASES += [(d.id, framework, "absent") for d in DIFFERENCES if d.id in MEASURES for framework in d.absent]


def test_every_difference_has_its_guard():
    assert sorted(MEASURES) == sorted(d.id for d in DIFFERENCES)


@pytest.mark.parametrize("difference, framework, expected", CASES, ids=["-".join(case) for case in CASES])
def test_the_installed_built_in_differs_as_recorded(difference, framework, expected, request):
    entry = BY_ID[difference]
    measured = MEASURES[difference](framework, request.getfixturevalue)
    if expected == "absent":
        assert measured <= ABSENT, f"{difference}: {framework}'s built-in now differs from the catalog by {measured:.2e}"
    else:
        size = entry.present[framework]
        assert size / GUARD_FACTOR <= measured <= size * GUARD_FACTOR, (
            f"{difference}: {framework} measures {measured:.2e}, recorded {size:.1e} ({entry.probe})")
