"""The PyTorch backend against the plan, the catalog's formulas and the NumPy float64 oracle, step by step."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.numpy.model import forward as oracle_forward  # noqa: E402
from backends.numpy.trainer import Trainer as OracleTrainer  # noqa: E402
from backends.torch import ops  # noqa: E402
from backends.torch.defaults import framework_defaults, main as defaults_main  # noqa: E402
from backends.torch.activations import RReLU  # noqa: E402
from backends.torch.losses import make_loss  # noqa: E402
from backends.torch.trainer import Trainer  # noqa: E402
from backends.torch.optimizers import NAdam, make_optimizer  # noqa: E402
from backends.torch.weights import draw  # noqa: E402
from backends.numpy import ops as oracle_ops  # noqa: E402
from backends.numpy.losses import make_loss as oracle_loss  # noqa: E402
from experiments.catalog import LOSSES, OPTIMIZERS, Activation, Optimizer  # noqa: E402
from experiments.catalog.activations import SELU_ALPHA, SELU_SCALE  # noqa: E402
from experiments.catalog.activations import Linear, Sigmoid, Softmax  # noqa: E402
from experiments.catalog.initializers import Distribution  # noqa: E402
from experiments.catalog.losses import CategoricalCrossentropy, MeanSquaredError  # noqa: E402
from experiments.data import load_dataset, to_model_inputs  # noqa: E402
from experiments.spec import build_plan, load_spec, parameter_info, trainable_parameter_count  # noqa: E402
from experiments.spec import plan as P  # noqa: E402
from experiments.spec.plan import same_padding  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from tests.backend_helpers import assert_steps_match_oracle, check_sample, error, group_scale, random_weights

PRESETS = ["seed-cnn", "mlp-relu-adam", "seed-mlp-sigmoid", "seed-mlp-relu"]
DTYPES = ["float32", "float64"]
# Normwise relative, max|a - r| / max|r| (tests.backend_helpers.error): float64 must agree with the oracle to rounding; float32 is
# checked against the float64 oracle run on the same float32-rounded weights and inputs.
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}

TINY_MLP = ['model.hidden=[{units=12, activation="relu"}]']
# Every padding path: even kernel 'same' (pad 1 before, 2 after), 'valid' convs, 'same' pools
# with the extra -inf pixel at the end (28 -> 14 with 3/2, 13 -> 7 with 2/2), a symmetric 3/1
# 'same' pool, a 'valid' pool, BN on conv and dense, every hidden activation; flatten (1, 1, 4).
GEOMETRY_CNN = [
    'model.conv=[{filters=3, kernel_size=4, padding="same", activation="tanh", pool={size=3, stride=2, padding="same"}},'
    ' {filters=4, kernel_size=2, padding="valid", activation={name="leaky_relu", negative_slope=0.2},'
    ' batch_norm={momentum=0.9, epsilon=1e-3}, pool={size=2, stride=2, padding="same"}},'
    ' {filters=5, kernel_size=3, padding="same", activation="sigmoid", batch_norm={momentum=0.8, epsilon=1e-5},'
    ' post_activation="relu", pool={size=3, stride=1, padding="same"}},'
    ' {filters=4, kernel_size=5, padding="valid", activation="linear", pool={size=2, stride=2, padding="valid"}}]',
    'model.hidden=[{units=6, activation="relu", batch_norm={momentum=0.8, epsilon=1e-5}}]',
]
TINY_CNN = [  # the flatten of a (3, 3, 4) map: the (H, W, C) permutation is not trivial
    'model.conv=[{filters=3, kernel_size=3, padding="same", activation="relu", batch_norm={momentum=0.9, epsilon=1e-3},'
    ' post_activation={name="leaky_relu", negative_slope=0.1}, pool={size=2, stride=2, padding="same"}},'
    ' {filters=4, kernel_size=3, padding="valid", activation="tanh", pool={size=2, stride=2, padding="same"}},'
    ' {filters=4, kernel_size=2, padding="same", activation="sigmoid", pool={size=3, stride=2, padding="same"}}]',
    'model.hidden=[{units=6, activation="relu", batch_norm={momentum=0.8, epsilon=1e-5}}]',
]
# The catalog's layout-sensitive activations in a CNN: maxout over consecutive channels (conv
# activation and post-activation, then a flatten of 2 channels), per-channel prelu after a batch
# norm, and the elementwise ones in both NCHW and (N, F) layouts.
CATALOG_CNN = [
    'model.conv=[{filters=6, kernel_size=3, padding="same", activation={name="maxout", pieces=2},'
    ' batch_norm={momentum=0.9, epsilon=1e-3}, post_activation={name="prelu", initial_value=0.2, per_channel=true},'
    ' pool={size=2, stride=2, padding="same"}},'
    ' {filters=4, kernel_size=3, padding="valid", activation="selu", post_activation={name="elu", alpha=0.5},'
    ' pool={size=2, stride=2, padding="same"}},'
    ' {filters=6, kernel_size=2, padding="same", activation={name="softplus", beta=2.0},'
    ' post_activation={name="maxout", pieces=3}, pool={size=3, stride=2, padding="same"}}]',
    'model.hidden=[{units=8, activation={name="gelu", approximate="tanh"}, post_activation={name="maxout", pieces=2}},'
    ' {units=6, activation="hard_sigmoid", post_activation="silu"},'
    ' {units=5, activation={name="prelu", initial_value=0.1, per_channel=false}}]',
]
PRELU_MLP = ['model.hidden=[{units=12, activation={name="prelu", initial_value=0.25, per_channel=true}}]']
BINARY = ['data.task="digit_3"', 'model.output_activation="sigmoid"', 'loss={name="binary_crossentropy", label_smoothing=0.1}']
# name -> (preset, overrides): each runs three steps against the oracle with a changing rate.
TRAINING_CASES = {
    "sgd": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1}']),
    "sgd-nesterov-no-momentum": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1, nesterov=true}']),
    "sgd-momentum": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1, momentum=0.9}']),
    "sgd-nesterov": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1, momentum=0.9, nesterov=true}']),
    "adam": ("mlp-relu-adam", TINY_MLP + ['optimizer={name="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7}']),
    "sigmoid-ce-smoothing": ("seed-mlp-sigmoid", ['model.hidden=[{units=7, activation="tanh"}]',
                                                   'loss={name="categorical_crossentropy", label_smoothing=0.1}']),
    "softmax-mse": ("mlp-relu-adam", ['model.hidden=[{units=7, activation={name="leaky_relu", negative_slope=0.2}}]', 'loss="mse"']),
    # SGD here: a bias before a batch norm has a zero gradient up to rounding, which Adam would
    # normalise to an O(lr) step; the Adam formula is checked on the MLP above.
    "cnn-batch-norm": ("seed-cnn", TINY_CNN + ['optimizer={name="sgd", learning_rate=0.1, momentum=0.5}']),
    "cnn-geometry": ("seed-cnn", GEOMETRY_CNN + ['optimizer={name="sgd", learning_rate=0.1}']),
    "cnn-catalog-activations": ("seed-cnn", CATALOG_CNN + ['optimizer={name="sgd", learning_rate=0.1, momentum=0.5}']),
    # epsilon 1e-4: Adam normalises a gradient entry near 0 to O(lr), so with 1e-8 one rounding-level
    # difference in a tiny gradient entry shows at 1e-12 (the formula is the same either way).
    "prelu-adamw": ("mlp-relu-adam", PRELU_MLP + ['optimizer={name="adamw", learning_rate=0.01, epsilon=1e-4, weight_decay=0.1}']),
    "binary-bce-nadam-clipped": ("mlp-relu-adam", TINY_MLP + BINARY + [
        'optimizer={name="nadam", learning_rate=0.01, epsilon=1e-8, momentum_decay=0.004, clip_global_norm=0.05}']),
    "kl-rmsprop-centered": ("mlp-relu-adam", TINY_MLP + ['loss={name="kl_divergence", label_smoothing=0.1}',
        'optimizer={name="rmsprop", learning_rate=0.01, rho=0.9, epsilon=1e-7, momentum=0.5, centered=true}']),
}
LEARNING_RATES = [0.1, 0.03, 0.07]
# One intra-op thread: on a busy 2-core machine two OpenMP threads wait on each other at every
# barrier (a seed-cnn step then varies from 0.1 s to 1 s); the provenance test checks threads=2.
THREADS = 1


def make(preset: str, dtype: str, overrides=(), threads: int = THREADS) -> tuple[Trainer, object, tuple]:
    spec = load_spec(preset, [*overrides, f'dtype="{dtype}"'])
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    return Trainer(spec, plan, threads=threads), spec, plan


def data(count: int, seed: int = 1, outputs: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Random images and targets: one-hot (count, 10), or (count, 1) of 0/1 for a binary task."""
    rng = np.random.default_rng(seed)
    x = rng.random((count, 28, 28, 1))
    if outputs == 1:
        return x, rng.integers(0, 2, (count, 1)).astype(np.float64)
    return x, np.eye(outputs)[rng.integers(0, outputs, count)]


@pytest.fixture(scope="module")
def digits():
    """512 real MNIST digits (x (N, 28, 28, 1), one-hot y) in float64."""
    dataset = load_dataset("mnist-subset")
    return to_model_inputs(dataset.x_test[:512], dataset.y_test[:512], 10, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_tensor_is_spec_dtype_without_a_global_default(preset, dtype):
    """torch's trap: a parameter or buffer left at the default dtype, or torch.set_default_dtype changed for the
    process (names, shapes and get_weights' dtype: tests/test_backends.py::test_parameter_count_matches_plan)."""
    trainer, _, _ = make(preset, dtype)
    tensors = [*trainer.model.parameters(), *trainer.model.buffers()]
    assert {t.dtype for t in tensors} == {trainer.tensor_dtype}, "every parameter and buffer is spec.dtype"
    assert torch.get_default_dtype() == torch.float32, "no process-global dtype"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "distribution",
    [Distribution("constant", 0.25), Distribution("uniform", -0.3, 0.1), Distribution("normal", 0.5, 0.2),
     Distribution("truncated_normal", -0.1, 0.05)],
    ids=lambda d: d.kind,
)
def test_draw_realises_each_distribution(distribution, dtype):
    generator = torch.Generator().manual_seed(0)
    dt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    sample = draw((100, 100), distribution, dt, generator)
    assert sample.dtype == dt
    check_sample(sample.double().numpy(), distribution, distribution.kind)


def test_initialisation_and_dropout_are_seeded():
    """Same seed: identical weights and identical training with dropout; another seed: other weights."""
    overrides = ['model.hidden=[{units=12, activation="relu", dropout=0.5}]']
    (a, _, _), (b, _, _) = make("mlp-relu-adam", "float32", overrides), make("mlp-relu-adam", "float32", overrides)
    c, _, _ = make("mlp-relu-adam", "float32", overrides + ["seed=1"])
    wa, wc = a.get_weights(), c.get_weights()
    assert all(np.array_equal(wa[k], v) for k, v in b.get_weights().items())
    assert not np.array_equal(wa["dense_0/kernel"], wc["dense_0/kernel"])
    x, y = data(16)
    stats = []
    for trainer in (a, b):
        trainer.load_training_data(x, y)
        stats.append(trainer.train_epoch([np.arange(8), np.arange(8, 16)], np.array([0.01, 0.01])))
    assert np.array_equal(stats[0].loss, stats[1].loss)
    assert all(np.array_equal(a.get_weights()[k], v) for k, v in b.get_weights().items())


FORWARD_CASES = {"cnn-geometry": ("seed-cnn", GEOMETRY_CNN), "cnn-catalog-activations": ("seed-cnn", CATALOG_CNN)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", FORWARD_CASES)
def test_nchw_layouts_forward_and_evaluate_match_the_oracle(case, dtype, digits):
    """torch's NCHW layout against the canonical (H, W, C) one (the presets: tests/test_backends.py::
    test_forward_matches_numpy_oracle): every padding path and a non-trivial flatten (cnn-geometry); maxout's groups
    are consecutive channels of NCHW dim 1, the canonical last axis, and per-channel prelu alphas apply to the right
    channels (cnn-catalog-activations)."""
    base, overrides = FORWARD_CASES[case]
    trainer, spec, plan = make(base, dtype, overrides)
    weights = random_weights(plan, dtype)
    trainer.set_weights(weights)
    x, y = digits[0][:10].astype(dtype), digits[1][:10]
    logits = trainer.predict_logits(x, 4)
    reference = oracle_forward(plan, weights, x)
    assert logits.dtype == np.dtype(dtype) and logits.shape == (10, 10)
    assert error(logits, reference) <= TOLERANCE[dtype], f"torch {case} {dtype}: {error(logits, reference):.2e}"
    if dtype == "float32":  # rounding visible at float32 level means the math was not done in float64
        assert 1e-9 < error(logits, reference), "float32 trainer computed like float64"
    oracle = OracleTrainer(spec, plan, 1)
    oracle.set_weights(weights)
    (loss, accuracy), (ref_loss, ref_accuracy) = trainer.evaluate(x, y, 4), oracle.evaluate(x, y, 4)
    assert error(loss, ref_loss) <= TOLERANCE[dtype] and accuracy == ref_accuracy


@pytest.mark.parametrize("size, window, stride", [(7, 2, 2), (28, 3, 2), (13, 2, 2), (7, 3, 1), (5, 4, 1), (14, 2, 2)])
def test_same_padding_is_tf_rule(size, window, stride):
    """out = ceil(n / s); pad_total = (out - 1) s + k - n, the odd pixel at the end."""
    before, after = same_padding(size, window, stride)
    out = -(-size // stride)
    assert before + after == max((out - 1) * stride + window - size, 0) and after - before in (0, 1)
    assert (size + before + after - window) // stride + 1 == out


LOSS_CASES = [
    (CategoricalCrossentropy(name="categorical_crossentropy"), Softmax(name="softmax")),
    (CategoricalCrossentropy(name="categorical_crossentropy", label_smoothing=0.2), Linear(name="linear")),
    (CategoricalCrossentropy(name="categorical_crossentropy", label_smoothing=0.1), Sigmoid(name="sigmoid")),
    (MeanSquaredError(name="mse"), Softmax(name="softmax")),
    (MeanSquaredError(name="mse"), Sigmoid(name="sigmoid")),
    (MeanSquaredError(name="mse"), Linear(name="linear")),
]


@pytest.mark.parametrize("loss, output", LOSS_CASES, ids=["ce-softmax", "ce-smooth0.2-linear", "ce-smooth0.1-sigmoid",
                                                          "mse-softmax", "mse-sigmoid", "mse-linear"])
def test_losses_and_their_gradients_match_the_catalog(loss, output):
    rng = np.random.default_rng(3)
    z, y = rng.normal(0.0, 3.0, (6, 10)), np.eye(10)[rng.integers(0, 10, 6)]
    zt = torch.tensor(z, requires_grad=True)
    per_example = make_loss(loss, output)(zt, torch.tensor(y))
    per_example.mean().backward()
    ref_per_example, ref_gradient = oracle_loss(loss, output)(z, y)
    assert per_example.dtype == torch.float64
    assert error(per_example.detach().numpy(), ref_per_example) <= 1e-13
    assert error(zt.grad.numpy(), ref_gradient) <= 1e-13


@pytest.mark.parametrize("case", TRAINING_CASES)
def test_training_steps_match_the_oracle(case):
    """Three float64 steps, rate changing every step: per-step loss, correct count, every weight and
    running statistic after every step equal the NumPy oracle's (catalog formulas) to 1e-12."""
    preset, overrides = TRAINING_CASES[case]
    trainer, spec, plan = make(preset, "float64", overrides)
    oracle = OracleTrainer(spec, plan, 1)
    x, y = data(12, outputs=spec.data.num_outputs)
    assert_steps_match_oracle(trainer, oracle, plan, random_weights(plan, "float64"), x, y, LEARNING_RATES, case)


@pytest.mark.parametrize("batch_size", [64, 1])
def test_batch_norm_running_statistics_use_the_biased_variance(batch_size):
    """After one train step each running statistic is m * r + (1 - m) * batch statistic (biased
    variance, computed here in NumPy from the layer's captured input), and the train-mode output is
    scale * (x - mean) / sqrt(var + eps) + offset. torch's own BatchNorm would fail both (1 - m, n / (n - 1)).
    A batch of one (F.batch_norm refuses it) gives var_B = 0."""
    trainer, _, plan = make("seed-cnn", "float64")
    weights = random_weights(plan, "float64")
    trainer.set_weights(weights)
    seen = {}

    def capture(name):
        def hook(module, args, out):
            seen[name] = (args[0].detach().numpy().copy(), out.detach().numpy().copy())

        return hook

    hooks = [trainer.model.layers[layer.name].register_forward_hook(capture(layer.name))
             for layer in plan if isinstance(layer, P.BatchNormalization)]
    x, y = data(batch_size)
    trainer.load_training_data(x, y)
    stats = trainer.train_epoch([np.arange(batch_size)], np.array([1e-3]))
    for hook in hooks:
        hook.remove()
    assert np.all(np.isfinite(stats.loss))
    got = trainer.get_weights()
    for layer in plan:
        if not isinstance(layer, P.BatchNormalization):
            continue
        inputs, outputs = seen[layer.name]  # (N, C) or (N, C, H, W)
        axes = (0,) if inputs.ndim == 2 else (0, 2, 3)
        mean, var = inputs.mean(axis=axes), ((inputs - inputs.mean(axis=axes, keepdims=True)) ** 2).mean(axis=axes)
        m, name = layer.momentum, layer.name
        assert error(got[f"{name}/mean"], m * weights[f"{name}/mean"] + (1 - m) * mean) <= 1e-12, f"{name}/mean"
        assert error(got[f"{name}/variance"], m * weights[f"{name}/variance"] + (1 - m) * var) <= 1e-12, f"{name}/variance"
        shape = (1, -1) + (1,) * (inputs.ndim - 2)
        r = lambda v: v.reshape(shape)  # noqa: E731
        expected = r(weights[f"{name}/scale"]) * (inputs - r(mean)) / np.sqrt(r(var) + layer.epsilon) + r(weights[f"{name}/offset"])
        assert error(outputs, expected) <= 1e-12, f"{name} train-mode output"


def test_each_step_uses_its_own_learning_rate():
    """[lr, 0, 0] in one epoch ends where [lr] does, and [0, 0, lr] does not: rate i drives step i."""
    x, y = data(24)
    batches = [np.arange(0, 8), np.arange(8, 16), np.arange(16, 24)]
    results = {}
    for label, rates, steps in (("first", [0.05, 0.0, 0.0], batches), ("alone", [0.05], batches[:1]), ("last", [0.0, 0.0, 0.05], batches)):
        trainer, _, _ = make("mlp-relu-adam", "float64", TINY_MLP)
        trainer.load_training_data(x, y)
        trainer.train_epoch(steps, np.array(rates))
        results[label] = trainer.get_weights()
    assert all(np.array_equal(results["first"][k], v) for k, v in results["alone"].items())
    assert not np.array_equal(results["first"]["dense_0/kernel"], results["last"]["dense_0/kernel"])


@pytest.mark.parametrize("preset", PRESETS)
def test_nan_inputs_give_a_non_finite_loss(preset):
    trainer, _, _ = make(preset, "float32")
    x, y = data(8)
    x[3, 10, 10, 0] = np.nan
    trainer.load_training_data(x, y)
    stats = trainer.train_epoch([np.arange(8)], np.array([1e-3]))
    assert stats.loss.dtype == np.float64 and stats.correct.dtype == np.int64
    assert not np.all(np.isfinite(stats.loss))


@pytest.mark.parametrize("preset", PRESETS)
def test_short_training_lowers_the_loss(preset, digits):
    """Twenty steps on one random batch, then three epochs over 256 real digits: the train loss falls."""
    trainer, _, _ = make(preset, "float32")
    x, y = data(32)
    trainer.load_training_data(x.astype(np.float32), y.astype(np.float32))
    fixed = trainer.train_epoch([np.arange(32)] * 20, np.full(20, 1e-3))
    assert fixed.loss[-5:].mean() < fixed.loss[:5].mean(), f"{preset}: {fixed.loss}"
    x, y = digits[0][:256].astype(np.float32), digits[1][:256].astype(np.float32)
    trainer.load_training_data(x, y)
    order = np.random.default_rng(0).permutation(256)
    batches = [order[i : i + 32] for i in range(0, 256, 32)]
    epochs = [trainer.train_epoch(batches, np.full(len(batches), 1e-3)) for _ in range(3)]
    assert epochs[-1].loss.mean() < epochs[0].loss.mean(), f"{preset}: {[e.loss.mean() for e in epochs]}"
    assert epochs[-1].correct.sum() > epochs[0].correct.sum()
    assert all(e.correct.dtype == np.int64 and e.correct.max() <= 32 for e in epochs)


def test_provenance_records_the_settings_applied():
    """Two intra-op threads, deterministic algorithms, CPU, float32 matmuls at full precision (two dtypes in one
    process: tests/test_backends.py::test_float32_and_float64_trainers_coexist_in_one_process)."""
    t32, _, _ = make("mlp-relu-adam", "float32", TINY_MLP, threads=2)
    settings = t32.settings()
    assert settings["threads"] == settings["threads_requested"] == 2 and settings["deterministic"] is True and settings["device"] == "cpu"
    assert settings["dtype"] == "float32" and settings["float32_matmul_precision"] == "highest"
    assert t32.versions() == {"torch": torch.__version__}


def entry(kind, table):
    return TypeAdapter(kind).validate_python(table)


def test_prelu_alpha_round_trips_and_is_trained():
    """Per-channel alpha in a CNN (channel dim 1) and shared alpha in a dense block: canonical `<layer>/alpha`,
    initial_value at construction, exact get/set, counted as trainable, moved by a step and used by the forward."""
    trainer, _, plan = make("seed-cnn", "float64", CATALOG_CNN)
    info = parameter_info(plan)
    alphas = [name for name in info if name.endswith("/alpha")]
    assert [info[name].shape for name in alphas] == [(3,), (1,)] and all(info[name].trainable for name in alphas)
    assert trainer.parameter_count() == trainable_parameter_count(plan)
    initial = trainer.get_weights()
    assert np.all(initial[alphas[0]] == 0.2) and np.all(initial[alphas[1]] == 0.1)
    weights = random_weights(plan, "float64")
    weights[alphas[0]] = np.array([-0.25, 0.0, 0.5])
    trainer.set_weights(weights)
    assert all(np.array_equal(trainer.get_weights()[name], weights[name]) for name in alphas)
    x, y = data(8)
    logits = trainer.predict_logits(x, 8)
    changed = dict(weights, **{alphas[0]: np.array([-0.25, 0.3, 0.5])})  # only the second channel's slope
    trainer.set_weights(changed)
    assert not np.array_equal(trainer.predict_logits(x, 8), logits)
    trainer.set_weights(weights)
    trainer.load_training_data(x, y)
    trainer.train_epoch([np.arange(8)], np.array([0.1]))
    after = trainer.get_weights()
    assert all(not np.array_equal(after[name], weights[name]) for name in alphas), "alpha is trained"


def test_maxout_groups_consecutive_channels_and_sends_the_gradient_to_the_first_maximum():
    """Canonical (N, H, W, C) input: groups are consecutive channels of the last axis (NCHW dim 1 inside);
    ties (every group below has them) send the whole cotangent to the first maximum."""
    act = entry(Activation, {"name": "maxout", "pieces": 3})
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (2, 3, 4, 6)).astype(np.float64)  # small integers: many ties
    cotangent = rng.normal(size=(2, 3, 4, 2))
    for dtype in DTYPES:
        y, dx, _ = ops.activation_vjp(act, x.astype(dtype), cotangent.astype(dtype), dtype)
        groups = x.reshape(2, 3, 4, 2, 3)
        first = groups.argmax(axis=-1)  # NumPy's argmax: the first maximum
        expected = np.zeros_like(groups)
        np.put_along_axis(expected, first[..., None], cotangent[..., None], axis=-1)
        assert y.dtype == np.dtype(dtype) and np.array_equal(y, groups.max(axis=-1))
        assert np.array_equal(dx, expected.reshape(x.shape).astype(dtype))


def test_rrelu_draws_fresh_slopes_per_step_in_training_and_uses_the_mean_in_eval():
    """In the Trainer: slopes of negative inputs lie in [lower, upper], differ between steps and come from
    the trainer's seeded generator (same seed, same slopes); eval mode is leaky_relu with (lower + upper) / 2."""
    overrides = ['model.hidden=[{units=64, activation={name="rrelu", lower=0.1, upper=0.3}}]', "seed=5"]
    trainers = [make("mlp-relu-adam", "float64", overrides)[0] for _ in range(2)]
    seen = {0: [], 1: []}
    for index, trainer in enumerate(trainers):
        module = trainer.model.layers["activation_0"]
        assert isinstance(module, RReLU)
        module.register_forward_hook(
            lambda m, args, out, i=index: seen[i].append((args[0].detach().numpy().copy(), out.detach().numpy().copy())))
        x, y = data(16)
        trainer.load_training_data(x, y)
        trainer.train_epoch([np.arange(16), np.arange(16)], np.array([0.0, 0.0]))
        trainer.predict_logits(x, 16)
    slopes = []
    for inputs, outputs in seen[0][:2]:
        negative = inputs < 0
        assert np.array_equal(outputs[~negative], inputs[~negative])
        slope = outputs[negative] / inputs[negative]
        assert 0.1 <= slope.min() and slope.max() <= 0.3 and slope.std() > 0.03
        slopes.append(slope)
    assert not np.allclose(slopes[0], slopes[1]), "fresh slopes every step"
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(seen[0], seen[1])), "seeded from spec.seed"
    inputs, outputs = seen[0][2]
    np.testing.assert_array_equal(outputs, np.where(inputs > 0, inputs, 0.2 * inputs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_derivatives_at_the_kinks_are_the_catalogs(dtype):
    """relu 0, leaky/prelu/rrelu (eval) the slope, elu alpha and selu scale * alpha at x = 0; hard_sigmoid
    0 at +-3 and exactly 1/6 between (F.hardsigmoid uses a float32 1/6); softplus beta x > 20 is not x."""
    x = np.array([[0.0, -3.0, 3.0, 1.0, 25.0]])
    ones = np.ones_like(x)
    expected = {
        "relu": 0.0, "leaky_relu": 0.2, "rrelu": 0.2, "prelu": 0.3, "elu": 0.7, "selu": SELU_SCALE * SELU_ALPHA,
    }
    tables = {"relu": {}, "leaky_relu": {"negative_slope": 0.2}, "rrelu": {"lower": 0.1, "upper": 0.3},
              "prelu": {"initial_value": 0.3, "per_channel": False}, "elu": {"alpha": 0.7}, "selu": {}}
    for name, table in tables.items():
        _, dx, _ = ops.activation_vjp(entry(Activation, {"name": name, **table}), x.astype(dtype), ones.astype(dtype), dtype)
        assert dx[0, 0] == np.asarray(expected[name], dtype), name
    _, dx, _ = ops.activation_vjp(entry(Activation, "hard_sigmoid"), x.astype(dtype), ones.astype(dtype), dtype)
    assert dx[0, 1] == dx[0, 2] == 0.0 and dx[0, 0] == dx[0, 3] == np.asarray(1.0, dtype) / 6
    y, _, _ = ops.activation_vjp(entry(Activation, "softplus"), x.astype(dtype), ones.astype(dtype), dtype)
    if dtype == "float64":
        assert y[0, 4] == np.logaddexp(25.0, 0.0) != 25.0


def test_clipping_scales_by_c_over_the_norm_without_torchs_epsilon():
    """||g|| = 2 over two tensors, c = 1: the step uses exactly g / 2 (clip_grad_norm_ would use g / (2 + 1e-6));
    c = 3 leaves g alone; a zero gradient stays zero (c / 0 clamps to 1)."""
    params = {"a": np.array([[1.0, -1.0]]), "b": np.array([0.5])}
    grads = [{"a": np.array([[1.2, 0.0]]), "b": np.array([-1.6])}, {"a": np.zeros((1, 2)), "b": np.zeros(1)}]
    for c, scale in ((1.0, 0.5), (3.0, 1.0)):
        optimizer = entry(Optimizer, {"name": "sgd", "learning_rate": 1.0, "clip_global_norm": c})
        first, second = ops.optimizer_steps(optimizer, params, grads, [1.0, 1.0], "float64")
        for name in params:
            np.testing.assert_array_equal(first[name], params[name] - scale * grads[0][name])
            np.testing.assert_array_equal(second[name], first[name])
    assert grads[0]["b"][0] == -1.6, "the caller's gradients are not modified"
    # In the Trainer, the pre-hook clips the very gradients the step uses: an SGD step with c = 1e-3
    # moves the trainable weights by exactly lr * c in global norm.
    trainer, _, plan = make("mlp-relu-adam", "float64", TINY_MLP + ['optimizer={name="sgd", learning_rate=0.1, clip_global_norm=1e-3}'])
    x, y = data(8)
    trainer.load_training_data(x, y)
    before = trainer.get_weights()
    trainer.train_epoch([np.arange(8)], np.array([0.5]))
    after = trainer.get_weights()
    moved = np.sqrt(sum(np.sum((after[k] - before[k]) ** 2) for k in before))
    assert abs(moved - 0.5 * 1e-3) <= 1e-15


NADAM_BUILTIN_DISPLACEMENT = 5e-8
"""torch.optim.NAdam against the catalog, in float64: normwise relative error of the displacement
w_t - w_0 over six steps. Its only difference is prod mu_t kept in float32 (relative rounding
2^-24 = 6e-8 per product, divided down by the bias correction 1 - prod mu_t): measured 1.2e-8 at
step one falling to 4.5e-9 at step six (8e-11 on the weights themselves); 5e-8 leaves a 4x margin,
and a real formula difference (a momentum_decay or epsilon placed differently) is 1e-3 or more."""


def test_nadam_is_written_out_because_torch_keeps_its_momentum_product_in_float32():
    """torch.optim.NAdam stores prod mu_t in a default-dtype (float32) tensor: its displacement is off
    the catalog by float32 rounding (above 1e-10, at most NADAM_BUILTIN_DISPLACEMENT) in float64;
    the suite's NAdam matches the oracle to rounding."""
    table = {"name": "nadam", "learning_rate": 0.01, "epsilon": 1e-8, "momentum_decay": 0.004}
    rng = np.random.default_rng(2)
    params = {"w": rng.normal(size=(4, 3))}
    grads = [{"w": rng.normal(size=(4, 3))} for _ in range(6)]
    rates = [0.01] * 6
    want = oracle_ops.optimizer_steps(entry(Optimizer, table), params, grads, rates, "float64")
    w = torch.nn.Parameter(torch.tensor(params["w"]))
    builtin = torch.optim.NAdam([w], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=0.004, foreach=False)
    errors = []
    for g, reference in zip(grads, want):
        w.grad = torch.tensor(g["w"])
        builtin.step()
        errors.append(error(w.detach().numpy() - params["w"], reference["w"] - params["w"]))
    assert builtin.state[w]["mu_product"].dtype == torch.float32
    assert 1e-10 < max(errors) <= NADAM_BUILTIN_DISPLACEMENT, f"displacement errors {[f'{e:.1e}' for e in errors]}"
    got = ops.optimizer_steps(entry(Optimizer, table), params, grads, rates, "float64")
    assert max(error(g["w"], w["w"]) for g, w in zip(got, want)) <= 1e-14
    assert isinstance(make_optimizer(entry(Optimizer, table), [torch.nn.Parameter(torch.zeros(1))]), NAdam)


def test_forward_only_activations_build_and_predict():
    """step and sign (hidden) and a step output: the model builds and predicts like the oracle; no
    gradient flows through step; a categorical loss of a step output is refused when computed."""
    overrides = ['model.hidden=[{units=12, activation="tanh", post_activation="sign"}, {units=8, activation="step"}]',
                 'model.output_activation="step"']
    trainer, _, plan = make("mlp-relu-adam", "float64", overrides)
    weights = random_weights(plan, "float64")
    trainer.set_weights(weights)
    x, y = data(6)
    assert error(trainer.predict_logits(x, 6), oracle_forward(plan, weights, x)) <= 1e-12
    _, dx, _ = ops.activation_vjp(entry(Activation, "step"), x[:, :, 0, 0] - 0.5, np.ones((6, 28)), "float64")
    assert not dx.any()
    with pytest.raises(ValueError, match="forward-only"):
        trainer.evaluate(x, y, 6)


def test_framework_defaults_are_read_from_torch(capsys):
    """Catalog names, torch's values (its own conventions, e.g. batch-norm momentum 0.1), JSON on stdout."""
    import json

    rows = framework_defaults()
    table = {(r["entry"], r["parameter"]): r for r in rows}
    assert all(set(r) == {"entry", "parameter", "value", "source"} for r in rows)
    expected = {
        ("leaky_relu", "negative_slope"): 0.01, ("prelu", "initial_value"): 0.25, ("prelu", "per_channel"): False,
        ("rrelu", "lower"): 0.125, ("rrelu", "upper"): 1.0 / 3.0, ("elu", "alpha"): 1.0, ("softplus", "threshold"): 20.0,
        ("gelu", "approximate"): "none", ("batch_norm", "momentum"): 0.1, ("batch_norm", "epsilon"): 1e-5,
        ("conv2d", "padding"): 0, ("max_pool", "stride"): None, ("dense", "dropout"): 0.5,
        ("rmsprop", "rho"): 0.99, ("adagrad", "initial_accumulator_value"): 0, ("adagrad", "epsilon"): 1e-10,
        ("adamw", "weight_decay"): 0.01, ("nadam", "momentum_decay"): 0.004, ("adam", "beta_2"): 0.999,
        ("kl_divergence", "reduction"): "mean", ("categorical_crossentropy", "label_smoothing"): 0.0,
    }
    assert {key: table[key]["value"] for key in expected} == expected
    assert "alpha" in table[("rmsprop", "rho")]["source"]
    assert table[("dense", "kernel_init")]["value"] == "kaiming_uniform_(a=math.sqrt(5))"
    assert "1e-6" in table[("adam", "clip_global_norm")]["source"]
    assert abs(table[("selu", "alpha")]["value"] - SELU_ALPHA) < 1e-15 and table[("selu", "scale")]["value"] == SELU_SCALE
    assert {r["entry"] for r in rows} >= set(OPTIMIZERS) | set(LOSSES)
    defaults_main()
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(rows))


# The parity ladder's four capabilities (layer_outputs, loss_and_gradients with injected noise,
# optimizer_state, train_epoch with injected noise) against the NumPy oracle, float64.
RRELU_CNN = [  # rrelu on an NCHW map (slopes permuted from NHWC) and on (N, F); dropout on a map and on features
    'model.conv=[{filters=3, kernel_size=3, padding="same", activation={name="rrelu", lower=0.1, upper=0.4},'
    ' batch_norm={momentum=0.9, epsilon=1e-3}, pool={size=2, stride=2, padding="same"}, dropout=0.25},'
    ' {filters=4, kernel_size=3, padding="valid", activation="tanh", pool={size=2, stride=2, padding="same"}}]',
    'model.hidden=[{units=6, activation={name="rrelu", lower=0.2, upper=0.3}, dropout=0.5}]',
]
NOISY_MLP = ['model.hidden=[{units=12, activation={name="rrelu", lower=0.1, upper=0.3}, dropout=0.5}, {units=7, activation="tanh"}]']
LADDER_CASES = {"mlp-relu-adam": ("mlp-relu-adam", []), "seed-cnn": ("seed-cnn", []), "rrelu-cnn": ("seed-cnn", RRELU_CNN)}



def ladder_pair(preset: str, overrides=()) -> tuple[Trainer, OracleTrainer, object]:
    """A float64 torch trainer and the oracle on the same weights (random, non-trivial batch-norm statistics)."""
    trainer, spec, plan = make(preset, "float64", overrides)
    oracle = OracleTrainer(spec, plan, 1)
    oracle.set_weights(random_weights(plan, "float64"))
    trainer.set_weights(oracle.get_weights())
    return trainer, oracle, plan


@pytest.mark.parametrize("case", LADDER_CASES)
def test_layer_outputs_match_the_oracle_in_canonical_layout(case):
    """Every plan layer, eval mode: NCHW maps come back NHWC and the flatten in (H, W, C) order."""
    trainer, oracle, plan = ladder_pair(*LADDER_CASES[case])
    x = data(3)[0]
    got = trainer.layer_outputs(x)
    _, want = oracle_forward(plan, oracle.get_weights(), x, outputs=True)
    assert list(got) == [layer.name for layer in plan] == list(want)
    for name in want:
        assert got[name].dtype == np.float64 and error(got[name], want[name]) <= 1e-12, f"{case} {name}"
    t32, _, _ = make("mlp-relu-adam", "float32")
    assert {v.dtype for v in t32.layer_outputs(x.astype(np.float32)).values()} == {np.dtype("float32")}


@pytest.mark.parametrize("case", LADDER_CASES)
def test_loss_and_gradients_match_the_oracle_and_change_nothing(case):
    """The oracle's own dropout masks and rrelu slopes injected: mean loss and every trainable gradient
    (canonical layout) equal the oracle's; weights, running statistics, .grad, the optimizer and the
    trainer's generator are untouched, so a second call gives the same bits."""
    trainer, oracle, plan = ladder_pair(*LADDER_CASES[case])
    x, y = data(4)
    noise = oracle.training_noise(4)
    assert set(noise) == {layer.name for layer in plan if isinstance(layer, P.Dropout)
                          or (isinstance(layer, P.Activation) and layer.activation.name == "rrelu")}
    before, generator = trainer.get_weights(), trainer.generator.get_state()
    loss, grads = trainer.loss_and_gradients(x, y, noise)
    want_loss, want = oracle.loss_and_gradients(x, y, noise)
    assert isinstance(loss, float) and error(loss, want_loss) <= 1e-12
    assert list(grads) == [name for name, info in parameter_info(plan).items() if info.trainable] and set(grads) == set(want)
    scale = group_scale(want.values())
    for name in want:
        assert error(grads[name], want[name], scale) <= 1e-10, f"{case} {name}: {error(grads[name], want[name], scale):.1e}"
    after = trainer.get_weights()
    assert all(np.array_equal(after[name], value) for name, value in before.items()), "weights and running statistics"
    assert torch.equal(trainer.generator.get_state(), generator), "injected noise draws nothing"
    assert all(p.grad is None for p in trainer.model.parameters()) and not trainer.optimizer.state
    assert trainer.optimizer_state() == {}
    again = trainer.loss_and_gradients(x, y, noise)
    assert again[0] == loss and all(np.array_equal(again[1][k], v) for k, v in grads.items())
    if noise:  # without noise the trainer draws its own (and still changes no weight)
        trainer.loss_and_gradients(x, y)
        assert not torch.equal(trainer.generator.get_state(), generator)
        assert all(np.array_equal(trainer.get_weights()[name], value) for name, value in before.items())
    with pytest.raises(ValueError, match="noise"):
        trainer.loss_and_gradients(x, y, {**noise, "nope": np.ones(4)})


STATE_CASES = {
    "sgd": 'optimizer={name="sgd", learning_rate=0.1}',
    "sgd-momentum": 'optimizer={name="sgd", learning_rate=0.1, momentum=0.9}',
    "adagrad": 'optimizer={name="adagrad", learning_rate=0.1, initial_accumulator_value=0.1, epsilon=1e-7}',
    "adam": 'optimizer={name="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7}',
    "rmsprop-centered-momentum": 'optimizer={name="rmsprop", learning_rate=0.01, rho=0.9, epsilon=1e-7, momentum=0.5, centered=true}',
    "adadelta": 'optimizer={name="adadelta", learning_rate=1.0, rho=0.95, epsilon=1e-6}',
    "adamax": 'optimizer={name="adamax", learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7}',
    "nadam": 'optimizer={name="nadam", learning_rate=0.01, epsilon=1e-8, momentum_decay=0.004}',
}


@pytest.mark.parametrize("case", STATE_CASES)
def test_noisy_steps_match_the_oracles_weights_and_optimizer_state(case):
    """Two train_epoch steps with the oracle's masks and slopes injected (rrelu + dropout MLP): after each,
    every weight and every slot of optimizer_state (the contract's names, only the used slots, canonical
    layout: dense kernels (in, out)) equal the oracle's; {} before the first step; no generator draw."""
    trainer, oracle, plan = ladder_pair("mlp-relu-adam", NOISY_MLP + [STATE_CASES[case]])
    assert trainer.optimizer_state() == {} == oracle.optimizer_state()
    x, y = data(12)
    trainer.load_training_data(x, y)
    oracle.load_training_data(x, y)
    generator = trainer.generator.get_state()
    for step, (batch, rate) in enumerate(zip([np.arange(0, 8), np.array([11, 0, 5, 3, 2, 9, 8, 1])], [0.1, 0.03]), start=1):
        noise = [oracle.training_noise(len(batch))]
        stats = trainer.train_epoch([batch], np.array([rate]), noise)
        expected = oracle.train_epoch([batch], np.array([rate]), noise)
        assert error(stats.loss, expected.loss) <= 1e-12 and np.array_equal(stats.correct, expected.correct)
        got, want = trainer.get_weights(), oracle.get_weights()
        scale = group_scale(want.values())
        for name in want:
            assert error(got[name], want[name], scale) <= 1e-12, f"{case} step {step}: {name}"
        state, reference = trainer.optimizer_state(), oracle.optimizer_state()
        slot_scale = {slot: group_scale(s[slot] for s in reference.values() if slot in s) for s in reference.values() for slot in s}
        assert list(state) == [name for name, info in parameter_info(plan).items() if info.trainable]
        assert set(state) == set(reference)
        for name, slots in reference.items():
            assert set(state[name]) == set(slots), f"{case}: {name} slots {sorted(state[name])} != {sorted(slots)}"
            for slot, value in slots.items():
                assert state[name][slot].shape == value.shape
                assert error(state[name][slot], value, slot_scale[slot]) <= 1e-12, f"{case} step {step}: {name}/{slot}"
    assert torch.equal(trainer.generator.get_state(), generator)


def test_three_noisy_seed_cnn_steps_match_the_oracle():
    """The seed CNN (dropout on maps and features, batch norm, Adam) for three steps with the oracle's masks:
    losses, every weight and running statistic, and Adam's m and v agree to 1e-9.

    Adam's epsilon is 1e-3 here, not the preset's 1e-7: a gradient entry g near epsilon moves by
    lr g / (|g| + eps), which turns a rounding-level difference in g (1e-12 absolute in this CNN) into
    lr / eps = 1e4 times that in the weight (5e-9 by step three); the formula is the same either way."""
    trainer, oracle, plan = ladder_pair("seed-cnn", ['optimizer={name="adam", learning_rate=1e-3, epsilon=1e-3}'])
    initial = oracle.get_weights()
    x, y = data(10)
    trainer.load_training_data(x, y)
    oracle.load_training_data(x, y)
    batches = [np.arange(0, 4), np.arange(4, 8), np.array([9, 2, 7, 0])]
    noise = [oracle.training_noise(len(batch)) for batch in batches]
    rates = np.array(LEARNING_RATES) / 100
    stats, expected = trainer.train_epoch(batches, rates, noise), oracle.train_epoch(batches, rates, noise)
    assert error(stats.loss, expected.loss) <= 1e-9 and np.array_equal(stats.correct, expected.correct)
    got, want = trainer.get_weights(), oracle.get_weights()
    scale = group_scale(want.values())
    for name in want:
        assert error(got[name], want[name], scale) <= 1e-9, f"{name}: {error(got[name], want[name], scale):.1e}"
    assert min(error(got[name], initial[name]) for name in want) > 1e-6, "every weight and statistic moved"
    state, reference = trainer.optimizer_state(), oracle.optimizer_state()
    assert set(state) == set(reference)
    slot_scale = {slot: group_scale(s[slot] for s in reference.values() if slot in s) for s in reference.values() for slot in s}
    for name, slots in reference.items():
        for slot, value in slots.items():
            assert error(state[name][slot], value, slot_scale[slot]) <= 1e-9, f"{name}/{slot}"
