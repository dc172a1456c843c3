"""experiments.verify.hints: which components act on a failing quantity, from the spec's plan; the differences
catalog's entries it names, phrased by the spec's implementation; the layer-kind layout notes; and the ladder
threading the spec into each failing row's hint."""

import numpy as np
import pytest

from experiments.spec import load_spec
from experiments.verify.hints import (BATCH_NORM_DEFAULTS, BATCH_NORM_TRAIN_VARIANCE, CATALOG_HERE, CONDITIONING, CONV_PADDING,
                                      FLATTEN_ORDER, FLAX_POOL_STRIDES, SAME_POOLING, components_at, entry_of, hint_for)
from experiments.verify.ladder import Row, compare_all, compare_pair

NATIVE = 'implementation="native"'
CLIPPED = "optimizer.clip_global_norm=1.0"


def _hint(spec, level, quantity, pair):
    return hint_for(Row(level, *pair, quantity, {}, 1e-12, False), spec)


@pytest.fixture(scope="module")
def cnn():
    """conv2d_0, activation_0 relu, batch_norm_0, activation_1 leaky_relu, max_pool_0 (28 -> 14), dropout_0, ...,
    max_pool_2 (7 -> 4), dropout_2, flatten_0 (4, 4, 128), dense_0, ..."""
    return load_spec("seed-cnn", [NATIVE])


def test_a_forward_output_is_acted_on_by_its_layer_and_the_earlier_ones_only(cnn):
    assert components_at(cnn, "forward", "conv2d_0") == []
    assert components_at(cnn, "forward", "activation_0") == ["activation:relu"]
    assert components_at(cnn, "forward", "batch_norm_0") == ["activation:relu", "batch_norm"]
    assert components_at(cnn, "forward", "max_pool_0") == ["activation:relu", "activation:leaky_relu", "batch_norm", "pooling"]
    assert components_at(cnn, "forward", "init/conv2d_0/kernel") == ["initializer"]  # a backend's own initial draw


@pytest.mark.parametrize("level, overrides, expected", [
    ("gradients", [], ["activation:relu", "activation:leaky_relu", "batch_norm", "pooling", "dropout", "loss"]),
    ("step", [], ["optimizer"]),
    ("step", [CLIPPED], ["optimizer", "clipping"]),
    ("trajectory", [CLIPPED], ["activation:relu", "activation:leaky_relu", "batch_norm", "pooling", "dropout", "loss",
                               "optimizer", "clipping", "schedule"]),
])
def test_gradients_steps_and_trajectories_are_acted_on_by_their_levels_components(level, overrides, expected):
    assert components_at(load_spec("seed-cnn", [NATIVE, *overrides]), level, "dense_0/kernel") == expected


def test_a_steps_optimizer_entry_is_its_level3_case_and_elsewhere_the_specs(cnn):
    assert entry_of("optimizer", cnn, "step", "rmsprop-centered-momentum/state/dense_0/kernel/v") == "rmsprop"
    assert entry_of("optimizer", cnn, "trajectory", "at/10/dense_0/kernel") == cnn.optimizer.name == "adam"
    assert entry_of("loss", cnn, "gradients", "loss") == "categorical_crossentropy"
    assert entry_of("activation:leaky_relu", cnn) == "leaky_relu" and entry_of("batch_norm", cnn) is None
    assert entry_of("initializer", cnn, "forward", "init/dense_0/kernel") == cnn.model.kernel_init.name


@pytest.mark.parametrize("overrides, built_in", [([NATIVE], True), ([], False),
                                                 ([NATIVE, 'catalog_components=["optimizer"]'], False)])
def test_a_difference_is_a_known_built_in_one_only_where_the_backend_uses_its_built_in(overrides, built_in):
    """Catalog mode (or a component kept on the catalog): the same entries, as a place to look, not a cause."""
    hint = _hint(load_spec("mlp-relu-adam", overrides), "step", "adam/weights/dense_0/kernel", ("keras", "numpy"))
    assert "keras-adam-epsilon-hat (keras)" in hint
    assert hint.startswith("known built-in differences here: keras-adam-epsilon-hat") is built_in
    assert hint.startswith(f"{CATALOG_HERE}: keras-adam-epsilon-hat") is not built_in


def test_an_activation_kept_on_the_catalog_is_a_place_to_look_beside_the_built_in_batch_norm():
    spec = load_spec("seed-cnn", [NATIVE, 'catalog_components=["activation:leaky_relu"]'])
    hint = _hint(spec, "gradients", "conv2d_0/kernel", ("jax", "numpy"))
    built_in, _, catalog = hint.partition(CATALOG_HERE)
    assert "flax-batch-norm-fast-variance (jax)" in built_in and "jax-leaky-relu-derivative-at-zero" not in built_in
    assert "jax-leaky-relu-derivative-at-zero (jax)" in catalog


@pytest.mark.parametrize("quantity, pair, note", [
    ("flatten_0", ("keras", "numpy"), FLATTEN_ORDER),  # (4, 4, 128): the two orders differ
    ("dense_0", ("torch", "numpy"), FLATTEN_ORDER),  # torch's flatten order shows in the dense layer after it
    ("max_pool_2", ("keras", "numpy"), SAME_POOLING),  # 7 -> 4: one padding pixel, at the end
    ("max_pool_2", ("jax", "numpy"), FLAX_POOL_STRIDES),
    ("conv2d_0", ("torch", "jax"), CONV_PADDING),
    ("batch_norm_0", ("torch", "keras"), BATCH_NORM_DEFAULTS),
    ("activation_1", ("torch", "keras"), "`mnist-parity defaults leaky_relu`"),
])
def test_a_forward_row_names_the_layout_note_of_its_layer_kind(cnn, quantity, pair, note):
    assert note in _hint(cnn, "forward", quantity, pair)


@pytest.mark.parametrize("quantity, pair, note", [
    ("dense_0", ("keras", "jax"), FLATTEN_ORDER),  # neither side flattens channels first
    ("dense_1", ("torch", "numpy"), FLATTEN_ORDER),  # not after the flatten
    ("max_pool_0", ("keras", "numpy"), SAME_POOLING),  # 28 -> 14 needs no padding
    ("max_pool_2", ("keras", "numpy"), FLAX_POOL_STRIDES),  # no jax side
    ("activation_0", ("torch", "keras"), "mnist-parity defaults"),  # relu has no hyperparameter to leave at a default
    ("logits", ("torch", "keras"), "mnist-parity defaults"),  # a dense layer leaves no default to the frameworks
])
def test_a_forward_row_names_no_note_its_layer_does_not_call_for(cnn, quantity, pair, note):
    assert note not in _hint(cnn, "forward", quantity, pair)


def test_an_mlps_flatten_of_a_single_channel_has_no_order_to_get_wrong():
    assert _hint(load_spec("mlp-relu-adam", []), "forward", "flatten_0", ("torch", "keras")) == ""


def test_a_batch_norm_parameters_gradient_names_the_train_mode_variance(cnn):
    assert _hint(cnn, "gradients", "batch_norm_0/scale", ("torch", "keras")).startswith(BATCH_NORM_TRAIN_VARIANCE)
    assert BATCH_NORM_TRAIN_VARIANCE not in _hint(cnn, "gradients", "conv2d_0/kernel", ("torch", "keras"))


def test_without_a_spec_a_failing_row_gets_only_the_conditioning_note():
    assert _hint(None, "step", "adam/weights/dense_0/kernel", ("keras", "numpy")) == CONDITIONING
    assert _hint(None, "forward", "flatten_0", ("keras", "numpy")) == ""


def test_the_ladder_gives_each_failing_row_the_hint_of_its_spec():
    spec = load_spec("mlp-relu-adam", [NATIVE, 'dtype="float64"'])
    a = {"step/adam/weights/dense_0/kernel": np.ones(4), "step/sgd/weights/dense_0/kernel": np.ones(4),
         "forward/dense_0": np.ones(4)}
    b = {key: value * (1.0 + 1e-3) for key, value in a.items()}
    b["forward/dense_0"] = a["forward/dense_0"]
    rows = {row.quantity: row for row in compare_pair("keras", a, "numpy", b, "float64", spec)}
    assert rows["dense_0"].passed and rows["dense_0"].hint == ""
    assert "keras-adam-epsilon-hat (keras)" in rows["adam/weights/dense_0/kernel"].hint
    assert "keras-adam-epsilon-hat" not in rows["sgd/weights/dense_0/kernel"].hint
    assert "keras-float32-hyperparameters (keras)" in rows["sgd/weights/dense_0/kernel"].hint
    every = compare_all({"numpy": b, "keras": a}, "float64", spec)
    assert [row.hint for row in every] == [row.hint for row in rows.values()]
