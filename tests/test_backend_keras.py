"""Keras (TensorFlow) backend: structure, dtypes, forward, losses, optimizers, BatchNorm and compilation checks."""

import math
import typing

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from backends.keras import SUPPORTED  # noqa: E402
from backends.keras.trainer import Trainer  # noqa: E402
from backends.keras.framework import tf  # noqa: E402
from backends.keras.optimizers import make_optimizer  # noqa: E402
from backends.numpy.forward import forward  # noqa: E402
from experiments.catalog import ACTIVATIONS, LOSSES, OPTIMIZERS, OUTPUT_ACTIVATIONS  # noqa: E402
from experiments.catalog.initializers import Distribution  # noqa: E402
from experiments.catalog.optimizers import Adam, Sgd  # noqa: E402
from experiments.spec import build_plan, load_spec, parameter_info, trainable_parameter_count  # noqa: E402
from experiments.spec import plan as P  # noqa: E402

PRESETS = ("mlp-relu-adam", "seed-cnn", "seed-mlp-relu", "seed-mlp-sigmoid")
DTYPES = ("float32", "float64")
THREADS = 2
# Relative to max(|reference|, 1): float64 agrees to rounding; float32 must be visibly float32.
TOL_FLOAT64 = 1e-12
TOL_FLOAT32 = 1e-4
FLOAT32_FLOOR = 1e-10  # a float32 model further from the float64 oracle than this really computes in float32


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max |actual - reference| / max(|reference|, 1), elementwise."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, f"shape {actual.shape} != reference {reference.shape}"
    return float(np.max(np.abs(actual - reference) / np.maximum(np.abs(reference), 1.0)))


def make(preset: str, dtype: str = "float64", overrides=()) -> tuple:
    """(spec, plan, Trainer) of a preset with overrides."""
    spec = load_spec(preset, [f"dtype={dtype}", *overrides])
    plan = build_plan(spec.model, (28, 28, 1), 10)
    return spec, plan, Trainer(spec, plan, threads=THREADS)


def random_weights(plan, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random canonical weights: kernels ~ N(0, 1/fan_in), biases and BN statistics nonzero."""
    weights = {}
    for name, info in parameter_info(plan).items():
        kind = name.rsplit("/", 1)[1]
        if kind == "kernel":
            values = rng.normal(0.0, 1.0 / math.sqrt(P.fans(info.shape)[0]), info.shape)
        elif kind == "variance":
            values = rng.uniform(0.5, 1.5, info.shape)
        elif kind == "scale":
            values = 1.0 + 0.1 * rng.normal(size=info.shape)
        else:  # bias, offset, mean
            values = 0.1 * rng.normal(size=info.shape)
        weights[name] = values
    return weights


def random_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, 28, 28, 1) in [0, 1], one-hot y (n, 10)) in float64."""
    return rng.random((n, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, n)]


@pytest.fixture(scope="module")
def trainers():
    """One trainer per preset x dtype, float32 and float64 built alternately in this one process."""
    return {(preset, dtype): make(preset, dtype) for preset in PRESETS for dtype in DTYPES}


# Declared support ----------------------------------------------------------------------------------


def test_supported_covers_the_catalog():
    assert SUPPORTED["activations"] == set(ACTIVATIONS)
    assert SUPPORTED["output_activations"] == set(OUTPUT_ACTIVATIONS)
    assert SUPPORTED["losses"] == set(LOSSES)
    assert SUPPORTED["optimizers"] == set(OPTIMIZERS)
    assert SUPPORTED["initializer_distributions"] == set(typing.get_args(Distribution.__annotations__["kind"]))


# Structure and weights -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_parameters_match_the_plan(trainers, preset, dtype):
    spec, plan, trainer = trainers[preset, dtype]
    assert trainer.parameter_count() == trainable_parameter_count(plan)
    weights = trainer.get_weights()
    assert {k: v.shape for k, v in weights.items()} == {k: p.shape for k, p in parameter_info(plan).items()}
    assert all(v.dtype == np.dtype(dtype) for v in weights.values())
    float_variables = [v for v in trainer.model.weights if "float" in str(v.dtype)]
    assert float_variables and all(str(v.dtype) == dtype for v in float_variables), [
        (v.path, v.dtype) for v in float_variables
    ]
    assert all(layer.compute_dtype == dtype for layer in trainer.model.layers)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_set_get_round_trip_is_bit_exact(trainers, preset, dtype):
    spec, plan, trainer = trainers[preset, dtype]
    weights = {k: v.astype(dtype) for k, v in random_weights(plan, np.random.default_rng(1)).items()}
    trainer.set_weights(weights)
    back = trainer.get_weights()
    assert back.keys() == weights.keys()
    for name, values in weights.items():
        np.testing.assert_array_equal(back[name], values, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_bad_set_weights_raises_before_changing_anything(trainers, preset, dtype):
    spec, plan, trainer = trainers[preset, dtype]
    before = trainer.get_weights()
    bad = {k: v + 1.0 for k, v in before.items()}
    last = list(bad)[-1]
    wrong_shape = {**bad, last: np.zeros(bad[last].shape + (1,))}
    missing = {k: v for k, v in bad.items() if k != last}
    unknown = {**bad, "nope/kernel": np.zeros(3)}
    for case in (wrong_shape, missing, unknown):
        with pytest.raises(ValueError):
            trainer.set_weights(case)
        after = trainer.get_weights()
        for name in before:
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)


# Forward and loss against the NumPy oracle ---------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_forward_matches_numpy_reference(trainers, preset, dtype):
    spec, plan, trainer = trainers[preset, dtype]
    rng = np.random.default_rng(2)
    weights = random_weights(plan, rng)
    trainer.set_weights(weights)
    if dtype == "float32":  # the oracle sees exactly the float32 weights
        weights = {k: v.astype(np.float32) for k, v in weights.items()}
    x, _ = random_data(6, rng)
    x = x.astype(dtype)
    logits = trainer.predict_logits(x, batch_size=4)
    assert logits.dtype == np.dtype(dtype)
    error = relative_error(logits, forward(plan, weights, x))
    if dtype == "float64":
        assert error <= TOL_FLOAT64, f"keras float64 vs numpy: relative error {error:.3g} > {TOL_FLOAT64}"
    else:
        assert FLOAT32_FLOOR < error <= TOL_FLOAT32, f"keras float32 vs numpy: relative error {error:.3g}"


def test_float32_and_float64_trainers_coexist_in_one_process():
    """float32, float64, float32 again: each computes in its own dtype (no process-global floatx)."""
    overrides = ["model.hidden=[{units=64, activation='tanh'}]"]
    rng = np.random.default_rng(11)
    x, _ = random_data(5, rng)
    built = [make("mlp-relu-adam", dtype, overrides) for dtype in ("float32", "float64", "float32")]
    weights = random_weights(built[0][1], rng)
    for spec, plan, trainer in built:
        trainer.set_weights(weights)
        exact = {k: v.astype(spec.dtype) for k, v in weights.items()}
        error = relative_error(trainer.predict_logits(x.astype(spec.dtype), 5), forward(plan, exact, x.astype(spec.dtype)))
        if spec.dtype == "float64":
            assert error <= TOL_FLOAT64, f"keras float64 next to float32 trainers: relative error {error:.3g}"
        else:
            assert FLOAT32_FLOOR < error <= TOL_FLOAT32, f"keras float32 next to a float64 trainer: relative error {error:.3g}"


def numpy_loss(spec, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample loss of the catalog's formulas in NumPy float64."""
    out = spec.model.output_activation.name
    if spec.loss.name == "categorical_crossentropy":
        eps = spec.loss.label_smoothing
        y = (1 - eps) * y + eps / y.shape[1]
        if out == "sigmoid":
            log_sigmoid = -np.logaddexp(0.0, -logits)
            log_p = log_sigmoid - np.log(np.sum(np.exp(log_sigmoid), axis=1, keepdims=True))
        else:
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        return -np.sum(y * log_p, axis=1)
    if out == "softmax":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        a = e / e.sum(axis=1, keepdims=True)
    elif out == "sigmoid":
        a = 1.0 / (1.0 + np.exp(-logits))
    else:
        a = logits
    return np.mean((a - y) ** 2, axis=1)


LOSS_CASES = {
    "softmax-ce": ("mlp-relu-adam", []),
    "sigmoid-ce": ("seed-mlp-sigmoid", []),
    "linear-ce-smoothed": ("mlp-relu-adam", ["model.output_activation=linear", "loss.label_smoothing=0.1"]),
    "sigmoid-ce-smoothed": ("seed-mlp-sigmoid", ["loss.label_smoothing=0.2"]),
    "softmax-mse": ("mlp-relu-adam", ["loss=mse"]),
    "sigmoid-mse": ("mlp-relu-adam", ["loss=mse", "model.output_activation=sigmoid"]),
    "linear-mse": ("mlp-relu-adam", ["loss=mse", "model.output_activation=linear"]),
}


@pytest.mark.parametrize("case", LOSS_CASES)
def test_evaluate_loss_matches_catalog_formula(case):
    preset, overrides = LOSS_CASES[case]
    spec, plan, trainer = make(preset, "float64", overrides)
    rng = np.random.default_rng(3)
    weights = {k: 3.0 * v for k, v in random_weights(plan, rng).items()}  # larger logits
    trainer.set_weights(weights)
    x, y = random_data(10, rng)
    logits = forward(plan, weights, x)
    loss, accuracy = trainer.evaluate(x, y, batch_size=4)
    expected = float(np.mean(numpy_loss(spec, logits, y)))
    assert abs(loss - expected) <= TOL_FLOAT64 * max(abs(expected), 1.0), f"{case}: keras {loss!r} vs numpy {expected!r}"
    assert accuracy == np.mean(np.argmax(logits, 1) == np.argmax(y, 1))


# Initialisers --------------------------------------------------------------------------------------

INIT_CASES = {
    "truncated_normal": "{name='truncated_normal', mean=0.5, stddev=0.1}",
    "normal": "{name='normal', mean=-0.2, stddev=0.05}",
    "uniform": "{name='uniform', minval=-0.3, maxval=0.1}",
    "constant": "{name='constant', value=0.25}",
}


@pytest.mark.parametrize("kind", INIT_CASES)
def test_initialiser_draws_follow_the_distribution(kind):
    spec, plan, trainer = make("mlp-relu-adam", "float64", [f"model.kernel_init={INIT_CASES[kind]}", "model.bias_init={name='constant', value=0.125}"])
    kernel = trainer.get_weights()["dense_0/kernel"].ravel()  # 200,704 draws
    np.testing.assert_array_equal(trainer.get_weights()["dense_0/bias"], 0.125)
    if kind == "truncated_normal":  # cut at mean +- 2 stddev, not rescaled
        assert kernel.min() >= 0.5 - 0.2 and kernel.max() <= 0.5 + 0.2
        assert abs(kernel.std() / 0.1 - 0.87962566103423978) < 0.01
    elif kind == "normal":
        assert abs(kernel.mean() + 0.2) < 0.001 and abs(kernel.std() / 0.05 - 1.0) < 0.01
        assert np.any(np.abs(kernel + 0.2) > 4 * 0.05)
    elif kind == "uniform":
        assert kernel.min() >= -0.3 and kernel.max() < 0.1 and abs(kernel.mean() + 0.1) < 0.001
    else:
        np.testing.assert_array_equal(kernel, 0.25)
    # The draw is seeded from spec.seed: same seed, same weights; other layers draw other values.
    _, _, again = make("mlp-relu-adam", "float64", [f"model.kernel_init={INIT_CASES[kind]}"])
    np.testing.assert_array_equal(again.get_weights()["dense_0/kernel"].ravel(), kernel)


def test_seed_changes_the_initial_weights():
    first = make("mlp-relu-adam", "float32")[2].get_weights()["dense_0/kernel"]
    other = make("mlp-relu-adam", "float32", ["seed=1"])[2].get_weights()["dense_0/kernel"]
    assert not np.array_equal(first, other)


# Optimizers ----------------------------------------------------------------------------------------


def gradients(trainer, weights, x, y) -> dict[str, np.ndarray]:
    """d(batch mean loss)/d(weights) in train mode, by canonical name (models without dropout/BN)."""
    trainer.set_weights(weights)
    names = [n for n, p in parameter_info(trainer.plan).items() if p.trainable]
    variables = [trainer._variables[n] for n in names]
    with tf.GradientTape() as tape:
        per_sample, _ = trainer._batch_loss(tf.constant(x), tf.constant(y), training=True)
        loss = tf.reduce_mean(per_sample)
    return {n: g.numpy() for n, g in zip(names, tape.gradient(loss, variables))}


def numpy_step(entry, state: dict, weights: dict, grads: dict, lr: float, t: int) -> dict:
    """One step of the catalog formula (optimizers docstrings) in NumPy float64; updates `state`."""
    new = dict(weights)
    for name, g in grads.items():
        p = weights[name]
        if entry.name == "sgd":
            if entry.momentum:
                b = entry.momentum * state.get(name, 0.0) + g
                state[name] = b
                d = g + entry.momentum * b if entry.nesterov else b
            else:
                d = g
            new[name] = p - lr * d
        else:
            m = entry.beta_1 * state.get(("m", name), 0.0) + (1 - entry.beta_1) * g
            v = entry.beta_2 * state.get(("v", name), 0.0) + (1 - entry.beta_2) * g * g
            state["m", name], state["v", name] = m, v
            m_hat, v_hat = m / (1 - entry.beta_1**t), v / (1 - entry.beta_2**t)
            new[name] = p - lr * m_hat / (np.sqrt(v_hat) + entry.epsilon)
    return new


OPTIMIZER_CASES = {
    "adam": "{name='adam', learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-8}",
    "sgd": "{name='sgd', learning_rate=0.1}",
    "sgd-momentum": "{name='sgd', learning_rate=0.1, momentum=0.9}",
    "sgd-nesterov": "{name='sgd', learning_rate=0.1, momentum=0.9, nesterov=true}",
}
RATES = np.array([0.05, 0.02, 0.03])  # a changing rate: Keras' SGD would fold it into its buffer


@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_optimizer_steps_match_catalog_formula(case):
    """Three steps (Adam t = 1..3, changing lr) in one epoch equal the NumPy formula, step by step."""
    overrides = [f"optimizer={OPTIMIZER_CASES[case]}", "model.hidden=[{units=16, activation='tanh'}]"]
    spec, plan, trainer = make("mlp-relu-adam", "float64", overrides)
    _, _, oracle = make("mlp-relu-adam", "float64", overrides)  # computes gradients at the NumPy weights
    rng = np.random.default_rng(4)
    weights = random_weights(plan, rng)
    x, y = random_data(24, rng)
    batches = [np.arange(0, 8), np.arange(8, 16), np.arange(16, 21)]  # the last one partial
    trainer.set_weights(weights)
    trainer.load_training_data(x, y)
    references, state = [], {}
    for t, (batch, lr) in enumerate(zip(batches, RATES), start=1):
        start = weights
        weights = numpy_step(spec.optimizer, state, weights, gradients(oracle, weights, x[batch], y[batch]), lr, t)
        references.append((start, weights))
    trainer.train_epoch(batches, RATES)
    start, expected = references[-1]
    actual = trainer.get_weights()
    for name in expected:
        update, reference_update = actual[name] - start[name], expected[name] - start[name]
        error = np.max(np.abs(update - reference_update)) / np.max(np.abs(reference_update))
        assert error <= 1e-10, f"{case} {name}: step-3 update differs from the catalog formula by {error:.3g} (relative)"
        assert relative_error(actual[name], expected[name]) <= TOL_FLOAT64, name


@pytest.mark.parametrize("case", ["adam", "sgd-momentum"])
def test_optimizer_update_in_isolation(case):
    """The optimizer class alone, on float64 variables with given gradients, steps 1..3."""
    if case == "adam":
        entry = Adam(name="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-8)
    else:
        entry = Sgd(name="sgd", learning_rate=0.1, momentum=0.9)
    rng = np.random.default_rng(5)
    values = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(4,))}
    variables = [tf.Variable(v) for v in values.values()]
    optimizer = make_optimizer(entry)
    optimizer.build(variables)
    state, weights = {}, dict(values)
    for t, lr in enumerate(RATES, start=1):
        grads = {k: 1e-3 * rng.normal(size=v.shape) for k, v in values.items()}
        optimizer.rate.assign(lr)
        optimizer.apply([tf.constant(g) for g in grads.values()], variables)
        weights = numpy_step(entry, state, weights, grads, lr, t)
        for variable, name in zip(variables, weights):
            assert relative_error(variable.numpy(), weights[name]) <= TOL_FLOAT64, f"{case} step {t} {name}"


@pytest.mark.parametrize("preset", ["mlp-relu-adam", "seed-cnn"])
def test_zero_learning_rate_leaves_parameters_unchanged(preset):
    spec, plan, trainer = make(preset, "float32")
    rng = np.random.default_rng(6)
    x, y = random_data(20, rng)
    trainer.load_training_data(x, y)
    before = trainer.get_weights()
    stats = trainer.train_epoch([np.arange(8), np.arange(8, 16), np.arange(12, 20)], np.zeros(3))
    assert stats.loss.shape == (3,) and stats.correct.dtype == np.int64
    after = trainer.get_weights()
    for name, info in parameter_info(plan).items():
        if info.trainable:
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
        elif name.endswith("/mean"):
            assert not np.array_equal(after[name], before[name]), f"{name}: running mean did not update in train mode"


# BatchNorm -----------------------------------------------------------------------------------------


MLP_BN_DROPOUT = ["model.hidden=[{units=24, activation='relu', batch_norm={momentum=0.9, epsilon=1e-3}, dropout=0.25}, {units=16, activation='tanh', dropout=0.5}]"]
BN_CASES = {"seed-cnn": ("seed-cnn", []), "mlp-bn-dropout": ("mlp-relu-adam", MLP_BN_DROPOUT)}


@pytest.mark.parametrize("case", BN_CASES)
def test_batch_norm_running_statistics_follow_the_formula(case):
    """After one step, batch_norm_0's statistics are m r + (1 - m) stat, with the biased batch variance."""
    preset, overrides = BN_CASES[case]
    spec, plan, trainer = make(preset, "float64", overrides)
    rng = np.random.default_rng(7)
    weights = random_weights(plan, rng)
    trainer.set_weights(weights)
    x, y = random_data(12, rng)
    trainer.load_training_data(x, y)
    batch = np.array([3, 1, 4, 10, 5, 9, 2, 6])
    trainer.train_epoch([batch], np.array([1e-3]))
    names = [layer.name for layer in plan]
    position = names.index("batch_norm_0")
    assert names[position - 1] == "activation_0" and "dropout" not in " ".join(names[:position])  # no dropout before it
    _, outputs = forward(plan, weights, x[batch], outputs=True)
    inputs = outputs["activation_0"]  # (N, ..., C): the same in train and eval mode before the first BN
    axes = tuple(range(inputs.ndim - 1))
    m = plan[position].momentum
    expected_mean = m * weights["batch_norm_0/mean"] + (1 - m) * inputs.mean(axis=axes)
    expected_variance = m * weights["batch_norm_0/variance"] + (1 - m) * inputs.var(axis=axes)  # biased
    after = trainer.get_weights()
    assert relative_error(after["batch_norm_0/mean"], expected_mean) <= TOL_FLOAT64
    assert relative_error(after["batch_norm_0/variance"], expected_variance) <= TOL_FLOAT64


# Compilation, determinism, threads -----------------------------------------------------------------


RETRACE_CASES = {  # a conv plan runs its step as a plain tf.function, a dense plan XLA-compiles it
    "cnn-tf-function": ("seed-cnn", ["model.conv=[{filters=2, kernel_size=3, padding='valid', activation='relu'}]", "model.hidden=[]"]),
    "mlp-xla": ("seed-mlp-sigmoid", ["model.hidden=[{units=32, activation='sigmoid'}]"]),
}


@pytest.mark.parametrize("case", RETRACE_CASES)
def test_no_retracing_across_epochs_and_batch_sizes(case):
    preset, overrides = RETRACE_CASES[case]
    spec, plan, trainer = make(preset, "float32", overrides)
    assert trainer.jit_compile == (case == "mlp-xla")
    rng = np.random.default_rng(8)
    x, y = random_data(50, rng)
    trainer.load_training_data(x, y)
    epochs = [[np.arange(0, 16), np.arange(16, 32), np.arange(32, 40)], [np.arange(10, 26), np.arange(26, 42), np.arange(0, 8)]]
    if case == "cnn-tf-function":  # other batch sizes too (each one would be an XLA compilation in the other case)
        epochs += [[np.arange(0, 10), np.arange(10, 20)], [np.arange(40, 43)]]
    for batches in epochs:
        stats = trainer.train_epoch(batches, np.full(len(batches), 0.01))
        assert stats.loss.shape == (len(batches),)
    trainer.load_training_data(x[:30], y[:30])  # a new training set is an argument, not a captured constant
    trainer.train_epoch([np.arange(0, 16), np.arange(14, 30)], np.full(2, 0.01))
    for batch_size in (7, 16, 50):
        trainer.evaluate(x, y, batch_size)
        trainer.predict_logits(x, batch_size)
    assert trainer.trace_counts == {"train": 1, "step": 1, "evaluate": 1, "predict": 1}


SMALL_CNN = [
    "model.conv=[{filters=4, kernel_size=3, padding='same', activation='relu', batch_norm={momentum=0.99, epsilon=1e-3},"
    " post_activation={name='leaky_relu', negative_slope=0.1}, pool={size=2, stride=2, padding='same'}, dropout=0.3}]",
    "model.hidden=[{units=16, activation='relu', dropout=0.3}]",
]
DETERMINISM_CASES = {"cnn-dropout": ("seed-cnn", SMALL_CNN, (0, 0, 1)), "mlp-bn-dropout-xla": ("mlp-relu-adam", MLP_BN_DROPOUT, (0, 0))}


@pytest.mark.parametrize("case", DETERMINISM_CASES)
def test_training_is_deterministic_for_a_seed(case):
    """Same spec, same data: identical losses and weights (dropout masks come from spec.seed)."""
    preset, overrides, seeds = DETERMINISM_CASES[case]
    rng = np.random.default_rng(9)
    x, y = random_data(40, rng)
    batches = [np.arange(0, 16), np.arange(16, 32), np.arange(24, 40)]
    results = []
    for seed in seeds:
        spec, plan, trainer = make(preset, "float32", [*overrides, f"seed={seed}"])
        trainer.set_weights(random_weights(plan, np.random.default_rng(10)))  # same start for every seed
        trainer.load_training_data(x, y)
        stats = trainer.train_epoch(batches, np.full(3, 1e-3))
        results.append((stats, trainer.get_weights()))
    np.testing.assert_array_equal(results[0][0].loss, results[1][0].loss)
    for name in results[0][1]:
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name], err_msg=name)
    if len(results) > 2:
        assert not np.array_equal(results[0][0].loss, results[2][0].loss), "another seed should draw other dropout masks"


def test_settings_and_versions():
    spec, plan, trainer = make("mlp-relu-adam", "float32")
    settings = trainer.settings()
    assert settings["intra_op_threads"] == THREADS and settings["inter_op_threads"] == THREADS
    assert settings["op_determinism"] is True and settings["threads_applied"] is True
    with pytest.warns(UserWarning, match="already initialised"):
        other = Trainer(spec, plan, threads=THREADS + 1)
    assert other.settings()["threads_applied"] is False and other.settings()["intra_op_threads"] == THREADS
    assert set(trainer.versions()) == {"keras", "tensorflow"}
