"""The swap search of verify --native (experiments.verify.attribution): which components it tries at each level,
and how a swap that fixes a row is named."""

from experiments.spec import load_spec
from experiments.verify.attribution import UNEXPLAINED, _carry_causes, candidates, cause_name
from experiments.verify.ladder import Row


def row(level, quantity, first="keras", second="numpy", passed=False, cause=""):
    return Row(level, first, second, quantity, {}, 1e-10, passed, cause=cause)


def test_each_level_tries_the_components_that_act_there():
    spec = load_spec("seed-cnn", ['implementation="native"'])
    assert candidates(spec, "forward") == ["activation:relu", "activation:leaky_relu", "batch_norm", "pooling"]
    assert candidates(spec, "gradients") == ["activation:relu", "activation:leaky_relu", "batch_norm", "pooling",
                                             "dropout", "loss"]
    assert candidates(spec, "step") == ["optimizer"]
    clipped = load_spec("mlp-relu-adam", ['implementation="native"', "optimizer.clip_global_norm=1.0"])
    assert candidates(clipped, "step") == ["optimizer", "clipping"]
    assert candidates(clipped, "forward") == ["activation:relu"]  # no batch norm, no pooling in this MLP


def test_a_fixing_swap_is_named_by_the_differences_catalog_or_reported_as_new():
    spec = load_spec("seed-cnn", ['implementation="native"'])
    assert cause_name("keras", ("optimizer",), spec, row("step", "adam/weights/dense_0/kernel")) == \
        "keras-adam-epsilon-hat, keras-float32-hyperparameters"
    assert cause_name("jax", ("optimizer",), spec, row("step", "sgd/weights/dense_0/kernel")) == "new difference: optimizer"
    assert cause_name("jax", ("activation:leaky_relu",), spec, row("gradients", "conv2d_0/kernel")) == \
        "jax-leaky-relu-derivative-at-zero"
    # a known difference that does not show at this level is not the name of a forward failure
    assert cause_name("torch", ("batch_norm",), spec, row("forward", "batch_norm_0")) == "new difference: batch_norm"
    assert cause_name("torch", ("batch_norm", "loss"), spec, row("gradients", "dense_0/bias")) == \
        "torch-batch-norm-cpu-kernel + new difference: loss"


def test_pairs_of_native_backends_take_the_causes_found_against_the_oracle():
    rows = [row("step", "adam/weights/w", "keras", cause="keras-adam-epsilon-hat"),
            row("step", "adam/weights/w", "jax", passed=True),
            row("step", "adam/weights/w", "keras", "jax"),
            row("gradients", "w", "torch", "jax")]
    _carry_causes(rows)
    assert rows[2].cause == "keras: keras-adam-epsilon-hat"
    assert rows[3].cause == UNEXPLAINED
