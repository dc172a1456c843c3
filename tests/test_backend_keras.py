"""Keras (TensorFlow) backend: structure, dtypes, forward, losses, optimizers, BatchNorm, compilation,
the Keras/TF-specific parts of the catalog (prelu, rrelu, maxout, clipping, binary tasks, TF traps, defaults),
and the parity ladder's hooks (layer outputs, gradients, optimizer state, injected noise) against the NumPy oracle."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from pydantic import TypeAdapter  # noqa: E402

from backends.keras.defaults import framework_defaults  # noqa: E402
from backends.keras.framework import keras, tf  # noqa: E402
from backends.keras.losses import make_loss  # noqa: E402
from backends.keras.ops import activation_vjp, loss_vjp, optimizer_steps  # noqa: E402
from backends.keras.optimizers import make_optimizer  # noqa: E402
from backends.keras.trainer import Trainer  # noqa: E402
from backends.numpy.model import forward  # noqa: E402
from experiments.catalog.optimizers import state_slots  # noqa: E402
from backends.numpy.trainer import Trainer as Oracle  # noqa: E402
from experiments.catalog import OPTIMIZERS  # noqa: E402
from experiments.catalog import Activation, Loss, Optimizer, OutputActivation  # noqa: E402
from experiments.catalog.optimizers import Adam, Sgd  # noqa: E402
from experiments.spec import build_plan, load_spec, parameter_info, trainable_parameter_count  # noqa: E402
from experiments.spec import plan as P  # noqa: E402
from experiments.verify.tolerances import FORWARD_AGAINST_ORACLE  # noqa: E402
from tests.backend_helpers import THREE_STEPS_FLOAT64, error, group_scale  # noqa: E402

PRESETS = ("mlp-relu-adam", "seed-cnn", "seed-mlp-relu", "seed-mlp-sigmoid")
DTYPES = ("float32", "float64")
THREADS = 2
# Normwise relative errors (tests.backend_helpers.error, the ladder's measure): float64 agrees to
# rounding; float32 must be visibly float32 and within the project's float32 forward claim.
TOL_FLOAT64 = 1e-12
TOL_FLOAT32 = FORWARD_AGAINST_ORACLE["float32"]  # 1e-5, experiments/verify/tolerances.py
FLOAT32_FLOOR = 1e-10  # a float32 model further from the float64 oracle than this really computes in float32
relative_error = error


def make(preset: str, dtype: str = "float64", overrides=()) -> tuple:
    """(spec, plan, Trainer) of a preset with overrides."""
    spec = load_spec(preset, [f"dtype={dtype}", *overrides])
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
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


# Structure and weights (the neutral half: tests/test_backends.py) ----------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_variable_and_layer_computes_in_spec_dtype(trainers, preset, dtype):
    """Keras' trap: a variable or a layer's compute dtype taken from the process-global floatx instead of the spec
    (names, shapes and get_weights' dtype: tests/test_backends.py::test_parameter_count_matches_plan)."""
    spec, plan, trainer = trainers[preset, dtype]
    float_variables = [v for v in trainer.model.weights if "float" in str(v.dtype)]
    assert float_variables and all(str(v.dtype) == dtype for v in float_variables), [
        (v.path, v.dtype) for v in float_variables
    ]
    assert all(layer.compute_dtype == dtype for layer in trainer.model.layers)


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
    """Three steps (Adam t = 1..3, changing lr) in one epoch equal the NumPy formula, step by step, with
    the gradients from the NumPy oracle (not from Keras) at the formula's weights."""
    overrides = [f"optimizer={OPTIMIZER_CASES[case]}", "model.hidden=[{units=16, activation='tanh'}]"]
    spec, plan, trainer = make("mlp-relu-adam", "float64", overrides)
    oracle = Oracle(spec, plan, THREADS)  # computes gradients at the NumPy weights
    rng = np.random.default_rng(4)
    weights = random_weights(plan, rng)
    x, y = random_data(24, rng)
    batches = [np.arange(0, 8), np.arange(8, 16), np.arange(16, 21)]  # the last one partial
    trainer.set_weights(weights)
    trainer.load_training_data(x, y)
    references, state = [], {}
    for t, (batch, lr) in enumerate(zip(batches, RATES), start=1):
        start = weights
        oracle.set_weights(weights)
        weights = numpy_step(spec.optimizer, state, weights, oracle.loss_and_gradients(x[batch], y[batch])[1], lr, t)
        references.append((start, weights))
    trainer.train_epoch(batches, RATES)
    start, expected = references[-1]
    actual = trainer.get_weights()
    for name in expected:
        update, reference_update = actual[name] - start[name], expected[name] - start[name]
        error = np.max(np.abs(update - reference_update)) / np.max(np.abs(reference_update))
        assert error <= 1e-10, f"{case} {name}: step-3 update differs from the catalog formula by {error:.3g} (relative)"
        assert relative_error(actual[name], expected[name]) <= THREE_STEPS_FLOAT64, name  # measured 1.4e-12 (adam)


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
    "cnn-tf-function": ("seed-cnn", ["model.conv=[{filters=2, kernel_size=3, padding='valid', activation='relu', dropout=0.25}]", "model.hidden=[]"]),
    "mlp-xla": ("seed-mlp-sigmoid", ["model.hidden=[{units=32, activation='sigmoid', dropout=0.2}]"]),
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
    oracle = Oracle(spec, plan, THREADS)  # draws the injected noise
    for batches in epochs:  # each epoch twice: the layers' own draws, then injected noise (data, not constants)
        stats = trainer.train_epoch(batches, np.full(len(batches), 0.01))
        assert stats.loss.shape == (len(batches),)
        noise = [oracle.training_noise(len(batch)) for batch in batches]
        assert trainer.train_epoch(batches, np.full(len(batches), 0.01), noise).loss.shape == (len(batches),)
    trainer.load_training_data(x[:30], y[:30])  # a new training set is an argument, not a captured constant
    trainer.train_epoch([np.arange(0, 16), np.arange(14, 30)], np.full(2, 0.01))
    for batch_size in (7, 16, 50):
        trainer.evaluate(x, y, batch_size)
        trainer.predict_logits(x, batch_size)
    for n in (5, 9):
        trainer.layer_outputs(x[:n])
        if case == "cnn-tf-function":  # (each batch size would be two more XLA compilations in the dense case)
            trainer.loss_and_gradients(x[:n], y[:n])
            trainer.loss_and_gradients(x[:n], y[:n], oracle.training_noise(n))
    gradients = int(case == "cnn-tf-function")
    assert trainer.trace_counts == {
        "epoch": 1, "step": 1, "noisy epoch": 1, "noisy step": 1, "logits": 1, "losses": 1,
        "gradients": gradients, "noisy gradients": gradients, "layer outputs": 1,
    }


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


SETTINGS_PROBE = f"""
import json, warnings
from backends.keras.trainer import Trainer
from experiments.spec import build_plan, load_spec
spec = load_spec("mlp-relu-adam", ["dtype=float32"])
plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
first = Trainer(spec, plan, threads={THREADS})
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    other = Trainer(spec, plan, threads={THREADS + 1})
print(json.dumps({{"first": first.settings(), "other": other.settings(), "versions": sorted(first.versions()),
                  "warnings": [str(w.message) for w in caught]}}, default=str))
"""


def test_settings_and_versions():
    """In a fresh process (TF sizes its thread pools once per process, and another test file run earlier in the same
    pytest worker may have done so): the first trainer applies its threads, a second one with other threads cannot
    and says so."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", SETTINGS_PROBE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    settings, other = report["first"], report["other"]
    assert settings["intra_op_threads"] == THREADS and settings["inter_op_threads"] == THREADS
    assert settings["op_determinism"] is True and settings["threads_applied"] is True
    assert any("already initialised" in message for message in report["warnings"])
    assert other["threads_applied"] is False and other["intra_op_threads"] == THREADS
    assert report["versions"] == ["keras", "tensorflow"]


# Catalog activations: prelu, rrelu, maxout, TF's own traps -------------------------------------------


def entry_of(kind, table):
    return TypeAdapter(kind).validate_python(table)


PRELU_CNN = [
    "model.conv=[{filters=4, kernel_size=3, padding='valid', activation={name='prelu', initial_value=0.1, per_channel=true},"
    " pool={size=2, stride=2, padding='same'}}]",
    "model.hidden=[{units=6, activation={name='prelu', initial_value=-0.3, per_channel=false}}]",
    "optimizer={name='sgd', learning_rate=0.1}",
]


def test_prelu_alpha_is_canonical_exact_and_trained():
    """alpha is `<layer>/alpha`, (C,) per channel or (1,), starts exactly at initial_value, round-trips and trains."""
    spec, plan, trainer = make("seed-cnn", "float64", PRELU_CNN)
    weights = trainer.get_weights()
    assert weights["activation_0/alpha"].shape == (4,) and weights["activation_1/alpha"].shape == (1,)
    np.testing.assert_array_equal(weights["activation_0/alpha"], 0.1)  # not float32(0.1) (Keras' Constant on TF)
    np.testing.assert_array_equal(weights["activation_1/alpha"], -0.3)
    assert trainer.parameter_count() == trainable_parameter_count(plan)
    rng = np.random.default_rng(12)
    weights = random_weights(plan, rng)
    weights["activation_0/alpha"], weights["activation_1/alpha"] = rng.uniform(-0.5, 0.5, 4), np.array([0.2])
    trainer.set_weights(weights)
    for name, values in trainer.get_weights().items():
        np.testing.assert_array_equal(values, weights[name], err_msg=name)
    x, y = random_data(6, rng)
    assert relative_error(trainer.predict_logits(x, 6), forward(plan, weights, x)) <= TOL_FLOAT64
    grads = gradients(trainer, weights, x, y)
    assert np.any(grads["activation_0/alpha"] != 0) and np.all(grads["activation_1/alpha"] != 0)
    trainer.load_training_data(x, y)
    trainer.train_epoch([np.arange(6)], np.array([0.1]))
    after = trainer.get_weights()
    for name in ("activation_0/alpha", "activation_1/alpha"):  # one SGD step: alpha - lr * dL/dalpha
        assert relative_error(after[name], weights[name] - 0.1 * grads[name]) <= TOL_FLOAT64, name


RRELU = {"name": "rrelu", "lower": 0.1, "upper": 0.3}
RRELU_MLP = [f"model.hidden=[{{units=16, activation={{name='rrelu', lower={RRELU['lower']}, upper={RRELU['upper']}}}}}]"]


def test_rrelu_draws_fresh_slopes_every_step_in_the_compiled_loop():
    """Each compiled step advances the layer's seed state once; eval mode is leaky_relu((l + u) / 2)."""
    spec, plan, trainer = make("mlp-relu-adam", "float64", RRELU_MLP)
    assert trainer.jit_compile
    weights = random_weights(plan, np.random.default_rng(13))
    trainer.set_weights(weights)
    x, y = random_data(24, np.random.default_rng(14))
    eval_slope = (RRELU["lower"] + RRELU["upper"]) / 2
    _, _, leaky = make("mlp-relu-adam", "float64", [f"model.hidden=[{{units=16, activation={{name='leaky_relu', negative_slope={eval_slope}}}}}]"])
    leaky.set_weights(weights)
    np.testing.assert_array_equal(trainer.predict_logits(x, 8), leaky.predict_logits(x, 8))
    assert relative_error(trainer.predict_logits(x, 8), forward(plan, weights, x)) <= TOL_FLOAT64
    generator = trainer.model.get_layer("activation_0").seed_generator
    before = generator.state.numpy().copy()
    trainer.load_training_data(x, y)
    trainer.train_epoch([np.arange(8), np.arange(8, 16), np.arange(16, 24)], np.zeros(3))  # lr 0: weights stay
    np.testing.assert_array_equal(generator.state.numpy() - before, [0, 3])  # one fresh draw per step
    first, second = (trainer._batch_loss(tf.constant(x), tf.constant(y), training=True)[0].numpy() for _ in range(2))
    assert not np.array_equal(first, second), "two train-mode calls drew the same slopes"


def test_rrelu_slopes_lie_within_the_exact_float64_bounds():
    """lower = upper = 1/3: every float64 slope is exactly 1/3 (keras.random.uniform would use float32(1/3) bounds)."""
    third = {"name": "rrelu", "lower": 1.0 / 3.0, "upper": 1.0 / 3.0}
    x = -np.linspace(0.5, 2.0, 200)
    y, dx, _ = activation_vjp(entry_of(Activation, third), x, np.ones_like(x), "float64", training=True, seed=4)
    np.testing.assert_array_equal(dx, 1.0 / 3.0)
    np.testing.assert_array_equal(y, x * (1.0 / 3.0))
    y1, _, _ = activation_vjp(entry_of(Activation, RRELU), x, np.ones_like(x), "float64", training=True, seed=4)
    y2, _, _ = activation_vjp(entry_of(Activation, RRELU), x, np.ones_like(x), "float64", training=True, seed=4)
    np.testing.assert_array_equal(y1, y2)  # seeded: the same seed draws the same slopes


def test_maxout_groups_consecutive_channels_and_routes_ties_to_the_first():
    maxout = entry_of(Activation, {"name": "maxout", "pieces": 3})
    x = np.array([[[[5.0, 5.0, 1.0, -2.0, -1.0, -1.0], [0.0, -0.0, 0.0, 7.0, 2.0, 7.0]]]])  # (1, 1, 2, 6): ties
    cotangent = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y, dx, _ = activation_vjp(maxout, x, cotangent, "float64")
    np.testing.assert_array_equal(y, [[[[5.0, -1.0], [0.0, 7.0]]]])
    np.testing.assert_array_equal(dx, [[[[1.0, 0, 0, 0, 2.0, 0], [3.0, 0, 0, 4.0, 0, 0]]]])


def _tf_gradient(function, x):
    x = tf.constant(x, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x)
    return tape.gradient(y, x).numpy()


def test_tensorflow_traps_the_backend_avoids():
    """TF/Keras built-ins that differ from the catalog here (if one stops differing, revisit its workaround)."""
    zero = np.zeros(1)
    assert _tf_gradient(tf.nn.elu, zero)[0] == 1.0  # x > 0 branch at 0; the catalog's is alpha
    assert activation_vjp(entry_of(Activation, {"name": "elu", "alpha": 0.7}), zero, np.ones(1), "float64")[1][0] == 0.7
    np.testing.assert_array_equal(_tf_gradient(lambda v: tf.reduce_max(v, -1), [[1.0, 3.0, 3.0]]), [[0, 0.5, 0.5]])  # ties split
    assert tf.nn.leaky_relu(tf.constant([-1.0], tf.float64), 0.1).numpy()[0] == -np.float64(np.float32(0.1))
    assert keras.initializers.Constant(0.1)((1,), dtype="float64").numpy()[0] == np.float64(np.float32(0.1))
    assert tf.cast(0.1, tf.float64).numpy() != 0.1
    g = np.array([3.0, 4.0])  # ||g|| = 5 < c = 49: no clipping is due
    variable = keras.Variable(np.zeros(2), dtype="float64")
    keras.optimizers.SGD(learning_rate=1.0, global_clipnorm=49.0).apply([tf.constant(g)], [variable])
    assert not np.array_equal(variable.numpy(), -g)  # Keras scaled g by 49 * (1 / 49) = 1 - 2^-53
    sgd = entry_of(Optimizer, {"name": "sgd", "learning_rate": 1.0, "clip_global_norm": 49.0})
    np.testing.assert_array_equal(optimizer_steps(sgd, {"w": np.zeros(2)}, [{"w": g}], [1.0], "float64")[0]["w"], -g)


def test_global_norm_clipping_scales_by_c_over_the_norm():
    """g * min(1, c / ||g||) over all tensors: c / ||g|| above the threshold, bit-exact identity below it."""
    rng = np.random.default_rng(15)
    params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(4,))}
    grads = [{k: 2.0 * rng.normal(size=v.shape) for k, v in params.items()} for _ in range(3)]
    rates = [0.1, 0.05, 0.2]

    def run(clip):
        table = {"name": "momentum", "learning_rate": 0.1, "momentum": 0.9, **({"clip_global_norm": clip} if clip else {})}
        return optimizer_steps(entry_of(Optimizer, table), params, grads, rates, "float64")

    unclipped, loose, tight = run(None), run(1e6), run(0.5)
    for a, b in zip(unclipped, loose):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    buffers, expected = {k: 0.0 for k in params}, dict(params)
    for step, lr in zip(grads, rates):
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in step.values()))
        assert norm > 0.5
        for name, g in step.items():
            buffers[name] = 0.9 * buffers[name] + g * (0.5 / norm)
            expected[name] = expected[name] - lr * buffers[name]
    for name in expected:
        assert relative_error(tight[-1][name], expected[name]) <= TOL_FLOAT64, name


# Losses (binary tasks: tests/test_backends.py) ----------------------------------------------------


def test_losses_refuse_outputs_without_probabilities():
    """step/sign outputs define no probabilities (CE, KL) and BCE takes only sigmoid/linear; mse works with them."""
    step = entry_of(OutputActivation, {"name": "step"})
    for table in ({"name": "categorical_crossentropy"}, {"name": "kl_divergence"}, {"name": "binary_crossentropy"}):
        with pytest.raises(KeyError):
            make_loss(entry_of(Loss, table), step)
    z, y = np.array([[-1.0, 0.0, 2.0]]), np.array([[0.0, 1.0, 1.0]])
    value, dz = loss_vjp(entry_of(Loss, {"name": "mse"}), step, z, y, "float64")
    assert value == pytest.approx(1.0 / 3.0) and not np.any(dz)


# Framework defaults ----------------------------------------------------------------------------------


def test_framework_defaults_are_read_from_keras():
    rows = framework_defaults()
    json.dumps(rows)
    assert all(set(row) == {"entry", "parameter", "value", "source"} for row in rows)
    values = {(row["entry"], row["parameter"], row["source"]): row["value"] for row in rows}
    assert values["leaky_relu", "negative_slope", "keras.layers.LeakyReLU(negative_slope)"] == 0.3
    assert values["leaky_relu", "negative_slope", "keras.activations.leaky_relu(negative_slope)"] == 0.2
    assert values["batch_norm", "momentum", "keras.layers.BatchNormalization(momentum)"] == 0.99
    assert values["adam", "epsilon", "keras.optimizers.Adam(epsilon)"] == 1e-7
    assert [row["value"] for row in rows if row["entry"] == "nadam" and row["parameter"] == "momentum_decay"] == [1.0]
    assert {row["entry"] for row in rows if row["parameter"] == "learning_rate"} == set(OPTIMIZERS)


# Parity-ladder hooks against the NumPy oracle (float64, same weights, same noise) ----------------------

LADDER_CNN = [  # conv -> BN -> rrelu -> pool -> dropout, dense -> BN -> relu -> dropout
    "model.conv=[{filters=4, kernel_size=3, padding='same', activation='relu', batch_norm={momentum=0.9, epsilon=1e-3},"
    " post_activation={name='rrelu', lower=0.1, upper=0.3}, pool={size=2, stride=2, padding='same'}, dropout=0.3}]",
    "model.hidden=[{units=16, activation='relu', batch_norm={momentum=0.8, epsilon=1e-3}, dropout=0.25}]",
]
LADDER_CASES = {"mlp-relu-adam": ("mlp-relu-adam", []), "seed-cnn": ("seed-cnn", []), "cnn-rrelu": ("seed-cnn", LADDER_CNN)}
LADDER_TOL = {"layers": 1e-12, "gradients": 1e-10, "one_step": 1e-10, "three_steps": 1e-9}


normwise_error = error


def ladder_pair(preset: str, overrides=(), seed: int = 17) -> tuple:
    """(spec, plan, keras Trainer, NumPy oracle) in float64 from the same weights (BN statistics nonzero)."""
    spec, plan, trainer = make(preset, "float64", overrides)
    oracle = Oracle(spec, plan, THREADS)
    oracle.set_weights(random_weights(plan, np.random.default_rng(seed)))
    trainer.set_weights(oracle.get_weights())
    return spec, plan, trainer, oracle


def assert_weights_match(trainer, oracle, tolerance: float, what: str) -> None:
    actual, expected = trainer.get_weights(), oracle.get_weights()
    assert set(actual) == set(expected)
    scale = group_scale(expected.values())
    for name in expected:
        error = normwise_error(actual[name], expected[name], scale)
        assert error <= tolerance, f"{what}: {name} differs from the oracle by {error:.3g} (normwise relative)"


@pytest.mark.parametrize("case", LADDER_CASES)
def test_layer_outputs_and_gradients_match_the_oracle(case):
    """Eval-mode layer outputs; train-mode loss and gradients under the oracle's noise, changing nothing."""
    preset, overrides = LADDER_CASES[case]
    spec, plan, trainer, oracle = ladder_pair(preset, overrides)
    x, y = random_data(8, np.random.default_rng(18))
    outputs, expected = trainer.layer_outputs(x), forward(plan, oracle.get_weights(), x, outputs=True)[1]
    assert list(outputs) == [layer.name for layer in plan]
    for layer in plan:
        assert outputs[layer.name].dtype == np.float64
        error = normwise_error(outputs[layer.name], expected[layer.name])
        assert error <= LADDER_TOL["layers"], f"{case}: layer {layer.name} output differs by {error:.3g}"
    noise = oracle.training_noise(8)
    assert set(noise) == {layer.name for layer in trainer.noisy_layers}
    generators = [trainer.model.get_layer(layer.name).seed_generator for layer in trainer.noisy_layers]
    seeds = [g.state.numpy().copy() for g in generators]
    before = trainer.get_weights()
    loss, grads = trainer.loss_and_gradients(x, y, noise)
    expected_loss, oracle_grads = oracle.loss_and_gradients(x, y, noise)
    assert abs(loss - expected_loss) <= LADDER_TOL["gradients"] * max(abs(expected_loss), 1.0)
    assert set(grads) == set(oracle_grads) == {n for n, p in parameter_info(plan).items() if p.trainable}
    scale = group_scale(oracle_grads.values())  # a bias before a batch norm has gradient 0 up to rounding
    for name, expected_grad in oracle_grads.items():
        assert grads[name].dtype == np.float64
        error = normwise_error(grads[name], expected_grad, scale)
        assert error <= LADDER_TOL["gradients"], f"{case}: d loss / d {name} differs by {error:.3g}"
    first = trainer.loss_and_gradients(x, y)  # the layers' own draws
    second = trainer.loss_and_gradients(x, y)
    for name, values in trainer.get_weights().items():  # no update, BN moving statistics restored
        np.testing.assert_array_equal(values, before[name], err_msg=f"{case}: loss_and_gradients changed {name}")
    for generator, seed in zip(generators, seeds):  # seed states put back (and not advanced with noise)
        np.testing.assert_array_equal(generator.state.numpy(), seed)
    assert first[0] == second[0] and trainer.optimizer_state() == {}


LADDER_OPTIMIZERS = {
    "sgd-momentum": "{name='sgd', learning_rate=0.05, momentum=0.9}",
    "adam": "{name='adam', learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-7}",
    "rmsprop-centered-momentum": "{name='rmsprop', learning_rate=0.01, rho=0.8, epsilon=1e-6, momentum=0.5, centered=true}",
    "adadelta": "{name='adadelta', learning_rate=1.0, rho=0.9, epsilon=1e-6}",
    "adamax": "{name='adamax', learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-7}",
    "nadam": "{name='nadam', learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-7, momentum_decay=0.004}",
}


@pytest.mark.parametrize("case", LADDER_OPTIMIZERS)
def test_one_noisy_step_matches_the_oracle_weights_and_optimizer_state(case):
    spec, plan, trainer, oracle = ladder_pair("seed-cnn", [*LADDER_CNN, f"optimizer={LADDER_OPTIMIZERS[case]}"])
    x, y = random_data(8, np.random.default_rng(19))
    trainer.load_training_data(x, y)
    oracle.load_training_data(x, y)
    assert trainer.optimizer_state() == {}
    noise = [oracle.training_noise(6)]
    batches, rates = [np.array([5, 0, 2, 7, 3, 1])], np.array([0.5 if case == "adadelta" else 1.0])
    stats, expected_stats = trainer.train_epoch(batches, rates, noise), oracle.train_epoch(batches, rates, noise)
    assert abs(stats.loss[0] - expected_stats.loss[0]) <= LADDER_TOL["gradients"] * max(abs(expected_stats.loss[0]), 1.0)
    np.testing.assert_array_equal(stats.correct, expected_stats.correct)
    assert_weights_match(trainer, oracle, LADDER_TOL["one_step"], case)
    state, slots = trainer.optimizer_state(), state_slots(spec.optimizer)
    trainable = {n for n, p in parameter_info(plan).items() if p.trainable}
    assert set(state) == trainable and all(tuple(state[n]) == slots for n in state), (slots, state[next(iter(state))].keys())
    for name in trainable:
        for slot in slots:
            scale = group_scale(oracle.optimizer.state[n][slot] for n in trainable)
            error = normwise_error(state[name][slot], oracle.optimizer.state[name][slot], scale)
            assert error <= LADDER_TOL["one_step"], f"{case}: {name} {slot} differs from the oracle by {error:.3g}"


def test_three_noisy_steps_of_seed_cnn_match_the_oracle():
    """The full seed-cnn (three dropout blocks, five batch norms, adam) for three steps under the oracle's dropout masks."""
    spec, plan, trainer, oracle = ladder_pair("seed-cnn")
    x, y = random_data(16, np.random.default_rng(20))
    trainer.load_training_data(x, y)
    oracle.load_training_data(x, y)
    batches = [np.arange(0, 6), np.arange(6, 12), np.array([15, 12, 14, 13])]  # the last one smaller
    rates = np.array([1e-3, 2e-3, 5e-4])
    noise = [oracle.training_noise(len(batch)) for batch in batches]
    stats, expected_stats = trainer.train_epoch(batches, rates, noise), oracle.train_epoch(batches, rates, noise)
    np.testing.assert_allclose(stats.loss, expected_stats.loss, rtol=LADDER_TOL["three_steps"])
    assert_weights_match(trainer, oracle, LADDER_TOL["three_steps"], "seed-cnn after three steps")
    state, expected_state = trainer.optimizer_state(), oracle.optimizer_state()
    for name in expected_state:
        for slot in ("m", "v"):
            scale = group_scale(expected_state[n][slot] for n in expected_state)
            assert normwise_error(state[name][slot], expected_state[name][slot], scale) <= LADDER_TOL["three_steps"], (name, slot)
