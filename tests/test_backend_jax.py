"""The JAX backend against the plan, the catalog's formulas and the NumPy float64 oracle, step by step."""

import json

import numpy as np
import pytest
from pydantic import TypeAdapter

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from backends.jax import SUPPORTED  # noqa: E402
from backends.jax import losses as jax_losses  # noqa: E402
from backends.jax import ops  # noqa: E402
from backends.jax.defaults import framework_defaults  # noqa: E402
from backends.jax.activations import ActivationLayer  # noqa: E402
from backends.jax.trainer import Trainer  # noqa: E402
from backends.numpy.model import forward as oracle_forward  # noqa: E402
from backends.numpy.losses import make_loss as oracle_loss  # noqa: E402
from backends.numpy.trainer import Trainer as OracleTrainer  # noqa: E402
from experiments.catalog import ACTIVATIONS, LOSSES, OPTIMIZERS, OUTPUT_ACTIVATIONS, Activation  # noqa: E402
from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE, Linear, Sigmoid, Softmax  # noqa: E402
from experiments.catalog.losses import CategoricalCrossentropy, MeanSquaredError  # noqa: E402
from experiments.spec import build_plan, load_spec, parameter_info, trainable_parameter_count  # noqa: E402
from tests.backend_helpers import assert_steps_match_oracle, error, group_scale, random_weights

PRESETS = ["seed-cnn", "mlp-relu-adam", "seed-mlp-sigmoid", "seed-mlp-relu"]
DTYPES = ["float32", "float64"]

TINY_MLP = ['model.hidden=[{units=12, activation="relu"}]']
TINY_CNN = [  # 'same' conv + BN + leaky_relu + pool 28 -> 14, 'valid' convs, a 3x3 stride-2 'same' pool 5 -> 3, dense + BN
    'model.conv=[{filters=3, kernel_size=3, padding="same", activation="relu", batch_norm={momentum=0.9, epsilon=1e-3},'
    ' post_activation={name="leaky_relu", negative_slope=0.1}, pool={size=2, stride=2, padding="same"}},'
    ' {filters=4, kernel_size=3, padding="valid", activation="tanh", pool={size=2, stride=2, padding="same"}},'
    ' {filters=2, kernel_size=2, padding="valid", activation="sigmoid", pool={size=3, stride=2, padding="same"}}]',
    'model.hidden=[{units=6, activation="relu", batch_norm={momentum=0.8, epsilon=1e-5}}]',
]
# name -> (preset, overrides): each runs three steps against the oracle with a changing rate.
TRAINING_CASES = {
    "sgd": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1}']),
    "sgd-momentum": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1, momentum=0.9}']),
    "sgd-nesterov": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1, momentum=0.9, nesterov=true}']),
    "adam": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7}']),
    "sigmoid-ce-smoothing": ("seed-mlp-sigmoid", ['model.hidden=[{units=7, activation="tanh"}]',
                                                   'loss={name="categorical_crossentropy", label_smoothing=0.1}']),
    "softmax-mse": ("mlp-relu-adam", ['model.hidden=[{units=7, activation={name="leaky_relu", negative_slope=0.2}}]', 'loss="mse"']),
    # SGD here: a bias before a batch norm has a zero gradient up to rounding, which Adam would
    # normalise to an O(lr) step; the Adam formula is checked on the MLP above.
    "cnn-batch-norm": ("seed-cnn", TINY_CNN + ['optimizer={name="sgd", learning_rate=0.1, momentum=0.5}']),
}
LEARNING_RATES = [0.1, 0.03, 0.07]


def make(preset: str, dtype: str, overrides=()) -> tuple[Trainer, object, tuple]:
    spec = load_spec(preset, [*overrides, f'dtype="{dtype}"'])
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    return Trainer(spec, plan, threads=2), spec, plan


def data(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((count, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, count)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_state_leaf_is_spec_dtype(preset, dtype):
    """JAX's trap: a float leaf of the train state (params, batch_stats, optimizer state) promoted or left at the
    default dtype (names, shapes and get_weights' dtype: tests/test_backends.py::test_parameter_count_matches_plan)."""
    trainer, _, _ = make(preset, dtype)
    floats = [leaf for leaf in jax.tree.leaves(trainer._state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert {leaf.dtype for leaf in floats} == {np.dtype(dtype)}, "params, batch_stats and optimizer state are spec.dtype"


LOSS_CASES = [
    (CategoricalCrossentropy(name="categorical_crossentropy"), Softmax(name="softmax")),
    (CategoricalCrossentropy(name="categorical_crossentropy", label_smoothing=0.2), Linear(name="linear")),
    (CategoricalCrossentropy(name="categorical_crossentropy", label_smoothing=0.1), Sigmoid(name="sigmoid")),
    (MeanSquaredError(name="mse"), Softmax(name="softmax")),
    (MeanSquaredError(name="mse"), Sigmoid(name="sigmoid")),
    (MeanSquaredError(name="mse"), Linear(name="linear")),
]


@pytest.mark.parametrize("loss, output", LOSS_CASES, ids=lambda e: getattr(e, "label_smoothing", e.name))
def test_losses_and_their_gradients_match_the_catalog(loss, output):
    rng = np.random.default_rng(3)
    z, y = rng.normal(0.0, 3.0, (6, 10)), np.eye(10)[rng.integers(0, 10, 6)]
    fn = jax_losses.make_loss(loss, output)
    per_example, gradient = jax.jit(lambda z, y: (fn(z, y), jax.grad(lambda z: jnp.mean(fn(z, y)))(z)))(z, y)
    ref_per_example, ref_gradient = oracle_loss(loss, output)(z, y)
    assert per_example.dtype == jnp.float64
    assert error(per_example, ref_per_example) <= 1e-13
    assert error(gradient, ref_gradient) <= 1e-13


@pytest.mark.parametrize("case", TRAINING_CASES)
def test_training_steps_match_the_oracle(case):
    """Three float64 steps, rate changing every step: per-step loss, correct count, every weight and
    running statistic after every step equal the NumPy oracle's (catalog formulas) to 1e-12."""
    preset, overrides = TRAINING_CASES[case]
    trainer, spec, plan = make(preset, "float64", overrides)
    oracle = OracleTrainer(spec, plan, 1)
    x, y = data(12)
    assert_steps_match_oracle(trainer, oracle, plan, random_weights(plan, "float64"), x, y, LEARNING_RATES, case)


MLP_RRELU = ['model.hidden=[{units=12, activation="relu", batch_norm={momentum=0.9, epsilon=1e-3}, dropout=0.25},'
             ' {units=6, activation={name="rrelu", lower=0.1, upper=0.3}}]']
SMALL_CNN = ['model.conv=[{filters=3, kernel_size=3, padding="same", activation="relu", batch_norm={momentum=0.9, epsilon=1e-3},'
             ' pool={size=2, stride=2, padding="same"}, dropout=0.3}]', 'model.hidden=[]']


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_no_recompilation_across_epochs(model):
    """Epochs with new rates, a new order, a partial last batch, evaluation and set_weights compile nothing.

    On CPU the MLP (with dropout and rrelu: per-step keys are data) runs its epochs as a scan and
    the CNN one jitted step per batch."""
    trainer, _, _ = make("mlp-relu-adam", "float32", MLP_RRELU) if model == "mlp" else make("seed-cnn", "float32", SMALL_CNN)
    x, y = data(21)
    trainer.load_training_data(x, y)
    compiles = []

    def listener(event, seconds, **kwargs):
        if "backend_compile" in event:
            compiles.append(kwargs.get("fun_name"))

    rng = np.random.default_rng(0)

    def epoch(rates):
        order = rng.permutation(21)
        trainer.train_epoch([order[:8], order[8:16], order[16:]], rates)  # two full batches, one of 5
        trainer.evaluate(x, y, 7)
        trainer.predict_logits(x[:14], 7)

    epoch(np.array([0.1, 0.1, 0.1]))
    traces = dict(trainer.trace_counts)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        epoch(np.array([0.05, 0.04, 0.03]))
        trainer.set_weights(trainer.get_weights())
        epoch(np.array([1e-3, 1e-4, 0.0]))
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    training = {"train": 2} if trainer._scan else {"step": 2}  # full batches + the partial one
    assert dict(trainer.trace_counts) == traces == {**training, "evaluate": 1, "logits": 1}
    assert compiles == [], f"recompiled: {compiles}"


def test_provenance_records_the_settings_applied():
    """x64 enabled, matmuls at full precision, the threads and XLA flags (two dtypes in one process:
    tests/test_backends.py::test_float32_and_float64_trainers_coexist_in_one_process)."""
    t32, _, _ = make("mlp-relu-adam", "float32", TINY_MLP)
    settings = t32.settings()
    assert settings["jax_enable_x64"] is True and settings["jax_default_matmul_precision"] == "highest"
    assert settings["threads_requested"] == 2 and "xla_flags" in settings
    assert set(t32.versions()) == {"jax", "jaxlib", "flax", "optax"}


# -- the full catalog: activations at their kinks, prelu, rrelu, maxout, clipping (binary tasks: tests/test_backends.py) --

H = 1.0 / 6.0
# case -> (entry, x, y, dy/dx) at the points the catalog pins (kinks, ends, the two gelu forms).
KINKS = {
    "relu": ({"name": "relu"}, [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    "leaky_relu": ({"name": "leaky_relu", "negative_slope": 0.2}, [-1.0, 0.0, 2.0], [-0.2, 0.0, 2.0], [0.2, 0.2, 1.0]),
    "prelu": ({"name": "prelu", "initial_value": 0.3, "per_channel": False}, [-1.0, 0.0, 2.0], [-0.3, 0.0, 2.0], [0.3, 0.3, 1.0]),
    "rrelu-eval": ({"name": "rrelu", "lower": 0.1, "upper": 0.3}, [-1.0, 0.0, 2.0], [-0.2, 0.0, 2.0], [0.2, 0.2, 1.0]),
    "elu": ({"name": "elu", "alpha": 0.5}, [-np.log(2.0), 0.0, 2.0], [-0.25, 0.0, 2.0], [0.25, 0.5, 1.0]),
    "selu": ({"name": "selu"}, [0.0, 1.0], [0.0, SELU_SCALE], [SELU_SCALE * SELU_ALPHA, SELU_SCALE]),
    "softplus": ({"name": "softplus", "beta": 2.0}, [0.0, 400.0, -400.0], [np.log(2.0) / 2.0, 400.0, 0.0], [0.5, 1.0, 0.0]),
    "hard_sigmoid": ({"name": "hard_sigmoid"}, [-4.0, -3.0, 0.0, 3.0, 4.0], [0.0, 0.0, 0.5, 1.0, 1.0], [0.0, 0.0, H, 0.0, 0.0]),
    "silu": ({"name": "silu"}, [0.0], [0.0], [0.5]),
    # exact: x Phi(x); tanh form: 0.5 x (1 + tanh(...)); jax.nn.gelu's default would be the tanh one
    "gelu-none": ({"name": "gelu", "approximate": "none"}, [0.0, 1.0], [0.0, 0.8413447460685429], [0.5, 1.0833154705876864]),
    "gelu-tanh": ({"name": "gelu", "approximate": "tanh"}, [0.0, 1.0], [0.0, 0.8411919906082768], [0.5, 1.0829640838457826]),
    "step": ({"name": "step"}, [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
    "sign": ({"name": "sign"}, [-1.0, 0.0, 2.0], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
}


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_values_and_derivatives_at_the_pinned_points(dtype):
    """The Trainer's ActivationLayer at the catalog's kinks (one jitted function for the whole table)."""
    adapter = TypeAdapter(Activation)
    cases = [(name, adapter.validate_python(entry), np.array(x, dtype)) for name, (entry, x, _, _) in KINKS.items()]

    @jax.jit
    def run(xs):
        out = {}
        for (name, entry, _), x in zip(cases, xs):
            module = ActivationLayer(entry=entry, dtype=np.dtype(dtype))
            variables = module.init(jax.random.key(0), x, train=False)
            y, pullback = jax.vjp(lambda x: module.apply(variables, x, train=False), x)
            out[name] = y, pullback(jnp.ones_like(x))[0]
        return out

    results = run([x for _, _, x in cases])
    tolerance = {"float64": 1e-15, "float32": 1e-6}[dtype]
    for name, (_, _, y, dy) in KINKS.items():
        out, dx = results[name]
        assert out.dtype == dx.dtype == np.dtype(dtype), name
        assert error(out, y) <= tolerance and error(dx, dy) <= tolerance, f"{name} {dtype}: y {out}, dy/dx {dx}"


def test_maxout_groups_consecutive_features_and_routes_ties_to_the_first():
    x = np.array([[1.0, 3.0, 3.0, -1.0, -1.0, -2.0], [0.0, 0.0, 0.0, 5.0, 4.0, 5.0]])  # two groups of 3 per row
    y, dx, _ = ops.activation_vjp({"name": "maxout", "pieces": 3}, x, np.array([[10.0, 20.0], [30.0, 40.0]]), "float64")
    assert np.array_equal(y, x.reshape(2, 2, 3).max(axis=-1))
    assert np.array_equal(dx, [[0.0, 10.0, 0.0, 20.0, 0.0, 0.0], [30.0, 0.0, 0.0, 40.0, 0.0, 0.0]]), "jnp.max would split ties"
    # Training through maxout (Dense(12) -> maxout(4) -> logits (3, 10)): tests/test_catalog_training.py.


def test_prelu_alpha_per_channel_on_images_and_its_gradient():
    rng = np.random.default_rng(0)
    x, cotangent, alpha = rng.normal(size=(2, 3, 3, 4)), rng.normal(size=(2, 3, 3, 4)), np.array([0.1, 0.2, 0.3, 0.4])
    entry = {"name": "prelu", "initial_value": 0.25, "per_channel": True}
    y, dx, dparams = ops.activation_vjp(entry, x, cotangent, "float64", params={"alpha": alpha})
    assert error(y, np.where(x > 0, x, alpha * x)) <= 1e-15
    assert error(dx, cotangent * np.where(x > 0, 1.0, alpha)) <= 1e-15
    assert error(dparams["alpha"], np.sum(cotangent * np.minimum(x, 0.0), axis=(0, 1, 2))) <= 1e-14  # d/dalpha = x where x <= 0
    assert np.array_equal(ops.activation_vjp(entry, x, cotangent, "float32")[2]["alpha"].shape, (4,))


def test_prelu_alpha_is_a_canonical_trained_parameter():
    """alpha (per channel here; shared in the binary-task test): canonical name and shape, initial value
    and dtype, bit-exact round trip, and an SGD step that moves it by -lr dL/dalpha (the derivative by
    central differences of the eval-mode loss, which equals the train-mode one without dropout or BN)."""
    prelu = '{name="prelu", initial_value=0.2, per_channel=true}'
    trainer, _, plan = make("mlp-relu-adam", "float64", [f'model.hidden=[{{units=5, activation={prelu}}}]',
                                                         'optimizer={name="sgd", learning_rate=0.1}'])
    shape = (5,)
    assert parameter_info(plan)["activation_0/alpha"].shape == shape
    assert trainer.parameter_count() == trainable_parameter_count(plan)
    weights = trainer.get_weights()
    assert weights["activation_0/alpha"].dtype == np.float64 and np.all(weights["activation_0/alpha"] == 0.2)
    weights = random_weights(plan, "float64")
    weights["activation_0/alpha"] = np.linspace(0.1, 0.5, shape[0])
    trainer.set_weights(weights)
    assert np.array_equal(trainer.get_weights()["activation_0/alpha"], weights["activation_0/alpha"])
    x, y = data(8)
    trainer.load_training_data(x, y)

    def loss(alpha):
        trainer.set_weights({**weights, "activation_0/alpha": alpha})
        return trainer.evaluate(x, y, 8)[0]

    h, alpha = 1e-5, weights["activation_0/alpha"]
    gradient = np.array([(loss(alpha + h * e) - loss(alpha - h * e)) / (2 * h) for e in np.eye(shape[0])])
    trainer.set_weights(weights)
    trainer.train_epoch([np.arange(8)], np.array([0.1]))
    step = trainer.get_weights()["activation_0/alpha"] - alpha
    assert np.max(np.abs(gradient)) > 1e-3, "the test needs negative pre-activations"
    assert error(step, -0.1 * gradient) <= 1e-8


def test_rrelu_draws_fresh_slopes_in_training_and_uses_the_mean_in_eval():
    """Training: one slope U[lower, upper) per element from the step's key (here the seed); eval: (l + u) / 2."""
    entry = {"name": "rrelu", "lower": 0.1, "upper": 0.3}
    x = -np.ones((4, 50))
    slopes = [ops.activation_vjp(entry, x, np.ones_like(x), "float32", training=True, seed=seed)[1] for seed in (0, 1)]
    for s in slopes:
        assert s.dtype == np.float32 and 0.1 <= s.min() and s.max() < 0.3, "U[lower, upper)"
        assert len(np.unique(s)) > 0.99 * s.size, "one slope per element"
        assert abs(s.mean() - 0.2) < 0.01
    assert np.mean(slopes[0] == slopes[1]) < 0.01, "a new key gives new slopes"
    y, dx, _ = ops.activation_vjp(entry, x, np.ones_like(x), "float64", training=False)
    assert np.all(dx == 0.2) and np.all(y == -0.2)
    # In the Trainer: test_zero_learning_rate_keeps_weights_and_noise_changes_per_step.


def test_clip_global_norm_bounds_the_trainer_step():
    """SGD with clip c far below ||g||: the step -lr g min(1, c / ||g||) has global norm exactly lr c
    over every trainable tensor (the factor itself is checked in the optimizer test below)."""
    norm, rate = 1e-3, 0.5
    optimizer = f'optimizer={{name="sgd", learning_rate={rate}, clip_global_norm={norm}}}'
    trainer, _, plan = make("mlp-relu-adam", "float64", TINY_MLP + [optimizer])
    weights = random_weights(plan, "float64")
    trainer.set_weights(weights)
    x, y = data(8)
    trainer.load_training_data(x, y)
    trainer.train_epoch([np.arange(8)], np.array([rate]))
    after = trainer.get_weights()
    step = np.sqrt(sum(np.sum((after[name] - weights[name]) ** 2) for name in weights))
    assert abs(step / (rate * norm) - 1.0) <= 1e-9


OPTIMIZER_EXAMPLES = [  # epsilons large enough that its place (inside or outside a root) shows in float32
    {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
    {"name": "momentum", "learning_rate": 0.1, "momentum": 0.9},
    {"name": "nesterov", "learning_rate": 0.1, "momentum": 0.9, "clip_global_norm": 1.0},
    {"name": "adagrad", "learning_rate": 0.1, "initial_accumulator_value": 0.1, "epsilon": 0.1},
    {"name": "rmsprop", "learning_rate": 0.1, "rho": 0.9, "epsilon": 0.1, "momentum": 0.5, "centered": True},
    {"name": "adam", "learning_rate": 0.1, "epsilon": 0.1},
    {"name": "adamw", "learning_rate": 0.1, "epsilon": 0.1, "weight_decay": 0.3},
    {"name": "adadelta", "learning_rate": 1.0, "rho": 0.9, "epsilon": 0.01},
    {"name": "adamax", "learning_rate": 0.1, "epsilon": 0.1},
    {"name": "nadam", "learning_rate": 0.1, "epsilon": 0.1, "momentum_decay": 0.004},
]


def test_every_optimizer_keeps_the_dtype_and_its_first_step_follows_the_catalog():
    """Every catalog optimizer through ops.optimizer_steps (the Trainer's transform and update), in
    float32: the dtype is kept, and the first step from zero state has a closed form (m_1 = (1 - b1) g,
    v_1 = (1 - b2) g^2, ...) that tells apart epsilon placements and where lr and decay enter."""
    assert {example["name"] for example in OPTIMIZER_EXAMPLES} == set(OPTIMIZERS)
    rng = np.random.default_rng(2)
    p = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=2).astype(np.float32)}
    g = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=2).astype(np.float32)}
    g_norm = np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in g.values()))
    for example in OPTIMIZER_EXAMPLES:
        steps = ops.optimizer_steps(example, p, [g, g], [0.1, 0.05], "float32")
        assert len(steps) == 2 and all(v.dtype == np.float32 for step in steps for v in step.values()), example
        clip = min(1.0, example.get("clip_global_norm", np.inf) / g_norm)
        for name in p:
            p64, g64 = p[name].astype(np.float64), g[name].astype(np.float64) * clip
            expected = p64 - 0.1 * FIRST_STEP[example["name"]](example, g64, p64)
            assert error(steps[0][name], expected) <= 1e-6, f"{example['name']} {name}: {error(steps[0][name], expected):.1e}"
        assert not np.array_equal(steps[1]["w"], steps[0]["w"])


def _nadam_first(o, g, p):
    b1, psi = 0.9, o["momentum_decay"]
    mu1, mu2 = b1 * (1 - 0.5 * 0.96**psi), b1 * (1 - 0.5 * 0.96 ** (2 * psi))  # P_1 = mu1
    denominator = np.abs(g) + o["epsilon"]  # sqrt(v_1 / (1 - b2)) = |g|
    return (1 - mu1) / (1 - mu1) * g / denominator + mu2 / (1 - mu1 * mu2) * (1 - b1) * g / denominator


FIRST_STEP = {  # d_1 of each optimizer from zero state, g the (clipped) gradient
    "sgd": lambda o, g, p: g + o["momentum"] * g,
    "momentum": lambda o, g, p: g,
    "nesterov": lambda o, g, p: g + o["momentum"] * g,
    "adagrad": lambda o, g, p: g / (np.sqrt(o["initial_accumulator_value"] + g * g) + o["epsilon"]),
    "rmsprop": lambda o, g, p: g / (np.sqrt(0.1 * g * g - (0.1 * g) ** 2) + o["epsilon"]),  # centered, rho 0.9
    "adam": lambda o, g, p: g / (np.abs(g) + o["epsilon"]),
    "adamw": lambda o, g, p: g / (np.abs(g) + o["epsilon"]) + o["weight_decay"] * p,
    "adadelta": lambda o, g, p: np.sqrt(o["epsilon"]) / np.sqrt(0.1 * g * g + o["epsilon"]) * g,
    "adamax": lambda o, g, p: g / (np.abs(g) + o["epsilon"]),
    "nadam": _nadam_first,
}


def test_framework_defaults_are_read_from_the_installed_packages():
    """Rows in catalog terms (entries of the catalog or layers of the plan), JSON-ready, each naming its source."""
    rows = framework_defaults()
    assert json.loads(json.dumps(rows)) == rows
    assert rows and all(set(row) == {"entry", "parameter", "value", "source"} for row in rows)
    names = set(ACTIVATIONS) | set(OUTPUT_ACTIVATIONS) | set(LOSSES) | set(OPTIMIZERS) | SUPPORTED["layers"]
    assert {row["entry"] for row in rows} <= names
    assert {row["entry"] for row in rows} >= set(OPTIMIZERS) - {"momentum", "nesterov"}  # optax has no such aliases
    assert all(row["source"].startswith(("jax.", "flax.linen.", "optax.", "none:")) for row in rows)
    gelu = {row["source"]: row["value"] for row in rows if row["entry"] == "gelu"}
    assert len(gelu) == 2 and set(gelu.values()) <= {"tanh", "none"} and all("(approximate" in source for source in gelu)


# -- the parity ladder's hooks: layer outputs, gradients with injected noise, optimizer state -----------

NOISY_MLP = ['model.hidden=[{units=12, activation={name="rrelu", lower=0.1, upper=0.3}, dropout=0.25}, {units=6, activation="tanh"}]']
NOISY_CNN = ['model.conv=[{filters=3, kernel_size=3, padding="same", activation="relu", batch_norm={momentum=0.9, epsilon=1e-3},'
             ' post_activation={name="leaky_relu", negative_slope=0.1}, pool={size=2, stride=2, padding="same"}, dropout=0.3}]',
             'model.hidden=[{units=8, activation="relu", batch_norm={momentum=0.8, epsilon=1e-3}, dropout=0.2}]']
LADDER_CASES = {  # name -> (preset, overrides)
    "mlp-relu-adam": ("mlp-relu-adam", []),
    "seed-cnn": ("seed-cnn", NOISY_CNN),  # dropout after conv and dense blocks, batch norm on both
    # the whole seed CNN: three pools (28 -> 14 -> 7 -> 4, the last padded with -inf), each after a fused batch norm
    # and leaky_relu, ties from dropped inputs; a pool routing its gradient by comparing the windows with a
    # separately computed maximum sends ~20% of the second pool's windows astray here (XLA recomputes the producer)
    "seed-cnn-whole": ("seed-cnn", []),
    "mlp-rrelu-bn": ("mlp-relu-adam", MLP_RRELU),  # batch norm, dropout and rrelu slopes
}



def twins(preset: str, overrides=()):
    """A float64 JAX trainer holding the oracle's initial weights, and the oracle."""
    trainer, spec, plan = make(preset, "float64", overrides)
    oracle = OracleTrainer(spec, plan, 1)
    trainer.set_weights(oracle.get_weights())
    return trainer, oracle, plan


@pytest.mark.parametrize("case", LADDER_CASES)
def test_layer_outputs_and_gradients_with_injected_noise_match_the_oracle(case):
    """layer_outputs against the oracle's forward per layer (1e-12 normwise); loss_and_gradients with the
    oracle's own training noise against its loss_and_gradients (1e-10), changing neither weights nor
    batch statistics nor the optimizer state."""
    trainer, oracle, plan = twins(*LADDER_CASES[case])
    trainer.set_weights(random_weights(plan, "float64"))  # non-trivial running statistics for eval mode
    oracle.set_weights(trainer.get_weights())
    x, y = data(6)
    outputs, reference = trainer.layer_outputs(x), oracle_forward(plan, oracle.get_weights(), x, outputs=True)[1]
    assert list(outputs) == [layer.name for layer in plan]
    for name, want in reference.items():
        assert outputs[name].dtype == np.float64 and error(outputs[name], want) <= 1e-12, f"{case} {name}"
    before = trainer.get_weights()
    noise = oracle.training_noise(len(x))
    assert bool(noise) == (case != "mlp-relu-adam")
    loss, grads = trainer.loss_and_gradients(x, y, noise)
    want_loss, want_grads = oracle.loss_and_gradients(x, y, noise)
    assert abs(loss - want_loss) <= 1e-10 * abs(want_loss)
    assert set(grads) == set(want_grads) == {n for n, i in parameter_info(plan).items() if i.trainable}
    scale = group_scale(want_grads.values())  # a bias before a batch norm has gradient 0 up to rounding
    for name, want in want_grads.items():
        assert error(grads[name], want, scale) <= 1e-10, f"{case} {name}: {error(grads[name], want, scale):.1e}"
    after = trainer.get_weights()
    assert all(np.array_equal(after[name], before[name]) for name in before), "weights or running statistics moved"
    assert trainer.optimizer_state() == {}
    if case == "mlp-rrelu-bn":  # the framework's own draws: the key the next step would use, nothing consumed
        drawn = trainer.loss_and_gradients(x, y)
        assert drawn[0] == trainer.loss_and_gradients(x, y)[0] and np.isfinite(drawn[0]) and drawn[0] != loss
        with pytest.raises(ValueError, match="noisy layers"):
            trainer.loss_and_gradients(x, y, {})


STATE_CASES = {  # one noisy step of each optimizer with state: weights and used slots against the oracle
    "sgd-momentum": '{name="sgd", learning_rate=0.1, momentum=0.9}',
    "adam": '{name="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7}',
    "rmsprop-centered-momentum": '{name="rmsprop", learning_rate=0.01, rho=0.8, epsilon=1e-3, momentum=0.5, centered=true}',
    "adagrad": '{name="adagrad", learning_rate=0.05, initial_accumulator_value=0.1, epsilon=1e-7}',
    "adadelta": '{name="adadelta", learning_rate=1.0, rho=0.9, epsilon=1e-4}',
    "adamax": '{name="adamax", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7}',
    "nadam": '{name="nadam", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7, momentum_decay=0.004}',
}


@pytest.mark.parametrize("case", STATE_CASES)
def test_a_noisy_step_matches_the_oracle_weights_and_optimizer_state(case):
    """After one train_epoch step with injected dropout masks and rrelu slopes, every weight and every
    slot the formula uses (the oracle's optimizer_state: backends/numpy/optimizers.py) equal the oracle's (no batch norm:
    a bias before one has a zero gradient up to rounding, which adaptive methods amplify)."""
    trainer, oracle, plan = twins("mlp-relu-adam", [*NOISY_MLP, f"optimizer={STATE_CASES[case]}"])
    x, y = data(8)
    trainer.load_training_data(x, y)
    oracle.load_training_data(x, y)
    assert trainer.optimizer_state() == {}
    noise = [oracle.training_noise(8)]
    stats = trainer.train_epoch([np.arange(8)], np.array([0.05]), noise=noise)
    expected = oracle.train_epoch([np.arange(8)], np.array([0.05]), noise=noise)
    assert error(stats.loss, expected.loss) <= 1e-12 and np.array_equal(stats.correct, expected.correct)
    got, want = trainer.get_weights(), oracle.get_weights()
    scale = group_scale(want.values())
    for name in want:
        assert error(got[name], want[name], scale) <= 1e-12, f"{case} {name}: {error(got[name], want[name], scale):.1e}"
    state, reference_state = trainer.optimizer_state(), oracle.optimizer_state()
    slot_scale = {k: group_scale(v[k] for v in reference_state.values() if k in v) for v in reference_state.values() for k in v}
    assert set(state) == set(reference_state)
    for name, values in state.items():
        assert set(values) == set(reference_state[name]), f"{case} {name}: slots {sorted(values)}"
        for slot, value in values.items():
            reference = reference_state[name][slot]
            assert value.dtype == np.float64 and error(value, reference, slot_scale[slot]) <= 1e-12, f"{case} {name}/{slot}"
            assert np.any(value != 0.0), f"{case} {name}/{slot} is all zero"


@pytest.mark.parametrize("case", ["seed-cnn", "mlp-rrelu"])
def test_three_noisy_steps_match_the_oracle_and_compile_once(case):
    """One epoch of three steps (the last batch partial) with injected noise: per-step loss, every weight,
    running statistic and optimizer slot equal the oracle's to 1e-9 (Adam; the seed CNN steps batch by
    batch on CPU, the MLP scans); a second noisy epoch compiles nothing (the plain path:
    test_no_recompilation_across_epochs)."""
    preset, overrides = ("seed-cnn", NOISY_CNN) if case == "seed-cnn" else ("mlp-relu-adam", NOISY_MLP)
    trainer, oracle, plan = twins(preset, [*overrides, 'optimizer={name="adam", learning_rate=0.01, epsilon=1e-7}'])
    x, y = data(21)
    trainer.load_training_data(x, y)
    oracle.load_training_data(x, y)
    batches, rates = [np.arange(8), np.arange(13, 21), np.arange(3, 8)], np.array([0.01, 0.005, 0.02])
    noise = [oracle.training_noise(len(batch)) for batch in batches]
    stats = trainer.train_epoch(batches, rates, noise=noise)
    expected = oracle.train_epoch(batches, rates, noise=noise)
    assert error(stats.loss, expected.loss) <= 1e-9 and np.array_equal(stats.correct, expected.correct)
    got, want = trainer.get_weights(), oracle.get_weights()
    scale = group_scale(want.values())
    for name in want:
        assert error(got[name], want[name], scale) <= 1e-9, f"{case} {name}: {error(got[name], want[name], scale):.1e}"
    state, reference_state = trainer.optimizer_state(), oracle.optimizer_state()
    slot_scale = {k: group_scale(v[k] for v in reference_state.values() if k in v) for v in reference_state.values() for k in v}
    assert {n: set(v) for n, v in state.items()} == {n: set(v) for n, v in reference_state.items()}
    for name, values in state.items():
        for slot, value in values.items():
            assert error(value, reference_state[name][slot], slot_scale[slot]) <= 1e-9, f"{case} {name}/{slot}"
    traces, compiles = dict(trainer.trace_counts), []

    def listener(event, seconds, **kwargs):
        if "backend_compile" in event:
            compiles.append(kwargs.get("fun_name"))

    order = [1, 0, 2]
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        trainer.train_epoch([batches[i] for i in order], rates / 2, noise=[noise[i] for i in order])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert dict(trainer.trace_counts) == traces == {"step" if case == "seed-cnn" else "train": 2}
    assert compiles == [], f"recompiled: {compiles}"
