"""The swap search of verify --native (experiments.verify.attribution): which components it tries at each level,
and how a swap that fixes a row is named."""

from experiments.spec import load_spec
from experiments.verify.attribution import UNEXPLAINED, _carry_causes, _trajectory_swaps, _Task, cause_name
from experiments.verify.hints import components_at
from experiments.verify.ladder import Row


def row(level, quantity, first="keras", second="numpy", passed=False, cause=""):
    return Row(level, first, second, quantity, {}, 1e-10, passed, cause=cause)


def test_each_level_tries_the_components_that_act_there():
    spec = load_spec("seed-cnn", ['implementation="native"'])
    assert components_at(spec, "forward") == ["activation:relu", "activation:leaky_relu", "batch_norm", "pooling"]
    assert components_at(spec, "gradients") == ["activation:relu", "activation:leaky_relu", "batch_norm", "pooling",
                                                "dropout", "loss"]
    assert components_at(spec, "step") == ["optimizer"]
    assert components_at(spec, "forward", "init/conv2d_0/kernel") == ["initializer"]
    clipped = load_spec("mlp-relu-adam", ['implementation="native"', "optimizer.clip_global_norm=1.0"])
    assert components_at(clipped, "step") == ["optimizer", "clipping"]
    assert components_at(clipped, "forward") == ["activation:relu"]  # no batch norm, no pooling in this MLP


def test_the_trajectory_search_adds_the_schedule_only_where_the_rate_changes():
    def others(schedule):
        spec = load_spec("mlp-relu-adam", ['implementation="native"', f"schedule={schedule}"])
        return [swap[-1] for swap in _trajectory_swaps(_Task("cell", spec, "torch", [], [], {}))]

    assert others('{name = "constant"}') == ["activation:relu", "loss", "optimizer"]
    spec = load_spec("mlp-relu-adam", ['implementation="native"'])
    explained = _Task("cell", spec, "keras", [], [], {}, {("forward", "init/dense_0/kernel"): ("initializer",),
                                                         ("step", "adam/weights/dense_0/kernel"): ("optimizer",)})
    # the initial draw's cause is left out: the trajectory starts from the shared weights
    assert _trajectory_swaps(explained)[0] == ("optimizer",)
    assert others('{name = "cosine", decay_steps = 40}') == ["activation:relu", "loss", "optimizer", "schedule"]


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


BATCH_NORM_EPSILON_TIMES_TEN = '''
import torch.nn

_init = torch.nn.BatchNorm2d.__init__


def init(self, *args, eps=1e-5, **kwargs):  # a native backend built with another batch-norm epsilon
    _init(self, *args, eps=10 * eps, **kwargs)


torch.nn.BatchNorm2d.__init__ = init
'''
SMALL_BATCH_NORM_CNN = [
    'model.kind="cnn"', 'model.hidden=[{units = 16, activation = "relu"}]',
    'model.conv=[{filters = 4, kernel_size = 3, padding = "same", activation = "relu", '
    'batch_norm = {momentum = 0.9, epsilon = 1e-3}, pool = {size = 2, stride = 2, padding = "valid"}}]',
]


def _verify_native(tmp_path, backend, levels, plant=None):
    import json
    import os
    from pathlib import Path

    from tests.cli_helpers import mnist_parity, only_run_dir

    env = {}
    if plant is not None:
        (tmp_path / "plant").mkdir()
        (tmp_path / "plant" / "sitecustomize.py").write_text(plant)
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "plant"), root, *filter(None, [os.environ.get("PYTHONPATH")])])
    overrides = [argument for override in SMALL_BATCH_NORM_CNN for argument in ("--set", override)]
    result = mnist_parity("verify", "mlp-relu-adam", "--native", "--levels", levels, "--dtype", "float64", "--backends",
                          backend, "--dataset", "mnist-subset", "--threads", "1", "--out", str(tmp_path / "runs"),
                          *overrides, env=env)
    return result, json.loads((only_run_dir(tmp_path / "runs") / "verify.json").read_text())


def test_a_planted_native_difference_is_found_by_swapping_and_reported_as_new(tmp_path):
    """torch's native batch norm built with ten times the epsilon (every process the command starts): the forward
    level fails at the batch norm, swapping batch_norm back to the catalog makes it pass, and no known difference of
    torch's batch norm shows at the forward level, so the cause is a new one."""
    result, document = _verify_native(tmp_path, "torch", "1", BATCH_NORM_EPSILON_TIMES_TEN)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    (line,) = document["levels"]["1"]["summary"]
    assert (line["first"], line["passed"], line["first_failure"]) == ("torch", False, "batch_norm_0")
    failing = [row for row in document["levels"]["1"]["rows"] if not row["passed"]]
    assert failing and {row["cause"] for row in failing} == {"new difference: batch_norm"}


def test_without_the_plant_the_native_forward_passes(tmp_path):
    result, document = _verify_native(tmp_path, "torch", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert document["levels"]["1"]["passed"]
