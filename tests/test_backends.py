"""The backend contract (backends.base), tested once for every backend: against the plan and the NumPy oracle, and
the neutral half's checks with their exact words, parametrized backend x preset x dtype or backend x case. The
per-backend files (test_backend_<name>.py) keep only their framework's traps."""

import math
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

import backends
from backends import BACKENDS, load_trainer
from backends.base import Trainer
from backends.numpy.model import forward
from experiments.catalog import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, OUTPUT_ACTIVATIONS
from experiments.catalog.initializers import Distribution
from experiments.compare import relative_error
from experiments.data import load_dataset, to_model_inputs
from experiments.noise import draw_noise, noise_generator
from experiments.spec import build_plan, load_spec, parameter_info, trainable_parameter_count
from experiments.spec import plan as P
from experiments.spec.plan import fans
from experiments.verify.tolerances import FORWARD_AGAINST_ORACLE
from tests.backend_helpers import check_sample
from tests.conftest import make_trainer

PRESETS = ["mlp-relu-adam", "seed-cnn", "seed-mlp-sigmoid", "seed-mlp-relu"]
DTYPES = ["float32", "float64"]


def random_canonical_weights(plan, seed=0):
    """Weights with non-trivial batch-norm statistics, in float64."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, info in parameter_info(plan).items():
        if name.endswith("/variance"):
            weights[name] = rng.uniform(0.5, 1.5, info.shape)
        elif name.endswith("/scale"):
            weights[name] = rng.uniform(0.5, 1.5, info.shape)
        else:
            fan = np.prod(info.shape[:-1]) if len(info.shape) > 1 else 1
            weights[name] = rng.normal(0.0, 1.0 / np.sqrt(fan), info.shape) if len(info.shape) > 1 else rng.normal(0.0, 0.1, info.shape)
    return weights


@pytest.mark.parametrize("backend", BACKENDS)
def test_supported_is_the_whole_catalog(backend):
    """Every backend declares the whole catalog, and the same table as the oracle (which implements every layer)."""
    supported = backends.backend_package(backend).SUPPORTED
    assert supported["activations"] == set(ACTIVATIONS)
    assert supported["output_activations"] == set(OUTPUT_ACTIVATIONS)
    assert supported["losses"] == set(LOSSES)
    assert supported["optimizers"] == set(OPTIMIZERS)
    kinds = {INITIALIZERS[name](name=name).distribution(4, 4).kind for name in ("zeros", "glorot_uniform", "he_normal")}
    assert kinds <= supported["initializer_distributions"] == set(get_args(Distribution.__annotations__["kind"]))
    assert supported == backends.backend_package("numpy").SUPPORTED


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_parameter_count_matches_plan(backend, preset, dtype):
    """Count, names in plan order, shapes and dtype of get_weights as the plan fixes them (each framework's own
    tensors being spec.dtype is a per-backend trap test)."""
    trainer, plan = make_trainer(backend, preset, dtype)
    info = parameter_info(plan)
    assert trainer.parameter_count() == trainable_parameter_count(plan)
    assert trainer.dtype == np.dtype(dtype)
    weights = trainer.get_weights()
    assert list(weights) == list(info)
    assert {name: tuple(value.shape) for name, value in weights.items()} == {name: i.shape for name, i in info.items()}
    assert {value.dtype for value in weights.values()} == {np.dtype(dtype)}


FLOAT32_FLOOR = 1e-9
"""A float32 model's logits further than this from the float64 oracle (on the same float32 weights and inputs) show
float32 rounding: the backend really computed in float32, not in float64."""


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_matches_numpy_oracle(backend, preset, dtype, labelled_digits):
    """Eval-mode logits of real digits against the float64 oracle (backends/numpy/model.forward) on the same weights,
    a float32 model visibly in float32, and evaluate's loss and accuracy equal to the oracle trainer's."""
    trainer, plan = make_trainer(backend, preset, dtype)
    weights = {k: v.astype(dtype) for k, v in random_canonical_weights(plan).items()}
    trainer.set_weights(weights)
    x, y = (a[:16].astype(dtype) for a in labelled_digits)
    logits = trainer.predict_logits(x, 8)
    assert logits.dtype == np.dtype(dtype) and logits.shape == (16, 10)
    reference = forward(plan, weights, x)  # float64 oracle
    error = relative_error(logits, reference)
    tolerance = FORWARD_AGAINST_ORACLE[dtype]
    assert error <= tolerance, f"{backend} {preset} {dtype}: forward relative error {error:.3e} > {tolerance:.0e}"
    if dtype == "float32":
        assert error > FLOAT32_FLOOR, f"{backend} {preset}: a float32 trainer computed like float64 ({error:.1e})"
    oracle, _ = make_trainer("numpy", preset, dtype)
    oracle.set_weights(weights)
    (loss, accuracy), (ref_loss, ref_accuracy) = trainer.evaluate(x, y, 8), oracle.evaluate(x, y, 8)
    assert relative_error(loss, ref_loss) <= tolerance and accuracy == ref_accuracy, (loss, ref_loss, accuracy, ref_accuracy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_set_get_round_trip_is_bit_exact(backend, preset, dtype, digits):
    trainer, plan = make_trainer(backend, preset, dtype)
    weights = {k: v.astype(dtype) for k, v in random_canonical_weights(plan, seed=1).items()}
    trainer.set_weights(weights)
    back = trainer.get_weights()
    assert back.keys() == weights.keys()
    for name, value in weights.items():
        assert back[name].dtype == np.dtype(dtype) and np.array_equal(back[name], value), f"{backend} {name}"
    x = digits[:3].astype(dtype)
    logits = trainer.predict_logits(x, 3)
    back[next(iter(back))][...] = 7.0  # get_weights hands out copies
    weights[next(iter(weights))][...] = 7.0  # and set_weights keeps its own
    assert not np.any(trainer.get_weights()[next(iter(back))] == 7.0)
    for name in (f"{plan[-1].name}/bias", next(n for n in weights if n.endswith("/kernel"))):
        changed = dict(trainer.get_weights())
        changed[name] = changed[name] + np.asarray(0.25, dtype)
        trainer.set_weights(changed)
        assert not np.array_equal(trainer.predict_logits(x, 3), logits), f"{backend}: changing {name} changes nothing"


@pytest.mark.parametrize("fault", ["missing", "unknown", "shape"])
@pytest.mark.parametrize("preset", ["mlp-relu-adam", "seed-cnn"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_set_weights_rejects_before_copying(backend, preset, fault):
    trainer, plan = make_trainer(backend, preset, "float64")
    before = trainer.get_weights()
    bad = random_canonical_weights(plan, seed=2)
    last = list(bad)[-1]
    shape = bad[last].shape
    if fault == "missing":
        del bad[last]
    elif fault == "unknown":
        bad["extra/kernel"] = np.zeros((1, 1))
    else:
        bad[last] = np.zeros(shape + (1,))
    expected = {  # one wording on every backend (backends.base.check_names_and_shapes)
        "missing": f"set_weights: missing ['{last}'], unexpected []",
        "unknown": "set_weights: missing [], unexpected ['extra/kernel']",
        "shape": f"set_weights: wrong shapes {last} {shape + (1,)} (expected {shape})",
    }[fault]
    with pytest.raises(ValueError) as raised:
        trainer.set_weights(bad)
    assert str(raised.value) == expected
    after = trainer.get_weights()
    assert all(np.array_equal(after[name], before[name]) for name in before), f"{backend} changed weights before failing"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_initial_weights_follow_the_catalog(backend, preset, dtype):
    """Each backend draws every parameter from the spec's distribution with its own stream."""
    trainer, plan = make_trainer(backend, preset, dtype)
    weights = trainer.get_weights()
    for layer in plan:
        if isinstance(layer, P.BatchNormalization):
            for parameter, value in (("scale", 1.0), ("offset", 0.0), ("mean", 0.0), ("variance", 1.0)):
                assert np.all(weights[f"{layer.name}/{parameter}"] == value), f"{backend} {layer.name}/{parameter}"
        if not isinstance(layer, (P.Dense, P.Conv2D)):
            continue
        kernel_fans = fans(weights[f"{layer.name}/kernel"].shape)
        for parameter, entry in (("kernel", layer.kernel_init), ("bias", layer.bias_init)):
            w = weights[f"{layer.name}/{parameter}"].astype(np.float64)
            check_sample(w, entry.distribution(*kernel_fans), f"{backend} {layer.name}/{parameter} ({entry.name})")


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_epoch_rejects_bad_arguments(backend):
    trainer, _ = make_trainer(backend, "mlp-relu-adam", "float64")
    batches = [np.arange(4), np.arange(4, 8)]
    with pytest.raises(RuntimeError, match="call load_training_data first"):
        trainer.train_epoch(batches, np.array([0.1, 0.1]))
    rng = np.random.default_rng(0)
    trainer.load_training_data(rng.random((8, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, 8)])
    with pytest.raises(ValueError, match="2 batches but learning_rates has shape"):
        trainer.train_epoch(batches, np.array([0.1]))
    with pytest.raises(ValueError, match="2 batches but 1 noise dicts"):
        trainer.train_epoch(batches, np.array([0.1, 0.1]), noise=[{}])
    outside = "train_epoch: batch 1 is not a non-empty 1-d integer array of indices into the 8 training samples"
    for bad in (np.arange(5, 9), np.arange(-1, 3), np.array([], dtype=np.int64), np.arange(4) + 0.0, np.arange(4).reshape(2, 2)):
        with pytest.raises(ValueError) as raised:  # the same words on every backend
            trainer.train_epoch([np.arange(4), bad], np.array([0.1, 0.1]))
        assert str(raised.value) == outside, bad
    with pytest.raises(ValueError) as raised:
        trainer.train_epoch([np.arange(3), np.arange(4), np.arange(2)], np.array([0.1, 0.1, 0.1]))
    assert str(raised.value) == "train_epoch: all batches but the last must have the same length"


APPLY_STEPS_TOLERANCE = 1e-12
"""apply_gradients against the oracle in float64: the same elementwise formulas on the same inputs."""


@pytest.mark.parametrize("preset", ["mlp-relu-adam", "seed-cnn"])
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_apply_gradients_matches_the_oracle(backend, preset):
    trainer, plan = make_trainer(backend, preset, "float64")
    oracle, _ = make_trainer("numpy", preset, "float64")
    weights = random_canonical_weights(plan)
    trainer.set_weights(weights)
    oracle.set_weights(weights)
    rng = np.random.default_rng(1)
    trainable = {n: i.shape for n, i in parameter_info(plan).items() if i.trainable}
    for step in range(2):
        grads = {name: rng.normal(0.0, 10.0 ** -rng.integers(1, 8), shape) for name, shape in trainable.items()}
        trainer.apply_gradients(grads, 1e-3 * (step + 1))
        oracle.apply_gradients(grads, 1e-3 * (step + 1))
    got, expected = trainer.get_weights(), oracle.get_weights()
    assert max(relative_error(got[n], expected[n]) for n in expected) <= APPLY_STEPS_TOLERANCE
    for name, slots in oracle.optimizer_state().items():
        for slot, value in slots.items():
            assert relative_error(trainer.optimizer_state()[name][slot], value) <= APPLY_STEPS_TOLERANCE, (name, slot)


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_gradients_rejects_wrong_names_and_shapes(backend):
    trainer, plan = make_trainer(backend, "mlp-relu-adam", "float64")
    before = trainer.get_weights()
    grads = {n: np.zeros(i.shape) for n, i in parameter_info(plan).items() if i.trainable}
    first = next(iter(grads))
    with pytest.raises(ValueError) as raised:
        trainer.apply_gradients({k: v for k, v in list(grads.items())[1:]}, 0.1)
    assert str(raised.value) == f"apply_gradients: missing ['{first}'], unexpected []"
    with pytest.raises(ValueError) as raised:
        trainer.apply_gradients({**grads, first: np.zeros((3,))}, 0.1)
    assert str(raised.value) == f"apply_gradients: wrong shapes {first} (3,) (expected {grads[first].shape})"
    assert all(np.array_equal(v, trainer.get_weights()[k]) for k, v in before.items())
    assert trainer.optimizer_state() == {}


BATCH_STATISTICS_TOLERANCE = {"float64": 2e-15, "float32": 1e-6}
"""Train-mode batch norm over 64 x 28 x 28 values per channel against a float128 reference. The
frameworks' own kernels missed these (torch F.batch_norm float64 2.2e-13; Keras/TF moments
float64 1.0e-13, float32 8.2e-5 in the variance), so each backend reduces accurately."""


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_statistics_are_accurate(backend, dtype):
    # momentum 0: the running statistics after one step are the batch's own
    spec = load_spec("seed-cnn", [f'dtype="{dtype}"', "model.conv[0].batch_norm={momentum=0.0, epsilon=1e-3}"])
    plan = build_plan(spec.model, (28, 28, 1), 10)
    trainer = load_trainer(backend)(spec, plan, 2)
    rng = np.random.default_rng(0)
    x = (rng.random((64, 28, 28, 1)) + 3.0).astype(dtype)  # an offset mean makes a careless variance lose digits
    trainer.set_weights(random_canonical_weights(plan))
    before = trainer.get_weights()
    trainer.load_training_data(x, np.eye(10)[rng.integers(0, 10, 64)])
    trainer.train_epoch([np.arange(64)], np.array([0.0]), noise=None)
    conv_weights = {k: v.astype(dtype) for k, v in before.items() if k.startswith(plan[0].name)}
    h = np.maximum(forward(plan[:1], conv_weights, x, dtype=np.longdouble), 0)  # seed-cnn: conv -> relu -> batch_norm_0
    expected_mean = h.mean(axis=(0, 1, 2))
    expected_variance = ((h - expected_mean) ** 2).mean(axis=(0, 1, 2)).astype(np.float64)
    expected_mean = expected_mean.astype(np.float64)
    got = trainer.get_weights()
    tolerance = BATCH_STATISTICS_TOLERANCE[dtype]
    assert relative_error(got["batch_norm_0/mean"], expected_mean) <= tolerance
    assert relative_error(got["batch_norm_0/variance"], expected_variance) <= tolerance


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_float32_cnn_train_mode_gradients_match_the_oracle(backend):
    """seed-cnn in float32 on the ladder's batch of 64 real digits with the oracle's initial weights and one set of dropout
    masks: every gradient within the ladder's float32 tolerance (torch's fused F.batch_norm missed
    it by 5.5e-2)."""
    from experiments.spec.weights import initial_weights
    from experiments.noise import draw_noise, noise_generator
    from experiments.verify.tolerances import tolerance

    spec = load_spec("seed-cnn", ['dtype="float32"'])
    plan = build_plan(spec.model, (28, 28, 1), 10)
    from experiments.commands.verify import _probe_data
    from experiments.verify.probe import _first_batch

    x, y = _first_batch(spec, *_probe_data(spec, load_dataset("mnist-subset")))  # the ladder's batch
    noise = draw_noise(plan, noise_generator(0), 64, "float32")
    start = {k: v.astype("float32") for k, v in initial_weights(plan, 0).items()}
    results = {}
    for name in (backend, "numpy"):
        trainer = load_trainer(name)(spec, plan, 2)
        trainer.set_weights(start)
        results[name] = trainer.loss_and_gradients(x, y, noise)[1]
    worst = max((relative_error(results[backend][k], results["numpy"][k]), k) for k in results["numpy"])
    assert worst[0] <= tolerance("gradients", "float32"), worst


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluate_and_predict_check_their_arguments_alike(backend):
    """Every backend: no images predict to an empty (0, C) array; evaluate refuses no images, a count mismatch and a
    batch size below 1 with the same words (backends.base.check_eval_arguments)."""
    trainer, _ = make_trainer(backend, "mlp-relu-adam", "float32")
    x, y = np.zeros((4, 28, 28, 1), np.float32), np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    empty = trainer.predict_logits(x[:0], 100)
    assert empty.shape == (0, 10) and empty.dtype == np.float32
    for args, message in [((x[:0], y[:0], 100), "evaluate: 0 images and 0 labels; need the same, nonzero number"),
                          ((x, y[:3], 100), "evaluate: 4 images and 3 labels; need the same, nonzero number"),
                          ((x, y, 0), "evaluate: batch_size 0; must be a whole number of at least 1")]:
        with pytest.raises(ValueError) as raised:
            trainer.evaluate(*args)
        assert str(raised.value) == message
    with pytest.raises(ValueError) as raised:
        trainer.predict_logits(x, 0)
    assert str(raised.value) == "predict_logits: batch_size 0; must be a whole number of at least 1"
    assert trainer.predict_logits(x, 3).shape == (4, 10)  # a last partial batch


BAD_ARGUMENTS = {  # call on a float64 seed-cnn trainer (5 dropout layers) -> (exception, exact words on every backend)
    "images-shape": (lambda t, x, y, n: t.evaluate(x[:, :27], y, 8),
                     ValueError, "evaluate: images of shape (4, 27, 28, 1); expected (N, 28, 28, 1)"),
    "images-flat": (lambda t, x, y, n: t.layer_outputs(x.reshape(4, -1)),
                    ValueError, "layer_outputs: images of shape (4, 784); expected (N, 28, 28, 1)"),
    "labels-not-one-hot": (lambda t, x, y, n: t.load_training_data(x, y[:, :9]),
                           ValueError, "load_training_data: labels of shape (4, 9) for 4 images; expected one-hot (N, 10)"),
    "labels-count": (lambda t, x, y, n: t.loss_and_gradients(x, y[:3]),
                     ValueError, "loss_and_gradients: labels of shape (3, 10) for 4 images; expected one-hot (N, 10)"),
    "noise-not-a-dict": (lambda t, x, y, n: t.loss_and_gradients(x, y, [1]),
                         TypeError, "loss_and_gradients: noise must be a dict {layer name: array}, got list"),
    "noise-missing-layer": (lambda t, x, y, n: t.loss_and_gradients(x, y, {k: v for k, v in list(n.items())[1:]}),
                            ValueError, "loss_and_gradients: noise for layers ['dropout_1', 'dropout_2', 'dropout_3', 'dropout_4']; the "
                                        "plan's noisy layers are ['dropout_0', 'dropout_1', 'dropout_2', 'dropout_3', 'dropout_4']"),
    "noise-shape": (lambda t, x, y, n: t.loss_and_gradients(x, y, {**n, "dropout_3": n["dropout_3"][:2]}),
                    ValueError, "loss_and_gradients: noise dropout_3 has shape (2, 120); expected (4, 120)"),
    "train-noise-shape": (lambda t, x, y, n: (t.load_training_data(x, y), t.train_epoch([np.arange(4)], np.array([0.1]),
                                                                                    noise=[{**n, "dropout_0": n["dropout_0"][:, :3]}])),
                          ValueError, "train_epoch step 0: noise dropout_0 has shape (4, 3, 14, 32); expected (4, 14, 14, 32)"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_arguments_fail_alike(backend, case):
    """The neutral half (backends.base.Trainer) checks every argument once: same exception, same words everywhere."""
    call, exception, message = BAD_ARGUMENTS[case]
    trainer, plan = make_trainer(backend, "seed-cnn", "float64")
    x, y = np.zeros((4, 28, 28, 1)), np.eye(10)[[0, 1, 2, 3]]
    noise = draw_noise(plan, noise_generator(0), 4, "float64")
    with pytest.raises(exception) as raised:
        call(trainer, x, y, noise)
    assert str(raised.value) == message


class _UnknownOptimizer:
    name = "lion"
    learning_rate = 1e-3
    clip_global_norm = None


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unknown_optimizer_fails_alike(backend):
    spec = load_spec("mlp-relu-adam", [])
    spec = spec.model_copy(update={"optimizer": _UnknownOptimizer()})
    with pytest.raises(ValueError) as raised:
        load_trainer(backend)(spec, build_plan(spec.model, (28, 28, 1), 10), 1)
    assert str(raised.value) == ("optimizer 'lion': not in the catalog (sgd, momentum, nesterov, adagrad, rmsprop, adam, "
                                 "adamw, adadelta, adamax, nadam)")


EVALUATE_SUM_TOLERANCE = 1e-14
"""evaluate's mean loss against the exactly rounded (math.fsum) mean of the 1,000 per-sample losses it summed: a
float64 pairwise sum is within a few ulps (measured at most 2e-16); a float32 sum (what Keras and NumPy did) is
~1e-7 off, seven orders above."""


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluate_sums_the_per_sample_losses_in_float64(backend, mnist_subset):
    """float32 per-sample losses, summed in float64 on every backend (Keras and NumPy summed in float32), and the
    accuracy is the share of predict_logits' argmaxes that match."""
    trainer, _ = make_trainer(backend, "mlp-relu-adam", "float32")
    x, y = to_model_inputs(mnist_subset.x_test[:1000], mnist_subset.y_test[:1000], 10, "float32")  # 1,000 distinct digits
    logits, losses = trainer._eval_batches(x, y, 100)  # the framework's half: per-sample losses in float32
    assert losses.dtype == np.float32 and losses.shape == (1000,)
    exact = math.fsum(losses.astype(np.float64)) / 1000
    loss, accuracy = trainer.evaluate(x, y, 100)
    assert abs(loss - exact) <= EVALUATE_SUM_TOLERANCE * exact, f"{abs(loss - exact) / exact:.1e}"
    predicted = trainer.predict_logits(x, 100)
    assert accuracy == np.mean(predicted.argmax(1) == y.argmax(1)) and np.array_equal(predicted, logits)


BACKEND_MODULES = ["__init__.py", "activations.py", "defaults.py", "framework.py", "losses.py", "model.py", "ops.py",
                   "optimizers.py", "reference.py", "trainer.py", "weights.py"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_has_the_same_modules_and_a_trainer_on_the_base(backend):
    """One module map in every backend folder, and a Trainer that subclasses the abstract base (which owns the
    neutral half), so a maintainer finds the same concept under the same name in each."""
    folder = Path(backends.__file__).parent / backend
    assert sorted(path.name for path in folder.glob("*.py")) == BACKEND_MODULES
    trainer = load_trainer(backend)
    assert issubclass(trainer, Trainer) and not getattr(trainer, "__abstractmethods__", None)


BINARY_MLP = ['data.task="even_odd"', 'model.output_activation="sigmoid"', 'loss={name="binary_crossentropy", label_smoothing=0.1}',
              'model.hidden=[{units=6, activation={name="prelu", initial_value=0.25, per_channel=false}}]']
BINARY_LOSS_TOLERANCE = 1e-13
"""evaluate's float64 binary cross-entropy against the catalog's formula from logits, mean(softplus(z) - t z) with
t = 0.9 y + 0.05 (label smoothing 0.1): the same formula in float64, relative to the loss itself."""


@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_task_counts_correct_by_the_sign_of_the_logit(backend):
    """A binary task (one output, y (N, 1) of 0/1): correct = (logit > 0) == (y > 0.5) in evaluate and, per step, in
    train_epoch (from the logits before that step's update); the loss is BCE from logits; one-hot labels are refused."""
    trainer, plan = make_trainer(backend, "mlp-relu-adam", "float64", BINARY_MLP)
    assert plan[-1].units == 1 and trainer.spec.data.num_outputs == 1
    assert trainer.get_weights()["activation_0/alpha"].shape == (1,)
    trainer.set_weights({k: 3.0 * v for k, v in random_canonical_weights(plan, seed=5).items()})
    rng = np.random.default_rng(5)
    x, y = rng.random((32, 28, 28, 1)), rng.integers(0, 2, (32, 1)).astype(np.float64)
    z = trainer.predict_logits(x, 32)
    assert z.shape == (32, 1)
    hits = (z[:, 0] > 0) == (y[:, 0] > 0.5)
    assert 0 < hits.sum() < 32 and 0 < np.sum(z > 0) < 32, "the check needs both outcomes and logits of both signs"
    target = 0.9 * y + 0.05
    loss, accuracy = trainer.evaluate(x, y, 10)
    assert relative_error(loss, np.mean(np.logaddexp(0.0, z) - target * z)) <= BINARY_LOSS_TOLERANCE
    assert accuracy == hits.mean()
    trainer.load_training_data(x, y)
    # rate 0 then 0.5: step 2 must still count the unchanged weights' logits, i.e. before its own (large) update
    stats = trainer.train_epoch([np.arange(16), np.arange(16, 32)], np.array([0.0, 0.5]))
    assert stats.correct.tolist() == [hits[:16].sum(), hits[16:].sum()]
    for step, batch in enumerate((slice(0, 16), slice(16, 32))):  # no dropout, no batch norm: train loss = eval loss
        zb, tb = z[batch], target[batch]
        assert relative_error(stats.loss[step], np.mean(np.logaddexp(0.0, zb) - tb * zb)) <= BINARY_LOSS_TOLERANCE
    with pytest.raises(ValueError, match=r"\(N, 1\) of 0/1"):
        trainer.load_training_data(x, np.eye(2)[y[:, 0].astype(int)])
    with pytest.raises(ValueError, match=r"\(N, 1\) of 0/1"):
        trainer.evaluate(x, np.eye(10)[np.zeros(32, int)], 8)


ZERO_RATE_CASES = {  # -> (preset, overrides): the optimizer at rate 0, with batch norm and per-step noise
    "seed-cnn": ("seed-cnn", ()),  # conv + batch norm + dropout
    "mlp-bn-dropout-rrelu-adam": ("mlp-relu-adam", (
        'model.hidden=[{units=12, activation="relu", batch_norm={momentum=0.9, epsilon=1e-3}, dropout=0.25},'
        ' {units=6, activation={name="rrelu", lower=0.1, upper=0.3}}]',)),
}


@pytest.mark.parametrize("case", ZERO_RATE_CASES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_learning_rate_keeps_the_weights_and_noise_is_fresh_per_step(backend, case):
    """Three steps at rate 0 on the same batch: every trainable weight stays bit-exact, every running statistic moves
    (train mode), the losses differ (fresh dropout masks / rrelu slopes per step) and evaluation is deterministic."""
    preset, overrides = ZERO_RATE_CASES[case]
    trainer, plan = make_trainer(backend, preset, "float32", overrides)
    rng = np.random.default_rng(6)
    x, y = rng.random((16, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, 16)]
    trainer.load_training_data(x, y)
    before = trainer.get_weights()
    batch = np.arange(8)
    stats = trainer.train_epoch([batch, batch, batch], np.zeros(3))
    assert stats.loss.shape == (3,) and stats.loss.dtype == np.float64 and stats.correct.dtype == np.int64
    after = trainer.get_weights()
    for name, info in parameter_info(plan).items():
        changed = not np.array_equal(after[name], before[name])
        assert changed == (not info.trainable), f"{backend} {name}: trainable weights stay, running statistics move"
    assert np.all(np.isfinite(stats.loss))
    assert len(set(stats.loss.tolist())) == 3, f"{backend}: same batch and weights, only fresh noise changes the loss"
    assert trainer.evaluate(x, y, 8) == trainer.evaluate(x, y, 8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_and_float64_trainers_coexist_in_one_process(backend):
    """float32, float64, float32 again in one process: each computes in its own dtype (no process-global dtype),
    within FORWARD_AGAINST_ORACLE of the oracle and, in float32, visibly float32."""
    overrides = ('model.hidden=[{units=64, activation="tanh"}]',)
    built = [make_trainer(backend, "mlp-relu-adam", dtype, overrides) for dtype in ("float32", "float64", "float32")]
    weights = random_canonical_weights(built[0][1], seed=11)
    x = np.random.default_rng(11).random((5, 28, 28, 1))
    for trainer, plan in built:
        dtype = trainer.spec.dtype
        exact = {k: v.astype(dtype) for k, v in weights.items()}
        trainer.set_weights(exact)
        logits = trainer.predict_logits(x.astype(dtype), 5)
        assert logits.dtype == np.dtype(dtype)
        error = relative_error(logits, forward(plan, exact, x.astype(dtype)))
        assert error <= FORWARD_AGAINST_ORACLE[dtype], f"{backend} {dtype} next to the other dtype: {error:.3e}"
        if dtype == "float32":
            assert error > FLOAT32_FLOOR, f"{backend}: a float32 trainer next to a float64 one computed like float64"
