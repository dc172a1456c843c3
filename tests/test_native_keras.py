"""Keras backend, implementation = "native": every component from Keras' own public API (backends.keras), checked as
(a) the trainer really holds the built-in, (b) where the built-in is the catalog formula up to rounding, native and
catalog agree within a named tolerance, (c) where it differs, the difference shows at about its measured size, and
(d) native_fallbacks names what Keras has no built-in for. Sizes were measured in this file's own setups (float64,
keras 3.15 / TF 2.21) and are written next to each band."""

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from pydantic import TypeAdapter  # noqa: E402

from backends.keras import model as keras_model  # noqa: E402
from backends.keras.activations import activation_layer, native_activation_layer  # noqa: E402
from backends.keras.framework import keras, tf  # noqa: E402
from backends.keras.losses import make_loss, native_loss  # noqa: E402
from backends.keras.optimizers import CatalogOptimizer  # noqa: E402
from backends.keras.trainer import Trainer  # noqa: E402
from experiments.catalog import Activation, Loss, OutputActivation  # noqa: E402
from experiments.catalog.optimizers import state_slots  # noqa: E402
from experiments.spec import build_plan, load_spec  # noqa: E402

NATIVE = 'implementation="native"'
SMALL_MLP = "model.hidden=[{units=16, activation='tanh'}]"
EPS_2_20 = "9.5367431640625e-07"  # 2**-20


def make(overrides=(), dtype="float64", native=True, preset="mlp-relu-adam") -> Trainer:
    spec = load_spec(preset, [f"dtype={dtype}", *([NATIVE] if native else []), *overrides])
    return Trainer(spec, build_plan(spec.model, (28, 28, 1), spec.data.num_outputs), threads=2)


def entry(kind, table):
    return TypeAdapter(kind).validate_python(table)


# Optimizer and clipping ---------------------------------------------------------------------------------------

OPTIMIZERS = {  # case: (optimizer table, Keras class, {Keras attribute: spec value})
    "sgd": ("{name='sgd', learning_rate=0.1}", keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
    "momentum": ("{name='momentum', learning_rate=0.1, momentum=0.9}", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": False}),
    "nesterov": ("{name='nesterov', learning_rate=0.1, momentum=0.9}", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("{name='adagrad', learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.1}", keras.optimizers.Adagrad,
                {"epsilon": 1e-7, "initial_accumulator_value": 0.1}),
    "rmsprop": (f"{{name='rmsprop', learning_rate=0.01, rho=0.9, epsilon={EPS_2_20}}}", keras.optimizers.RMSprop,
                {"rho": 0.9, "momentum": 0.0, "centered": False, "epsilon": 2.0**-20}),
    "rmsprop-momentum-centered": (f"{{name='rmsprop', learning_rate=0.01, rho=0.9, momentum=0.9, centered=true, epsilon={EPS_2_20}}}",
                                  keras.optimizers.RMSprop, {"rho": 0.9, "momentum": 0.9, "centered": True}),
    "adam": (f"{{name='adam', learning_rate=0.01, epsilon={EPS_2_20}}}", keras.optimizers.Adam,
             {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 2.0**-20}),
    "adamw": (f"{{name='adamw', learning_rate=0.01, epsilon={EPS_2_20}, weight_decay=0.01}}", keras.optimizers.AdamW,
              {"weight_decay": 0.01, "epsilon": 2.0**-20}),
    "adadelta": ("{name='adadelta', learning_rate=1.0, rho=0.95, epsilon=1e-6}", keras.optimizers.Adadelta, {"rho": 0.95, "epsilon": 1e-6}),
    "adamax": ("{name='adamax', learning_rate=0.01, epsilon=1e-7}", keras.optimizers.Adamax, {"epsilon": 1e-7}),
    "nadam": ("{name='nadam', learning_rate=0.01, epsilon=1e-7, momentum_decay=0.004}", keras.optimizers.Nadam, {"epsilon": 1e-7}),
}


@pytest.mark.parametrize("case", OPTIMIZERS)
def test_native_optimizer_is_the_keras_builtin_with_the_spec_values(case):
    """(a) the built-in class itself, the spec's values in its arguments, optimizer_state under the catalog's slot names
    (Keras' own variables), nothing fell back; the compiled epoch runs twice without retracing."""
    table, cls, values = OPTIMIZERS[case]
    trainer = make([f"optimizer={table}", SMALL_MLP])
    assert isinstance(trainer.optimizer, cls) and not isinstance(trainer.optimizer, CatalogOptimizer)
    for attribute, value in values.items():
        assert getattr(trainer.optimizer, attribute) == value, attribute
    assert trainer.optimizer.global_clipnorm is None and trainer.native_fallbacks == []
    rng = np.random.default_rng(0)
    trainer.load_training_data(rng.random((16, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, 16)])
    for _ in range(2):
        trainer.train_epoch([np.arange(8), np.arange(8, 16)], np.array([0.01, 0.02]))
    assert trainer.trace_counts["epoch"] == trainer.trace_counts["step"] == 1
    assert trainer.optimizer.learning_rate.numpy() == np.float32(0.02)  # Keras' own (floatx) rate variable, set per step
    state = trainer.optimizer_state()
    assert set(state) == set(trainer.trainable_names)
    kernel = trainer._variables["dense_0/kernel"]
    assert tuple(state["dense_0/kernel"]) == state_slots(trainer.spec.optimizer)
    keras_slots = {v.name.rsplit("dense_0_kernel_", 1)[1]: v for v in trainer.optimizer.variables if "dense_0_kernel_" in v.name}
    for slot, value in state["dense_0/kernel"].items():  # the Keras variable of that meaning, by Keras' own name
        assert np.array_equal(value, keras_slots[KERAS_SLOT_NAMES[slot if slot != "square" or case != "adadelta" else "grad"]].numpy()), slot


KERAS_SLOT_NAMES = {  # catalog slot -> the suffix Keras names its optimizer variable with
    "momentum": "momentum", "m": "momentum", "v": "velocity", "sum": "accumulator", "square": "velocity",
    "mean": "average_gradient", "grad": "accumulated_grad", "delta": "accumulated_delta_var", "u": "norm",
}


def displacement_difference(table: str, steps: int = 20) -> float:
    """||p_native - p_catalog|| / ||p_catalog - p_0|| after `steps` apply_gradients with the same gradients
    (N(0, 0.01^2), seed 3) at learning rate 0.01, float64, the SMALL_MLP."""
    result, start = [], None
    for native in (False, True):
        trainer = make([f"optimizer={table}", SMALL_MLP], native=native)
        start = trainer.get_weights() if start is None else start  # Keras' own initialisers draw other weights
        trainer.set_weights(start)
        rng = np.random.default_rng(3)
        for _ in range(steps):
            trainer.apply_gradients({n: 1e-2 * rng.normal(size=trainer.info[n].shape) for n in trainer.trainable_names}, 0.01)
        result.append(trainer.get_weights())
    (catalog, native_weights), names = result, trainer.trainable_names
    difference = np.sqrt(sum(np.sum((native_weights[n] - catalog[n]) ** 2) for n in names))
    return float(difference / np.sqrt(sum(np.sum((catalog[n] - start[n]) ** 2) for n in names)))


AGREEING = {  # (b) Keras' built-in is the catalog formula here; what remains is Keras' float32 hyperparameters
    # (ops.cast of a Python float, and the floatx learning rate) in a float64 run. Measured:
    "adadelta": ("{name='adadelta', learning_rate=0.01, rho=0.95, epsilon=1e-6}", 2.2e-8),
    "sgd": ("{name='sgd', learning_rate=0.01}", 2.2e-8),  # lr 0.01 in float32
    "momentum": ("{name='momentum', learning_rate=0.01, momentum=0.9}", 1.5e-7),  # constant lr: v = -lr b
    "nesterov": ("{name='nesterov', learning_rate=0.01, momentum=0.9}", 1.5e-7),
    "nadam-psi-1": ("{name='nadam', learning_rate=0.01, epsilon=1e-7, momentum_decay=1.0}", 3.9e-8),  # Keras' psi
}
AGREE_TOL = 1e-6  # float32 hyperparameters: a few 1e-8 .. 1.5e-7 (momentum amplifies them by 1 / (1 - 0.9))


@pytest.mark.parametrize("case", AGREEING)
def test_native_optimizer_agrees_with_the_catalog_where_keras_is_the_formula(case):
    table, measured = AGREEING[case]
    difference = displacement_difference(table)
    assert difference <= AGREE_TOL, f"{case}: {difference:.3g}"
    assert difference >= measured / 4, f"{case}: {difference:.3g}: Keras' float32 hyperparameters no longer show"


DIFFERING = {  # (c) where Keras' formula is not the catalog's: the relative displacement difference, measured
    "adam-eps-hat-2^-20": (f"{{name='adam', learning_rate=0.01, epsilon={EPS_2_20}}}", 8.8e-3),
    "adam-eps-hat-0.1": ("{name='adam', learning_rate=0.01, epsilon=0.1}", 0.91),
    "adamw-eps-hat-2^-20": (f"{{name='adamw', learning_rate=0.01, epsilon={EPS_2_20}, weight_decay=0.01}}", 8.8e-3),
    "adamw-eps-hat-0.1": ("{name='adamw', learning_rate=0.01, epsilon=0.1, weight_decay=0.01}", 0.91),
    "adagrad-eps-in-root-1e-7": ("{name='adagrad', learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.1}", 2.1e-7),
    "rmsprop-eps-in-root-2^-20": (f"{{name='rmsprop', learning_rate=0.01, rho=0.9, epsilon={EPS_2_20}}}", 0.157),
    "rmsprop-lr-in-buffer": (f"{{name='rmsprop', learning_rate=0.01, rho=0.9, momentum=0.9, epsilon={EPS_2_20}}}", 0.184),
    "rmsprop-centered": (f"{{name='rmsprop', learning_rate=0.01, rho=0.9, centered=true, epsilon={EPS_2_20}}}", 0.155),
    "adamax-eps-on-u-1e-5": ("{name='adamax', learning_rate=0.01, epsilon=1e-5}", 2.25e-6),  # 1e-7: 2.2e-7, at the floor
    "nadam-psi-0.004": ("{name='nadam', learning_rate=0.01, epsilon=1e-7, momentum_decay=0.004}", 0.118),
}


@pytest.mark.parametrize("case", DIFFERING)
def test_native_optimizer_differs_from_the_catalog_by_its_known_size(case):
    """Within a factor 2 of the measured size, above the float32-hyperparameter floor (AGREEING, and Adamax's float32
    beta_1 in its bias correction, 2.1e-7); Adagrad's epsilon effect (2.1e-7) stands ~10x above its floor."""
    table, measured = DIFFERING[case]
    difference = displacement_difference(table)
    assert measured / 2 <= difference <= measured * 2, f"{case}: {difference:.3g} (measured {measured:.3g})"


def test_native_optimizer_differences_grow_with_epsilon_where_keras_places_it_differently():
    """Adagrad's epsilon inside the root and Adamax's on u: at epsilon 1e-10 only the float32 floor is left (Adagrad
    measured 2.2e-8; Adamax 2.06e-7 from float32(beta_1) in 1 - beta_1^t), against 2.1e-7 and 2.25e-6 above."""
    assert displacement_difference("{name='adagrad', learning_rate=0.01, epsilon=1e-10, initial_accumulator_value=0.1}") < 5e-8
    assert 1e-7 <= displacement_difference("{name='adamax', learning_rate=0.01, epsilon=1e-10}") < 4e-7


def test_native_clipping_is_global_clipnorm_and_either_can_stay_on_the_catalog():
    clipped = "optimizer={name='sgd', learning_rate=0.1, clip_global_norm=0.5}"
    native = make([clipped, SMALL_MLP])
    assert native.optimizer.global_clipnorm == 0.5 and native.catalog_clip is None
    kept = make([clipped, SMALL_MLP, 'catalog_components=["clipping"]'])
    assert isinstance(kept.optimizer, keras.optimizers.SGD) and kept.optimizer.global_clipnorm is None and kept.catalog_clip == 0.5
    only_clipping = make([clipped, SMALL_MLP, 'catalog_components=["optimizer"]'])
    assert isinstance(only_clipping.optimizer, CatalogOptimizer)
    assert only_clipping.optimizer.global_clipnorm == 0.5 and only_clipping.optimizer.clip_global_norm is None
    catalog = make([clipped, SMALL_MLP], native=False)
    rng = np.random.default_rng(1)
    grads = {n: rng.normal(size=catalog.info[n].shape) for n in catalog.trainable_names}  # norm ~ 100: clipped
    start = catalog.get_weights()
    for trainer in (native, kept, only_clipping, catalog):
        trainer.set_weights(start)
        trainer.apply_gradients(grads, 0.1)
    reference = catalog.get_weights()
    for trainer in (native, kept, only_clipping):  # each clips to norm 0.5: steps agree to the float32 lr (1.5e-9)
        for name in trainer.trainable_names:
            step, expected = trainer.get_weights()[name] - start[name], reference[name] - start[name]
            assert np.max(np.abs(step - expected)) <= 1e-7 * np.max(np.abs(expected)), name


# Loss ---------------------------------------------------------------------------------------------------------

LOSSES = {  # case: (loss, output activation, Keras class, measured relative per-sample difference from the catalog)
    "cce": ({"name": "categorical_crossentropy"}, "softmax", keras.losses.CategoricalCrossentropy, 0.0),
    "cce-smoothing": ({"name": "categorical_crossentropy", "label_smoothing": 0.1}, "softmax", keras.losses.CategoricalCrossentropy, 0.0),
    "cce-linear": ({"name": "categorical_crossentropy"}, "linear", keras.losses.CategoricalCrossentropy, 0.0),
    "mse-softmax": ({"name": "mse"}, "softmax", keras.losses.MeanSquaredError, 0.0),
    "mse-sigmoid": ({"name": "mse"}, "sigmoid", keras.losses.MeanSquaredError, 0.0),
    "kl": ({"name": "kl_divergence"}, "softmax", keras.losses.KLDivergence, 1.15e-6),  # Keras clips y and p to >= 1e-7
}


@pytest.mark.parametrize("case", LOSSES)
def test_native_loss_is_the_keras_builtin(case):
    table, output, cls, measured = LOSSES[case]
    loss, activation = entry(Loss, table), entry(OutputActivation, output)
    built = native_loss(loss, activation, "float64")
    assert isinstance(built.built_in, cls) and built.built_in.reduction is None
    assert getattr(built.built_in, "from_logits", True) is True
    rng = np.random.default_rng(0)
    z, y = tf.constant(3 * rng.normal(size=(32, 10))), tf.constant(np.eye(10)[rng.integers(0, 10, 32)])
    native_values, catalog = built(z, y).numpy(), make_loss(loss, activation)(z, y).numpy()
    assert native_values.dtype == np.float64 and native_values.shape == (32,)
    difference = np.max(np.abs(native_values - catalog)) / np.max(np.abs(catalog))
    if measured == 0.0:
        assert difference <= 1e-15, f"{case}: {difference:.3g}"
    else:
        assert measured / 2 <= difference <= measured * 2, f"{case}: {difference:.3g}"


def test_native_binary_crossentropy_and_what_falls_back():
    bce = make(["data.task='even_odd'", "model.output_activation='sigmoid'",
                "loss={name='binary_crossentropy', label_smoothing=0.1}", SMALL_MLP])
    assert isinstance(bce.loss.built_in, keras.losses.BinaryCrossentropy) and bce.loss.built_in.from_logits
    assert bce.loss.built_in.label_smoothing == 0.1 and bce.native_fallbacks == []
    rng = np.random.default_rng(2)
    z, y = tf.constant(3 * rng.normal(size=(32, 1))), tf.constant(rng.integers(0, 2, (32, 1)).astype(float))
    catalog = make_loss(bce.spec.loss, bce.spec.model.output_activation)(z, y).numpy()
    assert np.max(np.abs(bce.loss(z, y).numpy() - catalog)) <= 1e-15 * np.max(catalog)  # measured 1.5e-16
    smoothed_kl = make(["loss={name='kl_divergence', label_smoothing=0.1}", SMALL_MLP])
    assert smoothed_kl.native_fallbacks == ["loss"] and not hasattr(smoothed_kl.loss, "built_in")
    sigmoid_cce = make(["model.output_activation='sigmoid'", SMALL_MLP])
    assert sigmoid_cce.native_fallbacks == ["loss"]
    mse_step = make(["model.output_activation='step'", "loss={name='mse'}", SMALL_MLP])
    assert isinstance(mse_step.loss.built_in, keras.losses.MeanSquaredError)
    assert mse_step.native_fallbacks == ["activation:step"]


# Batch norm ---------------------------------------------------------------------------------------------------

def test_native_batch_norm_is_keras_own_with_tf_statistics():
    """The layer is keras.layers.BatchNormalization itself (not the catalog's channel_sum moments), and its float32
    batch variance is visibly less accurate: at momentum 0 the moving variance is the batch variance of 50,176 values per
    channel, measured 2.5e-6 relative (Keras/TF moments) against 7.0e-8 (catalog); float64 1.0e-15 and 2.7e-16 (against
    long double)."""
    trainer = make(["model.hidden=[{units=16, activation='relu', batch_norm={momentum=0.9, epsilon=1e-3}}]"])
    layer = next(l for l in trainer.model.layers if isinstance(l, keras.layers.BatchNormalization))
    assert type(layer) is keras.layers.BatchNormalization and trainer.native_fallbacks == []
    assert layer.momentum == 0.9 and layer.epsilon == 1e-3
    assert {"/".join(n.split("/")[1:]) for n in trainer.get_weights() if n.startswith(layer.name)} == {"scale", "offset", "mean", "variance"}
    rng = np.random.default_rng(0)
    x = (1.0 + 0.1 * rng.normal(size=(64, 28, 28, 8)) + rng.normal(size=(1, 1, 1, 8))).astype(np.float32)
    reference = x.astype(np.float64).var(axis=(0, 1, 2))
    errors = {}
    for cls in (keras_model.BatchNormalization, keras.layers.BatchNormalization):
        bn = cls(momentum=0.0, epsilon=1e-3, dtype="float32")
        bn.build(x.shape)
        bn(tf.constant(x), training=True)
        errors[cls] = np.max(np.abs(bn.moving_variance.numpy() - reference) / reference)
    assert errors[keras_model.BatchNormalization] <= 3e-7, errors
    assert 1.2e-6 <= errors[keras.layers.BatchNormalization] <= 5e-6, errors


# Activations --------------------------------------------------------------------------------------------------

ACTIVATIONS = {  # entry: (Keras layer class, measured relative forward difference from the catalog, float64)
    "relu": (keras.layers.Activation, 0.0), "sigmoid": (keras.layers.Activation, 0.0), "tanh": (keras.layers.Activation, 0.0),
    "selu": (keras.layers.Activation, 1e-16), "softplus": (keras.layers.Activation, 3e-16), "silu": (keras.layers.Activation, 0.0),
    "hard_sigmoid": (keras.layers.Activation, 0.0), "linear": (keras.layers.Activation, 0.0),
    "{name='elu', alpha=0.7}": (keras.layers.Activation, 3e-17),
    "{name='gelu', approximate='none'}": (keras.layers.Activation, 6e-10),  # Keras' float32-rounded constants
    "{name='gelu', approximate='tanh'}": (keras.layers.Activation, 1.1e-10),
    "{name='leaky_relu', negative_slope=0.1}": (keras.layers.LeakyReLU, 1.8e-9),  # tf.nn.leaky_relu's float32 alpha
}


@pytest.mark.parametrize("case", ACTIVATIONS)
def test_native_activation_is_keras_own(case):
    cls, measured = ACTIVATIONS[case]
    activation = entry(Activation, eval_table(case) if case.startswith("{") else {"name": case})
    layer = native_activation_layer(activation, "a", "float64", 2)
    assert type(layer) is cls
    if not case.startswith("{"):
        assert layer.activation is keras.activations.get(case)
    x = tf.constant(3 * np.random.default_rng(0).normal(size=(4, 250)))
    native_y, catalog_y = layer(x).numpy(), activation_layer(activation, "c", "float64", 0)(x).numpy()
    difference = np.max(np.abs(native_y - catalog_y)) / np.max(np.abs(catalog_y))
    if measured <= 3e-16:
        assert difference <= 1e-15, f"{case}: {difference:.3g}"
    else:
        assert measured / 3 <= difference <= measured * 3, f"{case}: {difference:.3g}"


def eval_table(text: str) -> dict:
    """An inline TOML table as a dict (the spec's syntax)."""
    import tomllib
    return tomllib.loads(f"t = {text}")["t"]


def test_native_activations_in_a_trainer_and_what_falls_back():
    hidden = ("model.hidden=[{units=8, activation={name='elu', alpha=0.5}}, {units=8, activation='rrelu'}, "
              "{units=8, activation={name='maxout', pieces=2}}, {units=8, activation={name='softplus', beta=2.0}}, "
              "{units=8, activation={name='softplus', beta=1.0}}, {units=8, activation={name='leaky_relu', negative_slope=0.2}}]")
    trainer = make([hidden])
    assert trainer.native_fallbacks == ["activation:rrelu", "activation:maxout", "activation:softplus"]
    kinds = [type(l).__name__ for l in trainer.model.layers if l.name.startswith("activation")]
    assert kinds == ["Activation", "RReLU", "Maxout", "Activation", "Activation", "LeakyReLU"]
    kept = make([hidden, 'catalog_components=["activation:elu"]'])
    assert "activation:elu" not in kept.native_fallbacks


PRELU_CNN = [
    "model.conv=[{filters=4, kernel_size=3, padding='valid', activation={name='prelu', initial_value=0.25, per_channel=true},"
    " pool={size=2, stride=2, padding='same'}}]",
    "model.hidden=[{units=6, activation={name='prelu', initial_value=-0.3, per_channel=false}}, "
    "{units=5, activation={name='prelu', initial_value=0.5, per_channel=true}}]",
    "optimizer={name='sgd', learning_rate=0.1}",
]


def test_native_prelu_is_keras_prelu_with_canonical_alpha():
    """keras.layers.PReLU (Constant alpha_initializer, shared_axes): alpha (1, 1, C) in the CNN, (1,) shared, (C,) per
    unit in the MLP, under the canonical `<layer>/alpha` (C,) / (1,); set, gradient, optimizer state and training work
    on the canonical shapes; Keras' Constant(-0.3) is float32(-0.3) (native)."""
    trainer = make(PRELU_CNN, preset="seed-cnn")
    prelus = [l for l in trainer.model.layers if isinstance(l, keras.layers.PReLU)]
    assert [tuple(l.alpha.shape) for l in prelus] == [(1, 1, 4), (1,), (5,)]
    weights = trainer.get_weights()
    alphas = sorted(n for n in weights if n.endswith("/alpha"))
    assert [weights[n].shape for n in alphas] == [trainer.info[n].shape for n in alphas]
    assert {tuple(trainer.info[n].shape) for n in alphas} == {(4,), (1,), (5,)}
    values = {weights[n].flat[0] for n in alphas}
    assert values == {0.25, np.float64(np.float32(-0.3)), 0.5}
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, 8)]
    changed = {n: weights[n] + 0.01 * np.arange(weights[n].size).reshape(weights[n].shape) for n in alphas}
    trainer.set_weights({**weights, **changed})
    assert all(np.array_equal(trainer.get_weights()[n], changed[n]) for n in alphas)
    _, grads = trainer.loss_and_gradients(x, y)
    assert all(grads[n].shape == trainer.info[n].shape and np.any(grads[n]) for n in alphas)
    trainer.load_training_data(x, y)
    trainer.train_epoch([np.arange(8)], np.array([0.1]))
    assert all(not np.array_equal(trainer.get_weights()[n], changed[n]) for n in alphas)
    trainer.apply_gradients(grads, 0.1)
    assert all(slots == {} for slots in trainer.optimizer_state().values())  # plain sgd keeps none
    assert trainer.native_fallbacks == []


# Dropout, pooling, initializers -----------------------------------------------------------------------------------

DROPOUT_MLP = "model.hidden=[{units=16, activation='relu', dropout=0.5}]"


def test_native_dropout_and_pooling_are_keras_own_and_injected_noise_is_used():
    trainer = make(PRELU_CNN[:1] + ["model.hidden=[{units=6, activation='relu', dropout=0.5}]"], preset="seed-cnn")
    dropout = next(l for l in trainer.model.layers if isinstance(l, keras.layers.Dropout))
    pooling = next(l for l in trainer.model.layers if isinstance(l, keras.layers.MaxPooling2D))
    assert type(dropout) is keras.layers.Dropout and dropout.rate == 0.5 and dropout.seed is not None
    assert pooling.pool_size == (2, 2) and pooling.strides == (2, 2) and pooling.padding == "same"
    native = make([DROPOUT_MLP])
    catalog = make([DROPOUT_MLP], native=False)
    catalog.set_weights(native.get_weights())
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, 8)]
    layer = native.noisy_layers[0]
    noise = {layer.name: 2.0 * (rng.random((8, *layer.input_shape)) < 0.5)}
    native_loss_value, native_grads = native.loss_and_gradients(x, y, noise)
    catalog_loss_value, catalog_grads = catalog.loss_and_gradients(x, y, noise)
    # both multiply by the injected mask; the rest (Keras' CCE, glorot weights copied) agrees to rounding here
    assert abs(native_loss_value - catalog_loss_value) <= 1e-15 * abs(catalog_loss_value)
    assert all(np.allclose(native_grads[n], catalog_grads[n], rtol=0, atol=1e-15) for n in native_grads)
    assert native.loss_and_gradients(x, y)[0] != native_loss_value  # without noise Keras draws its own mask


def test_native_initializers_are_keras_classes_by_the_entry_name():
    trainer = make(["model.kernel_init='he_normal'", "model.bias_init={name='constant', value=0.1}", SMALL_MLP])
    dense = trainer.model.get_layer("dense_0")
    assert isinstance(dense.kernel_initializer, keras.initializers.HeNormal)
    assert isinstance(dense.bias_initializer, keras.initializers.Constant)
    assert np.all(trainer.get_weights()["dense_0/bias"] == np.float64(np.float32(0.1)))  # Keras' Constant: float32 (native)
    assert trainer.native_fallbacks == []
    catalog = make(["model.kernel_init='he_normal'", "model.bias_init={name='constant', value=0.1}", SMALL_MLP], native=False)
    assert np.all(catalog.get_weights()["dense_0/bias"] == 0.1)
    torch_default = make(["model.kernel_init='torch_default'", SMALL_MLP])
    assert torch_default.native_fallbacks == ["initializer:torch_default"]
    scaling = make(["model.kernel_init={name='variance_scaling', scale=2.0, mode='fan_in', distribution_kind='normal'}", SMALL_MLP])
    initializer = scaling.model.get_layer("dense_0").kernel_initializer
    assert isinstance(initializer, keras.initializers.VarianceScaling) and initializer.distribution == "untruncated_normal"


def test_catalog_mode_and_catalog_components_build_the_catalog():
    catalog = make(["model.hidden=[{units=8, activation={name='leaky_relu', negative_slope=0.1}, batch_norm={momentum=0.9, epsilon=1e-3}}]"],
                   native=False)
    assert isinstance(catalog.optimizer, CatalogOptimizer) and catalog.native_fallbacks == []
    assert any(type(l) is keras_model.BatchNormalization for l in catalog.model.layers)
    assert not any(isinstance(l, keras.layers.LeakyReLU) for l in catalog.model.layers)
    everything = ('catalog_components=["optimizer", "clipping", "activation", "batch_norm", "loss", "initializer", '
                  '"pooling", "dropout"]')
    kept = make(["model.hidden=[{units=8, activation={name='leaky_relu', negative_slope=0.1}, batch_norm={momentum=0.9, epsilon=1e-3}}]",
                 everything])
    assert isinstance(kept.optimizer, CatalogOptimizer) and kept.native_fallbacks == []
    assert any(type(l) is keras_model.BatchNormalization for l in kept.model.layers)
    kept.set_weights(catalog.get_weights())
    x = np.random.default_rng(0).random((4, 28, 28, 1))
    assert np.array_equal(kept.predict_logits(x, 4), catalog.predict_logits(x, 4))
