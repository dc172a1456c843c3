"""Spec loading, overrides and validation: every bad spec is one line naming field, value and what is allowed."""

import math

import pytest

from experiments.errors import SpecError
from experiments.spec import build_plan, load_spec, parameter_info, preset_names, trainable_parameter_count

SEED_PRESETS = ["mlp-relu-adam", "seed-cnn", "seed-mlp-sigmoid", "seed-mlp-relu"]


def test_required_presets_ship():
    assert set(SEED_PRESETS) <= set(preset_names())


@pytest.mark.parametrize("preset", SEED_PRESETS)
def test_preset_loads_and_round_trips(preset):
    spec = load_spec(preset)
    assert spec.name == preset
    again = type(spec).model_validate(spec.to_dict())
    assert again == spec and again.spec_hash() == spec.spec_hash()


def test_seed_cnn_is_the_article_model():
    spec = load_spec("seed-cnn")
    plan = build_plan(spec.model, (28, 28, 1), 10)
    shapes = {layer.name: layer.output_shape for layer in plan}
    assert [shapes[f"max_pool_{i}"] for i in range(3)] == [(14, 14, 32), (7, 7, 64), (4, 4, 128)]
    assert shapes["flatten_0"] == (2048,)
    assert [b.units for b in spec.model.hidden] == [120, 40]
    assert [b.dropout for b in spec.model.conv] == [0.3, 0.3, 0.4]
    assert all(b.post_activation.negative_slope == 0.1 for b in spec.model.conv + spec.model.hidden)
    assert (spec.optimizer.name, spec.training.batch_size, spec.training.epochs) == ("adam", 64, 30)


def test_seed_mlp_presets():
    sigmoid, relu = load_spec("seed-mlp-sigmoid"), load_spec("seed-mlp-relu")
    for spec in (sigmoid, relu):
        assert [b.units for b in spec.model.hidden] == [784, 784]
        assert spec.model.kernel_init.name == "normal" and spec.model.kernel_init.stddev == 0.05
        assert (spec.training.batch_size, spec.training.epochs) == (200, 20)
    assert [b.activation.name for b in relu.model.hidden] == ["relu", "relu"]
    assert relu.model.output_activation.name == "softmax" and sigmoid.model.output_activation.name == "sigmoid"


def test_parameter_count_by_hand():
    spec = load_spec("mlp-relu-adam")
    plan = build_plan(spec.model, (28, 28, 1), 10)
    assert trainable_parameter_count(plan) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    cnn = build_plan(load_spec("seed-cnn").model, (28, 28, 1), 10)
    info = parameter_info(cnn)
    assert info["conv2d_1/kernel"].shape == (3, 3, 32, 64)
    assert info["dense_0/kernel"].shape == (2048, 120)
    assert not info["batch_norm_0/mean"].trainable


@pytest.mark.parametrize(
    "override, value",
    [
        ("optimizer.learning_rate=0.01", 0.01),
        ("training.epochs=3", 3),
        ("model.hidden[0].units=64", 64),
        ("model.hidden.1.units=32", 32),
        ('data.dataset="mnist-subset"', "mnist-subset"),
        ("data.dataset=mnist-subset", "mnist-subset"),
    ],
)
def test_overrides_apply(override, value):
    spec = load_spec("mlp-relu-adam", [override])
    node = spec.to_dict()
    key = override.split("=")[0].replace("[", ".").replace("]", "")
    for part in key.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    assert node == value


def test_override_turns_a_name_into_a_table():
    spec = load_spec("mlp-relu-adam", ['model.hidden[0].activation.name="leaky_relu"', "model.hidden[0].activation.negative_slope=0.2"])
    assert spec.model.hidden[0].activation.negative_slope == 0.2


def test_inline_table_override_switches_optimizer():
    spec = load_spec("mlp-relu-adam", ['optimizer={name="sgd", learning_rate=0.1, momentum=0.9}'])
    assert (spec.optimizer.name, spec.optimizer.momentum) == ("sgd", 0.9)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["training.epochs=-1"], "training.epochs: got -1"),
        (["training.epochs=2.5"], "training.epochs: got 2.5; input should be a valid integer"),
        (['training.epochs="ten"'], "training.epochs: got 'ten'"),
        (["optimizer.learning_rate=nan"], "optimizer.learning_rate: got nan; input should be a finite number"),
        (["optimizer.learning_rate=inf"], "optimizer.learning_rate"),
        (["optimizer.name=adamx"], "optimizer.name: 'adamx' is not known; allowed: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw"),
        (["optimizer.lr=0.1"], "optimizer.lr: unknown key; allowed keys here: name, learning_rate"),
        (["optimzer.name=sgd"], "optimzer: unknown key; allowed keys here: name, description, model"),
        (["model.hidden[0].activation=swish2"], "model.hidden[0].activation.name: 'swish2' is not known; allowed: sigmoid, tanh, relu, leaky_relu, prelu"),
        (['model.hidden[0].activation="leaky_relu"'], "model.hidden[0].activation.negative_slope: missing"),
        (["dtype=float16"], "dtype: got 'float16'; input should be 'float32' or 'float64'"),
        (["seed=true"], "seed: got True"),
        (["model.hidden[7].units=3"], "index 7 is out of range for model.hidden"),
        (["model.hidden[0].units=0"], "model.hidden[0].units: got 0"),
        (["data.validation_fraction=0.9"], "data.validation_fraction: got 0.9"),
        (["nonsense"], "expected key=value"),
    ],
)
def test_bad_specs_are_one_clear_line(overrides, expected):
    with pytest.raises(SpecError) as info:
        load_spec("mlp-relu-adam", overrides)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (['model.conv[0].padding="valid"', "model.conv[0].kernel_size=29"], "model.conv[0].kernel_size: 29 does not fit the 28x28 input"),
        (['model.conv[2].pool={size=8, stride=8, padding="valid"}'], "model.conv[2].pool.size: a 8x8 'valid' pool does not fit the 7x7 input"),
    ],
)
def test_shapes_that_cannot_work_are_rejected(overrides, expected):
    with pytest.raises(SpecError) as info:
        load_spec("seed-cnn", overrides)
    assert expected in str(info.value)


def test_unknown_preset_lists_presets(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec("no-such-preset")
    assert "available presets: " in str(info.value) and "seed-cnn" in str(info.value)
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(str(tmp_path / "missing.toml"))


def test_spec_file_with_base_and_bad_toml(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text('base = "mlp-relu-adam"\nname = "mine"\n[optimizer]\nlearning_rate = 0.005\n')
    spec = load_spec(str(good))
    assert spec.name == "mine" and math.isclose(spec.optimizer.learning_rate, 0.005)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(str(bad))
