"""Level 5 statistics and the comparison statistics, on numbers whose answers are known."""

import numpy as np
import pytest

from experiments.verify.statistical import equivalence, summarize
from experiments.verify.stats import compare


def test_identical_backends_are_equivalent():
    a = [0.941, 0.944, 0.939, 0.946, 0.942]
    b = [x + 0.0002 * (-1) ** i for i, x in enumerate(a)]
    result = equivalence("torch", a, "keras", b)
    assert result.verdict == "equivalent" and result.p_tost < 0.05


def test_a_large_gap_is_different():
    a = [0.94, 0.941, 0.939, 0.942, 0.940]
    b = [x - 0.02 + 0.001 * i for i, x in enumerate(a)]
    result = equivalence("torch", a, "jax", b)
    assert result.verdict == "different" and result.ci90_low > 0.3


def test_noisy_small_samples_are_inconclusive():
    a, b = [0.94, 0.95], [0.945, 0.935]
    assert equivalence("torch", a, "jax", b).verdict == "inconclusive"


def test_tost_p_value_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    a = 0.94 + rng.normal(0, 0.002, 8)
    b = a + rng.normal(0.0005, 0.001, 8)
    result = equivalence("x", list(a), "y", list(b))
    d = (a - b) * 100
    from scipy import stats

    t_lower = (d.mean() + 0.3) / (d.std(ddof=1) / np.sqrt(8))
    t_upper = (d.mean() - 0.3) / (d.std(ddof=1) / np.sqrt(8))
    expected = max(stats.t.sf(t_lower, 7), stats.t.cdf(t_upper, 7))
    assert result.p_tost == pytest.approx(expected, rel=1e-12)


def test_summary_interval_contains_the_mean():
    s = summarize("torch", [0.94, 0.945, 0.943])
    assert s.ci_low < s.mean < s.ci_high and s.mean == pytest.approx(94.2666666666, rel=1e-9)


def test_compare_statistics():
    reference = np.array([1.0, -2.0, 0.0, 4.0])
    actual = reference + np.array([0.0, 1e-3, 1e-6, -2e-3])
    stats = compare(actual, reference)
    assert stats.max_abs == pytest.approx(2e-3) and stats.worst_index == (3,)
    assert stats.normwise_rel == pytest.approx(2e-3 / 4.0)
    assert stats.max_rel == pytest.approx(1e-6 / 1e-12)  # the floor keeps it finite at a zero reference
    assert stats.needed == stats.normwise_rel


ABOVE_CHANCE = 0.5
"""One epoch of mlp-relu-adam on mnist-subset reaches well above 10% chance on every backend and seed."""


def test_verify_level5_end_to_end(tmp_path):
    import json

    from tests.cli_helpers import mnist_parity, only_run_dir

    result = mnist_parity(
        "verify", "mlp-relu-adam", "--levels", "5", "--seeds", "2", "--set", "training.epochs=1", "--dataset", "mnist-subset",
        "--backends", "torch,jax", "--out", str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads((only_run_dir(tmp_path) / "verify.json").read_text())
    level = document["levels"]["5"]
    assert level["seeds"] == [0, 1] and [b["backend"] for b in level["backends"]] == ["torch", "jax"]
    assert len(level["pairs"]) == 1
    torch_accuracies, jax_accuracies = (b["accuracies"] for b in level["backends"])
    assert len(torch_accuracies) == len(jax_accuracies) == 2
    assert all(ABOVE_CHANCE < a <= 1.0 for a in torch_accuracies + jax_accuracies), (torch_accuracies, jax_accuracies)
    # The verdict follows from the recorded accuracies by the paired 90% t interval, worked out here
    # with scipy directly: equivalent inside (-margin, margin), different outside it, else inconclusive.
    from scipy.stats import t as student_t

    pair, margin = level["pairs"][0], level["margin_points"]
    d = (np.array(torch_accuracies) - np.array(jax_accuracies)) * 100.0
    half = float(student_t.ppf(0.95, 1)) * float(d.std(ddof=1)) / np.sqrt(2)
    low, high = (d.mean() - half, d.mean() + half) if half > 0 else (d.mean(), d.mean())
    assert (pair["first"], pair["second"], margin) == ("torch", "jax", 0.3)
    assert pair["mean_difference"] == pytest.approx(d.mean(), abs=1e-12)
    assert (pair["ci90_low"], pair["ci90_high"]) == pytest.approx((low, high), abs=1e-9)
    expected = "equivalent" if -margin < low and high < margin else "different" if high < -margin or low > margin else "inconclusive"
    assert pair["verdict"] == expected, (pair, d)
    assert level["passed"] == (expected != "different") and document["passed"] == level["passed"]
    assert "equivalence within" in result.stdout


@pytest.mark.parametrize("levels", ["0-2", "six", "7"])
def test_bad_levels_are_one_line(levels, tmp_path):
    from tests.cli_helpers import mnist_parity

    result = mnist_parity("verify", "mlp-relu-adam", "--levels", levels, "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "--levels" in result.stderr
    assert not (tmp_path / "runs").exists()


NATIVE_ADAM_MLP = ("mlp-relu-adam", ('implementation="native"',))
NATIVE_CNN = ("seed-cnn", ('implementation="native"',))  # activation_0 relu, batch_norm_0, activation_1 leaky_relu, ...
UNEXPLAINED = "the conditioning note"


@pytest.mark.parametrize("preset, level, quantity, pair, named, not_named", [
    # a framework's entry only when that framework is a side of the pair; nothing else: the conditioning note
    (NATIVE_ADAM_MLP, "step", "adam/weights/dense_0/kernel", ("torch", "keras"), "keras-adam-epsilon-hat (keras)", None),
    (NATIVE_ADAM_MLP, "step", "adam/weights/dense_0/kernel", ("torch", "jax"), UNEXPLAINED, "keras-adam-epsilon-hat"),
    # the level-3 case's optimizer, not the spec's
    (NATIVE_ADAM_MLP, "step", "rmsprop/weights/dense_0/kernel", ("keras", "numpy"), "keras-rmsprop-epsilon-in-root (keras)",
     "keras-adam-epsilon-hat"),
    # the trajectory steps with the spec's own optimizer
    (NATIVE_ADAM_MLP, "trajectory", "loss", ("keras", "numpy"), "keras-adam-epsilon-hat (keras)", "keras-rmsprop-epsilon-in-root"),
    # a forward output: its own layer and those before it, never a later one
    (NATIVE_CNN, "forward", "activation_1", ("keras", "numpy"), "keras-leaky-relu-float32-slope (keras)", None),
    (NATIVE_CNN, "forward", "batch_norm_0", ("keras", "numpy"), None, "keras-leaky-relu-float32-slope"),
    (NATIVE_CNN, "forward", "max_pool_0", ("numpy", "keras"), "keras-leaky-relu-float32-slope (keras)", None),
    (NATIVE_CNN, "forward", "activation_1", ("torch", "jax"), None, "keras-leaky-relu-float32-slope"),
    # an entry shows only at its own levels: leaky_relu's derivative at 0 is no forward difference, but a gradient's
    (NATIVE_CNN, "forward", "activation_1", ("jax", "numpy"), None, "jax-leaky-relu-derivative-at-zero"),
    (NATIVE_CNN, "gradients", "conv2d_0/kernel", ("jax", "numpy"), "jax-leaky-relu-derivative-at-zero (jax)", None),
    (NATIVE_CNN, "trajectory", "at/100/batch_norm_0/variance", ("torch", "numpy"),
     "torch-batch-norm-unbiased-running-variance (torch)", None),
    (NATIVE_CNN, "trajectory", "at/100/batch_norm_0/variance", ("keras", "jax"), None, "torch-batch-norm-unbiased-running-variance"),
    # from the plan, not the name: an MLP without a batch norm has none to blame, whatever the quantity is called
    (NATIVE_ADAM_MLP, "trajectory", "at/100/batch_norm_0/variance", ("torch", "numpy"), UNEXPLAINED, "torch-batch-norm"),
])
def test_hints_name_a_framework_cause_only_for_its_pairs(preset, level, quantity, pair, named, not_named):
    from experiments.spec import load_spec
    from experiments.verify.hints import CONDITIONING, LIST_DIFFERENCES, hint_for
    from experiments.verify.ladder import Row

    hint = hint_for(Row(level, *pair, quantity, {}, 1e-12, False), load_spec(preset[0], list(preset[1])))
    if named == UNEXPLAINED:
        assert hint == CONDITIONING
    elif named:
        assert "known built-in differences here: " in hint and named in hint and hint.endswith(LIST_DIFFERENCES)
    if not_named:
        assert not_named not in hint
