"""Spec loading, overrides and validation: every bad spec is one line naming field, value and what is allowed."""

import math
import tomllib

import pytest

from experiments.errors import SpecError
from experiments.spec import build_plan, load_spec, parameter_info, preset_names, trainable_parameter_count
from experiments.spec.loading import toml_value

SEED_PRESETS = ["mlp-relu-adam", "seed-cnn", "seed-mlp-sigmoid", "seed-mlp-relu", "seed-torch-binary", "seed-torch-cnn"]


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
        # 784*65536 + 65536 + 65536*65536 + 65536 + 65536*10 + 10 parameters: every width allowed, the sum too big to build
        (["model.hidden[0].units=65536", "model.hidden[1].units=65536"], "model: 4,347,133,962 trainable parameters, more than the 100,000,000 allowed"),
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
        (['model.conv[2].padding="valid"', "model.conv[2].kernel_size=9"], "model.conv[2].kernel_size: 9 does not fit the 7x7 input"),
        (["model.conv[0].kernel_size=29"], "model.conv[0].kernel_size: got 29; input should be less than or equal to 28"),
        (["model.conv[0].pool.size=9223372036854775807"], "model.conv[0].pool.size: got 9223372036854775807; input should be less than or equal to 28"),
        (["model.conv[0].filters=65537"], "model.conv[0].filters: got 65537; input should be less than or equal to 65536"),
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


def test_relative_base_is_found_from_the_spec_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    (folder / "nested").mkdir(parents=True)
    (folder / "sibling.toml").write_text('base = "mlp-relu-adam"\nname = "sibling"\n[optimizer]\nlearning_rate = 0.005\n')
    (folder / "child.toml").write_text('base = "sibling.toml"\nname = "child"\n[training]\nepochs = 3\n')
    (folder / "nested" / "grandchild.toml").write_text('base = "../child.toml"\nname = "grandchild"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "sibling.toml").write_text('base = "seed-cnn"\nname = "decoy"\n')  # must not be picked up
    monkeypatch.chdir(elsewhere)
    spec = load_spec(str(folder / "nested" / "grandchild.toml"))
    assert (spec.name, spec.training.epochs, spec.optimizer.learning_rate, spec.model.kind) == ("grandchild", 3, 0.005, "mlp")
    monkeypatch.chdir(tmp_path)
    assert load_spec("specs/child.toml").name == "child"


def test_preset_name_as_base_still_means_the_preset(tmp_path):
    (tmp_path / "seed-cnn").write_text('name = "a file named like a preset"\n')
    (tmp_path / "mine.toml").write_text('base = "seed-cnn"\nname = "mine"\n')
    assert load_spec(str(tmp_path / "mine.toml")).model.kind == "cnn"


@pytest.mark.parametrize(
    "files, start, expected",
    [
        ({"a.toml": 'base = "a.toml"'}, "a.toml", "base: 'a.toml' makes a cycle of bases"),
        ({"a.toml": 'base = "sub/../b.toml"', "b.toml": 'base = "./a.toml"', "sub/keep": ""}, "a.toml", "base: './a.toml' makes a cycle"),
        ({"a.toml": 'base = "sub/b.toml"', "sub/b.toml": 'base = "../a.toml"'}, "a.toml", "base: '../a.toml' makes a cycle"),
        ({"a.toml": 'base = "missing.toml"'}, "a.toml", "base: spec file not found: "),
        ({"a.toml": 'base = "no-such-preset"'}, "a.toml", "base: unknown preset 'no-such-preset'; available presets: "),
        ({"a.toml": f'base = "{"x" * 300}.toml"'}, "a.toml", "base: spec file not found: "),
        ({"a.toml": "base = 3"}, "a.toml", "base: got 3; give a preset name or a spec .toml file"),
    ],
)
def test_bad_bases_are_one_clear_line(tmp_path, files, start, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    with pytest.raises(SpecError) as info:
        load_spec(str(tmp_path / start))
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["{name=", '{name="sgd" learning_rate=0.1}', "[1, 2", '"adam', "'adam", '{name = "sgd",}'])
def test_override_that_looks_like_toml_but_does_not_parse_says_so(value):
    with pytest.raises(SpecError) as info:
        load_spec("mlp-relu-adam", [f"optimizer={value}"])
    message = str(info.value)
    assert message.startswith(f"--set {'optimizer=' + value!r}: the value is not valid TOML (") and "\n" not in message
    assert 'write a table as {name = "sgd", learning_rate = 0.1}' in message
    assert "optimizer.name" not in message


def test_override_toml_error_points_into_the_value():
    with pytest.raises(SpecError, match=r"Unclosed inline table \(at character 13 of the value\)"):
        load_spec("mlp-relu-adam", ['optimizer={name="sgd" learning_rate=0.1}'])  # character 13: the 'l' after the space


def test_unknown_key_with_a_line_break_stays_one_line(tmp_path):
    spec_file = tmp_path / "mine.toml"
    spec_file.write_text('base = "mlp-relu-adam"\n[optimizer]\n"line\\nbreak" = 1\n')
    with pytest.raises(SpecError) as info:
        load_spec(str(spec_file))
    assert "optimizer['line\\nbreak']: unknown key; allowed keys here: name, learning_rate" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("override", ["optimizer.name=[]", "optimizer={name={}}", "model.hidden[0].activation={name=[1]}"])
def test_a_name_that_is_a_list_or_table_is_one_clear_line(override):
    with pytest.raises(SpecError, match=r"name: '(\[\]|\{\}|\[1\])' is not known; allowed: "):
        load_spec("mlp-relu-adam", [override])


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (['model.bias_init={name="constant", value=1e308}'], "model.bias_init.value: 1e+308 does not fit dtype float32 (largest 3.403e+38)"),
        (['model.hidden[0].activation={name="prelu", initial_value=-1e39, per_channel=true}'],
         "model.hidden[0].activation.initial_value: -1e+39 does not fit dtype float32"),
        (['model.kernel_init={name="uniform", minval=-1e308, maxval=1e308}', 'dtype="float64"'],
         "model.hidden[0]: the kernel initialiser uniform gives uniform(-1e+308, 1e+308) for layer dense_0, which dtype float64 cannot draw from"),
        (['model.kernel_init={name="variance_scaling", scale=5e-324, mode="fan_in", distribution_kind="truncated_normal"}'],
         "model.hidden[0]: the kernel initialiser variance_scaling gives truncated_normal(0, 0) for layer dense_0"),
        (['model.hidden[1].bias_init={name="normal", stddev=1e-50}'], "model.hidden[1]: the bias initialiser normal gives normal(0, 1e-50) for layer dense_1, which dtype float32"),
        (['model.hidden[1].bias_init={name="normal", mean=3e38, stddev=1e38}'], "model.hidden[1]: the bias initialiser normal gives normal(3e+38, 1e+38)"),
    ],
)
def test_values_the_dtype_cannot_hold_are_rejected(overrides, expected):
    with pytest.raises(SpecError) as info:
        load_spec("mlp-relu-adam", overrides)
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ['model.bias_init={name="constant", value=1e308}', 'dtype="float64"'],
        ['model.kernel_init={name="uniform", minval=-1e300, maxval=1e300}', 'dtype="float64"'],
        ['model.hidden[1].bias_init={name="normal", stddev=1e-30}'],
    ],
)
def test_extreme_values_the_dtype_can_hold_are_kept(overrides):
    load_spec("mlp-relu-adam", overrides)


def test_toml_value_reads_back_with_control_characters_and_odd_keys():
    value = {"plain": ["a\"b\\c", "\x00", "\x7f", "line\nbreak\t", "名前"], "a b": {"": 1.5, "x/y": [True, 2**63]}}
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value
    assert toml_value({"name": "relu", "negative_slope": 0.1}) == '{name = "relu", negative_slope = 0.1}'
