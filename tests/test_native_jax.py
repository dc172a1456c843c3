"""implementation = "native" in the JAX backend: each component built from optax / Flax / jax.nn's own API.

Per component: (a) the native trainer really calls the built-in, with the spec's values; (b) where the built-in is
the catalog's formula, native and catalog agree within a named tolerance; (c) where it is not, the difference is
there at about its size; (d) native_fallbacks names what had no built-in. Differences are measured in float64 on
the tiny MLP (20 apply_gradients steps with random gradients at rates 0.01, 0.02, 0.03, ...), as the largest
|native - catalog| of a tensor relative to the largest catalog displacement |catalog - initial| of that tensor.
"""

import functools
import inspect

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from flax.linen import normalization as flax_normalization  # noqa: E402

from backends.jax.activations import ActivationLayer  # noqa: E402
from experiments.catalog import Activation  # noqa: E402
from experiments.catalog.optimizers import state_slots  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from tests.backend_helpers import check_sample, random_weights  # noqa: E402
from tests.test_backend_jax import MLP_RRELU, SMALL_CNN, TINY_MLP, data, make  # noqa: E402

NATIVE = ['implementation="native"']
AGREE_RTOL = 1e-14  # float64, 20 steps: optax's alias is the catalog's formula (measured: 0, or 3.4e-15 with clipping)
STEPS = 20


def twins(preset: str, overrides=(), dtype: str = "float64", native_only=()):
    """(catalog trainer, native trainer, plan) of one spec, both holding the same random weights."""
    catalog, _, plan = make(preset, dtype, overrides)
    native, _, _ = make(preset, dtype, [*NATIVE, *overrides, *native_only])
    weights = random_weights(plan, dtype)
    catalog.set_weights(weights)
    native.set_weights(weights)
    return catalog, native, plan


def stepped(trainer, steps: int = STEPS):
    """The trainer's weights after `steps` apply_gradients with seeded random gradients and changing rates."""
    rng = np.random.default_rng(5)
    shapes = {name: trainer.info[name].shape for name in trainer.trainable_names}
    for step in range(steps):
        trainer.apply_gradients({name: rng.normal(size=shape) for name, shape in shapes.items()}, 0.01 * (1 + step % 3))
    return trainer.get_weights()


def relative_differences(optimizer: str) -> list[float]:
    """Per trainable tensor, max |native - catalog| / max |catalog - initial| after STEPS steps (float64)."""
    catalog, native, _ = twins("mlp-relu-adam", [*TINY_MLP, f"optimizer={optimizer}"])
    initial = catalog.get_weights()
    after_catalog, after_native = stepped(catalog), stepped(native)
    return [float(np.max(np.abs(after_native[n] - after_catalog[n])) / np.max(np.abs(after_catalog[n] - initial[n])))
            for n in catalog.trainable_names]


def recording(monkeypatch, module, name: str) -> list:
    """Replace module.name by a wrapper (same signature) that records each call's keyword arguments."""
    original, calls = getattr(module, name), []

    @functools.wraps(original)
    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


# -- optimizer and clipping ----------------------------------------------------------------------------------------
ALIASES = {  # spec optimizer -> (optax alias, the keyword arguments it must receive besides learning_rate)
    '{name="sgd", learning_rate=0.1, momentum=0.9, nesterov=true}': ("sgd", {"momentum": 0.9, "nesterov": True}),
    '{name="momentum", learning_rate=0.1, momentum=0.8}': ("sgd", {"momentum": 0.8, "nesterov": False}),
    '{name="adagrad", learning_rate=0.1, initial_accumulator_value=0.2, epsilon=1e-6}':
        ("adagrad", {"initial_accumulator_value": 0.2, "eps": 1e-6}),
    '{name="rmsprop", learning_rate=0.01, rho=0.8, epsilon=1e-3, momentum=0.5, centered=true}':
        ("rmsprop", {"decay": 0.8, "eps": 1e-3, "momentum": 0.5, "centered": True}),
    '{name="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7}': ("adam", {"b1": 0.8, "b2": 0.95, "eps": 1e-7}),
    '{name="adamw", learning_rate=0.01, epsilon=1e-7, weight_decay=0.1}':
        ("adamw", {"b1": 0.9, "b2": 0.999, "eps": 1e-7, "weight_decay": 0.1}),
    '{name="adadelta", learning_rate=1.0, rho=0.9, epsilon=1e-4}': ("adadelta", {"rho": 0.9, "eps": 1e-4}),
    '{name="adamax", learning_rate=0.01, beta_1=0.8, epsilon=1e-7}': ("adamax", {"b1": 0.8, "b2": 0.999, "eps": 1e-7}),
    '{name="nadam", learning_rate=0.01, epsilon=1e-7, momentum_decay=0.004}': ("nadam", {"b1": 0.9, "b2": 0.999, "eps": 1e-7}),
}


@pytest.mark.parametrize("optimizer", ALIASES, ids=lambda o: o.split('"')[1])
def test_native_optimizer_is_the_optax_alias_with_the_spec_values(optimizer, monkeypatch):
    """(a) The alias itself runs (under inject_hyperparams, the rate as state) with the spec's values, optax's
    defaults for the rest; optimizer_state reports the catalog's slot names; a train epoch sets the rate."""
    alias, expected = ALIASES[optimizer]
    calls = recording(monkeypatch, optax, alias)
    trainer, spec, _ = make("mlp-relu-adam", "float32", [*TINY_MLP, *NATIVE, f"optimizer={optimizer}"])
    defaults = {name: parameter.default for name, parameter in inspect.signature(getattr(optax, alias)).parameters.items()}
    assert calls and all(call == {**defaults, **expected, "learning_rate": call["learning_rate"]} for call in calls), calls
    assert isinstance(trainer._state[2], optax.InjectStatefulHyperparamsState) and trainer.native_fallbacks == []
    x, y = data(16)
    trainer.load_training_data(x, y)
    trainer.train_epoch([np.arange(8), np.arange(8, 16)], np.array([0.25, 0.125]))
    assert float(trainer._state[2].hyperparams["learning_rate"]) == 0.125  # the last step's rate, injected
    assert trainer.trace_counts["train"] == 1
    state = trainer.optimizer_state()
    assert all(tuple(slots) == state_slots(spec.optimizer) for slots in state.values())


@pytest.mark.parametrize("optimizer", [
    '{name="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7}',
    '{name="adamw", learning_rate=0.01, epsilon=1e-7, weight_decay=0.1}',
    '{name="adadelta", learning_rate=1.0, rho=0.9, epsilon=1e-6}',
    '{name="adamax", learning_rate=0.01, epsilon=1e-7}',
    '{name="sgd", learning_rate=0.01, momentum=0.9, nesterov=true}',
    '{name="sgd", learning_rate=0.01, momentum=0.9, nesterov=true, clip_global_norm=1.0}',  # optax's clip: rounding
], ids=lambda o: o.split('"')[1] + ("-clip" if "clip" in o else ""))
def test_native_optimizer_agrees_where_the_alias_is_the_catalog_formula(optimizer):
    """(b) adam/adamw (eps_root 0), adadelta, adamax and sgd: optax's alias is the catalog's formula, and so is
    optax.clip_by_global_norm up to rounding. The optimizer state agrees too."""
    catalog, native, _ = twins("mlp-relu-adam", [*TINY_MLP, f"optimizer={optimizer}"])
    initial = catalog.get_weights()
    after_catalog, after_native = stepped(catalog), stepped(native)
    for name in catalog.trainable_names:
        scale = np.max(np.abs(after_catalog[name] - initial[name]))
        assert np.max(np.abs(after_native[name] - after_catalog[name])) <= AGREE_RTOL * scale, name
        for slot, value in catalog.optimizer_state()[name].items():
            np.testing.assert_allclose(native.optimizer_state()[name][slot], value, rtol=1e-12, atol=0, err_msg=slot)


@pytest.mark.parametrize("optimizer, low, high", [
    # adagrad: optax puts epsilon inside the root (sqrt(s + eps) vs sqrt(s) + eps); measured 3.2e-8..4.1e-8
    ('{name="adagrad", learning_rate=0.1, initial_accumulator_value=0.1, epsilon=1e-7}', 1e-8, 2e-7),
    ('{name="adagrad", learning_rate=0.1, initial_accumulator_value=0.1, epsilon=0.1}', 1e-2, 0.2),  # 0.031..0.040
    # rmsprop at optax's defaults (eps_in_sqrt=True); measured 1.5e-5..0.060 at epsilon 2**-20
    ('{name="rmsprop", learning_rate=0.01, rho=0.9, epsilon=9.5367431640625e-07}', 1e-2, 0.3),
    # nadam: optax's is Adam with a Nesterov step, no momentum schedule; measured 0.48..0.65
    ('{name="nadam", learning_rate=0.01, epsilon=1e-7, momentum_decay=0.004}', 0.2, 2.0),
], ids=["adagrad-eps1e-7", "adagrad-eps0.1", "rmsprop-eps2^-20", "nadam"])
def test_native_optimizer_differs_where_optax_does_at_about_its_size(optimizer, low, high):
    """(c) The largest per-tensor relative difference after 20 float64 steps lies in the measured band."""
    largest = max(relative_differences(optimizer))
    assert low <= largest <= high, f"{largest:.3g} not in [{low:g}, {high:g}]"


def test_native_clipping_is_optax_clip_by_global_norm(monkeypatch):
    """(a) optax.clip_by_global_norm(c) chained first; clipping stays the catalog's factor when kept on the catalog."""
    calls = recording(monkeypatch, optax, "clip_by_global_norm")
    optimizer = 'optimizer={name="sgd", learning_rate=0.1, clip_global_norm=0.5}'
    trainer, _, _ = make("mlp-relu-adam", "float64", [*TINY_MLP, *NATIVE, optimizer])
    assert len(calls) == 1 and trainer.native_fallbacks == []
    make("mlp-relu-adam", "float64", [*TINY_MLP, *NATIVE, optimizer, 'catalog_components=["clipping"]'])
    make("mlp-relu-adam", "float64", [*TINY_MLP, optimizer])
    assert len(calls) == 1


def test_native_mode_compiles_once_across_epochs():
    """Rates are injected as data: epochs with new rates, a partial batch, evaluation and set_weights trace nothing
    new (native optimizer, batch norm, dropout, activations; rrelu falls back)."""
    trainer, _, _ = make("mlp-relu-adam", "float32", [*MLP_RRELU, *NATIVE])
    assert trainer.native_fallbacks == ["activation:rrelu"]
    x, y = data(21)
    trainer.load_training_data(x, y)
    rng = np.random.default_rng(0)
    for rates in ([0.1, 0.1, 0.1], [0.05, 0.04, 0.03], [1e-3, 1e-4, 0.0]):
        order = rng.permutation(21)
        trainer.train_epoch([order[:8], order[8:16], order[16:]], np.array(rates))
        trainer.evaluate(x, y, 7)
        trainer.set_weights(trainer.get_weights())
    assert dict(trainer.trace_counts) == {"train": 2, "evaluate": 1}


# -- loss ------------------------------------------------------------------------------------------------------------
BINARY = ['data.task="even_odd"', 'loss="binary_crossentropy"']


def test_native_binary_crossentropy_is_optax_and_differs_by_rounding(monkeypatch):
    """(a) optax.sigmoid_binary_cross_entropy is called; (c) it rounds differently from the catalog's
    logaddexp(z, 0) - y z (two log_sigmoids): in float32, logits ~ N(0, 1), 31 of 256 per-sample losses differ, by
    at most 9.2e-7 relative (a few ulps)."""
    calls = recording(monkeypatch, optax, "sigmoid_binary_cross_entropy")
    catalog, native, _ = twins("seed-mlp-sigmoid", BINARY, dtype="float32")
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(scale=1.0, size=(256, 1)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, (256, 1)), jnp.float32)
    ours, theirs = np.asarray(catalog.loss(z, y)), np.asarray(native.loss(z, y))
    assert calls and native.native_fallbacks == []
    relative = np.max(np.abs(theirs - ours) / np.abs(ours))
    assert 1e-7 <= relative <= 1e-5 and np.sum(theirs != ours) >= 8, relative


@pytest.mark.parametrize("overrides", [
    ['loss={name="categorical_crossentropy", label_smoothing=0.1}'],
    ['loss={name="kl_divergence", label_smoothing=0.1}'],
    ['loss="mse"'],
])
def test_native_losses_agree_where_optax_is_the_catalog(overrides, monkeypatch):
    """(b) softmax_cross_entropy with smooth_labels, kl_divergence on log_softmax and squared_error: loss and
    gradients equal the catalog's (float64)."""
    calls = recording(monkeypatch, optax, "smooth_labels")
    catalog, native, _ = twins("mlp-relu-adam", [*TINY_MLP, *overrides])
    x, y = data(16)
    (loss_c, grads_c), (loss_n, grads_n) = catalog.loss_and_gradients(x, y), native.loss_and_gradients(x, y)
    assert native.native_fallbacks == [] and (calls or overrides == ['loss="mse"'])
    assert abs(loss_n - loss_c) <= AGREE_RTOL * abs(loss_c)
    for name in grads_c:
        np.testing.assert_allclose(grads_n[name], grads_c[name], rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("preset, overrides", [
    ("seed-mlp-sigmoid", ['loss="categorical_crossentropy"']),  # the catalog's normalised sigmoid
    ("seed-mlp-sigmoid", [*BINARY[:1], 'loss={name="binary_crossentropy", label_smoothing=0.1}']),
])
def test_native_loss_falls_back_where_optax_has_no_built_in(preset, overrides):
    """(d) cross-entropy through a sigmoid output, binary cross-entropy with smoothing: the catalog's loss."""
    catalog, native, _ = twins(preset, overrides)
    assert native.native_fallbacks == ["loss"] and catalog.native_fallbacks == []
    x, y = data(8)
    if "even_odd" in overrides[0]:
        y = (np.argmax(y, axis=1) % 2)[:, None].astype(np.float64)
    assert native.loss_and_gradients(x, y)[0] == catalog.loss_and_gradients(x, y)[0]


# -- batch norm ------------------------------------------------------------------------------------------------------
BN_MLP = ['model.hidden=[{units=12, activation="relu", batch_norm={momentum=0.9, epsilon=1e-3}}]']


@pytest.mark.parametrize("dtype, low, high", [("float64", 1e-14, 1e-12), ("float32", 1e-5, 2e-4)])
def test_native_batch_norm_is_flax_with_its_defaults(dtype, low, high, monkeypatch):
    """(a) flax.linen.BatchNorm with the spec's momentum and epsilon and Flax's defaults: one-pass variance
    (use_fast_variance) and force_float32_reductions, where the catalog pins both off; (c) on inputs offset by 3,
    the one-pass variance shows in the train-mode gradients (largest difference over the largest gradient: measured
    8.7e-14 in float64, 4.8e-5 in float32). force_float32_reductions promotes to at least float32, so a float64
    model still reduces in float64. The running statistics stay spec.dtype across steps (no retrace)."""
    calls = recording(monkeypatch, flax_normalization, "_compute_stats")
    catalog, native, _ = twins("mlp-relu-adam", BN_MLP, dtype=dtype)
    x, y = data(32)
    x = x + 3.0
    calls.clear()
    _, grads_c = catalog.loss_and_gradients(x, y)
    seen_catalog = [(c["use_fast_variance"], c["force_float32_reductions"]) for c in calls]
    calls.clear()
    _, grads_n = native.loss_and_gradients(x, y)
    seen_native = [(c["use_fast_variance"], c["force_float32_reductions"]) for c in calls]
    assert seen_catalog == [(False, False)] and seen_native == [(True, True)] and native.native_fallbacks == []
    largest = max(np.max(np.abs(grads_c[n])) for n in grads_c)
    difference = max(np.max(np.abs(grads_n[n] - grads_c[n])) for n in grads_c) / largest
    assert low <= difference <= high, difference
    native.load_training_data(x, y)
    for rates in ([0.1, 0.1], [0.05, 0.01]):
        native.train_epoch([np.arange(16), np.arange(16, 32)], np.array(rates))
    assert native.trace_counts["train"] == 1
    assert {leaf.dtype for leaf in jax.tree.leaves(native._state)} == {np.dtype(dtype), np.dtype("int32")}
    assert {v.dtype for v in native.get_weights().values()} == {np.dtype(dtype)}


# -- activations -----------------------------------------------------------------------------------------------------
def _derivative_at_zero(entry: dict, native: bool) -> float:
    module = ActivationLayer(entry=TypeAdapter(Activation).validate_python(entry), dtype=np.dtype("float64"), native=native)
    x = jnp.zeros((1, 1), jnp.float64)
    variables = module.init({"params": jax.random.key(0)}, x, train=False)
    return float(jax.grad(lambda x: module.apply(variables, x, train=False).sum())(x)[0, 0])


def test_native_leaky_relu_is_jax_nn_and_its_derivative_at_zero_is_one(monkeypatch):
    """(a) the trainer's model calls jax.nn.leaky_relu with the spec's slope; (c) its derivative at exactly 0 is 1
    (x >= 0 takes the identity branch), the catalog's is the slope."""
    calls = recording(monkeypatch, jax.nn, "leaky_relu")
    catalog, native, _ = twins("mlp-relu-adam", ['model.hidden=[{units=7, activation={name="leaky_relu", negative_slope=0.2}}]'])
    x, y = data(4)
    native.loss_and_gradients(x, y)
    assert calls and all(call == {"negative_slope": 0.2} for call in calls) and native.native_fallbacks == []
    assert _derivative_at_zero({"name": "leaky_relu", "negative_slope": 0.2}, native=True) == 1.0
    assert _derivative_at_zero({"name": "leaky_relu", "negative_slope": 0.2}, native=False) == 0.2


@pytest.mark.parametrize("entry", ["relu", "sigmoid", "tanh", {"name": "elu", "alpha": 0.7}, "selu", "softplus",
                                   "silu", {"name": "gelu", "approximate": "none"}, {"name": "gelu", "approximate": "tanh"},
                                   "hard_sigmoid", "linear"], ids=str)
def test_native_activations_agree_with_the_catalog_away_from_kinks(entry):
    """(b) jax.nn's functions are the catalog's formulas: values and derivatives agree on random points (float64;
    selu's constants are jax.nn's own)."""
    entry = TypeAdapter(Activation).validate_python(entry)
    x = jnp.asarray(np.random.default_rng(0).normal(scale=3.0, size=(64, 5)))
    out = {}
    for native in (False, True):
        module = ActivationLayer(entry=entry, dtype=np.dtype("float64"), native=native)
        f = lambda x: module.apply({}, x, train=False)  # noqa: E731
        out[native] = f(x), jax.grad(lambda x: f(x).sum())(x)
    for value_catalog, value_native in zip(out[False], out[True]):
        np.testing.assert_allclose(value_native, value_catalog, rtol=1e-14, atol=1e-15)


def test_native_prelu_is_flax_prelu_on_the_canonical_alpha(monkeypatch):
    """(a) one shared alpha: flax.linen.PReLU computes the layer, on the canonical `alpha` (1,), which set_weights
    loads and training moves; (c) nn.PReLU also takes x >= 0 as the identity branch."""
    from flax import linen
    calls = recording(monkeypatch, linen.PReLU, "__call__")
    prelu = 'model.hidden=[{units=7, activation={name="prelu", initial_value=0.25, per_channel=false}}]'
    catalog, native, plan = twins("mlp-relu-adam", [prelu])
    x, y = data(8)
    (loss_c, grads_c), (loss_n, grads_n) = catalog.loss_and_gradients(x, y), native.loss_and_gradients(x, y)
    assert calls and native.native_fallbacks == []
    alpha = [name for name in grads_c if name.endswith("/alpha")]
    assert alpha and native.get_weights()[alpha[0]].shape == (1,)
    assert abs(loss_n - loss_c) <= AGREE_RTOL * abs(loss_c)
    np.testing.assert_allclose(grads_n[alpha[0]], grads_c[alpha[0]], rtol=1e-12)
    assert _derivative_at_zero({"name": "prelu", "initial_value": 0.25, "per_channel": False}, native=True) == 1.0


@pytest.mark.parametrize("hidden, fallback", [
    ('{name="softplus", beta=2.0}', "activation:softplus"),
    ('{name="prelu", initial_value=0.25, per_channel=true}', "activation:prelu"),
    ('{name="maxout", pieces=2}', "activation:maxout"),
    ('"step"', "activation:step"),
    ('"sign"', "activation:sign"),
    ('{name="rrelu", lower=0.1, upper=0.3}', "activation:rrelu"),
])
def test_native_activation_falls_back_where_jax_nn_has_none(hidden, fallback):
    """(d) no jax.nn / Flax built-in for the entry as the spec states it: the catalog's, named in native_fallbacks;
    an activation kept on the catalog by catalog_components is not a fallback."""
    native, _, _ = make("mlp-relu-adam", "float32", [*NATIVE, f"model.hidden=[{{units=8, activation={hidden}}}]"])
    assert native.native_fallbacks == [fallback]
    kept, _, _ = make("mlp-relu-adam", "float32", [*NATIVE, f"model.hidden=[{{units=8, activation={hidden}}}]",
                                                   f'catalog_components=["{fallback}"]'])
    assert kept.native_fallbacks == []


# -- dropout, pooling, initializers --------------------------------------------------------------------------------
def test_native_dropout_and_pooling_agree_with_the_catalog_with_and_without_injected_noise():
    """(b) nn.Dropout at its defaults is what the catalog already calls, and nn.max_pool(window, strides, padding)
    gives the catalog's reshape pool's values (model.max_pool; its gradient rule: tests/test_jax_pool.py): same
    draws without noise, the injected multipliers when given."""
    catalog, native, plan = twins("seed-cnn", SMALL_CNN, native_only=['catalog_components=["batch_norm"]'])
    assert {"dropout", "pooling"} <= native.model.native and native.native_fallbacks == []
    x, y = data(6)
    assert native.loss_and_gradients(x, y)[0] == catalog.loss_and_gradients(x, y)[0]
    noise = {layer.name: np.random.default_rng(1).integers(0, 2, (6, *layer.input_shape)) / 0.7
             for layer in native.noisy_layers}
    assert native.loss_and_gradients(x, y, noise)[0] == catalog.loss_and_gradients(x, y, noise)[0]
    np.testing.assert_array_equal(native.layer_outputs(x)[plan[-1].name], catalog.layer_outputs(x)[plan[-1].name])


def test_native_initializers_are_jax_nn_initializers(monkeypatch):
    """(a) glorot_uniform kernels and zeros biases come from jax.nn.initializers (another draw than the catalog's
    from the same seed, from the same distribution); (d) torch_default has no JAX built-in: the whole component
    falls back."""
    calls = recording(monkeypatch, jax.nn.initializers, "glorot_uniform")
    native, spec, plan = make("mlp-relu-adam", "float64", [*TINY_MLP, *NATIVE, 'model.kernel_init="he_uniform"'])
    assert native.native_fallbacks == [] and "initializer" in native.model.native
    catalog, _, _ = make("mlp-relu-adam", "float64", TINY_MLP + ['model.kernel_init="he_uniform"'])
    weights, other = native.get_weights(), catalog.get_weights()
    layer = next(layer for layer in plan if hasattr(layer, "kernel_init"))
    kernel = layer.name + "/kernel"
    assert not np.array_equal(weights[kernel], other[kernel])
    check_sample(weights[kernel], layer.kernel_init.distribution(*weights[kernel].shape), kernel)
    assert not np.any(weights[layer.name + "/bias"])
    native, _, _ = make("mlp-relu-adam", "float64", [*TINY_MLP, *NATIVE])
    assert calls and native.native_fallbacks == []
    for where in ("bias_init", "kernel_init"):
        fallback, _, _ = make("mlp-relu-adam", "float64", [*TINY_MLP, *NATIVE, f'model.{where}="torch_default"'])
        assert fallback.native_fallbacks == ["initializer"] and "initializer" not in fallback.model.native, where
