"""`mnist-parity bench`: FLOP counts from the plan against hand-computed ones, bench.json end to end on tiny models,
and bad input (one line, exit 2, nothing written). No test asserts a speed."""

import json
import os

import pytest

from experiments.bench.flops import forward_flops, gflops, training_flops
from experiments.cli import main
from experiments.report.inputs import records
from experiments.spec import load_spec, plan_of
from experiments.store import load_bench, store_path

TINY_MLP = 'model.hidden=[{units = 16, activation = "relu"}]'

TINY_CNN = """
name = "tiny-cnn"
seed = 0
dtype = "float32"

[model]
kind = "cnn"
output_activation = "softmax"
kernel_init = "glorot_uniform"
bias_init = "zeros"
conv = [
    { filters = 8, kernel_size = 3, padding = "same", activation = "relu", batch_norm = { momentum = 0.99, epsilon = 1e-3 }, pool = { size = 2, stride = 2, padding = "same" }, dropout = 0.25 },
    { filters = 16, kernel_size = 3, padding = "valid", activation = "relu" },
]
hidden = []

[loss]
name = "categorical_crossentropy"

[optimizer]
name = "adam"
learning_rate = 1e-3
beta_1 = 0.9
beta_2 = 0.999
epsilon = 1e-7

[training]
epochs = 1
batch_size = 32
"""


# A reading of /proc rounds every counter down to a jiffy (10 ms) per core: over a window of a second or more the
# others' figure can exceed the machine's cores by this much.
LOAD_SLACK_CORES = 0.1


def _tiny_cnn(tmp_path):
    path = tmp_path / "tiny-cnn.toml"
    path.write_text(TINY_CNN)
    return path


# -- FLOP arithmetic, against counts worked out by hand -------------------------------------------


def test_mlp_flops_are_two_per_multiply_add_and_three_forwards_per_training_step():
    plan = plan_of(load_spec("mlp-relu-adam", ['model.hidden=[{units = 32, activation = "relu"}]']))
    forward = 2 * (784 * 32 + 32 * 10)  # 784-32-10: x @ W of each dense layer; biases and relu not counted
    assert forward_flops(plan) == forward == 50_816
    assert training_flops(plan) == 3 * forward


def test_cnn_flops_count_each_output_pixel_of_a_convolution(tmp_path):
    plan = plan_of(load_spec(str(_tiny_cnn(tmp_path))))
    conv_same = 2 * 28 * 28 * 3 * 3 * 1 * 8  # "same": 28x28 outputs, 3x3 taps, 1 -> 8 channels
    conv_valid = 2 * 12 * 12 * 3 * 3 * 8 * 16  # after the 2x2 pool: 14x14x8 in, "valid" 3x3: 12x12 out, 8 -> 16
    logits = 2 * (12 * 12 * 16) * 10
    assert forward_flops(plan) == conv_same + conv_valid + logits == 112_896 + 331_776 + 46_080
    assert training_flops(plan) == 3 * (112_896 + 331_776 + 46_080)


def test_seed_cnn_flops():
    plan = plan_of(load_spec("seed-cnn"))
    convs = 2 * 9 * (28 * 28 * 1 * 32 + 14 * 14 * 32 * 64 + 7 * 7 * 64 * 128)  # "same" 3x3; 2x2 pools between
    dense = 2 * (4 * 4 * 128 * 120 + 120 * 40 + 40 * 10)
    assert forward_flops(plan) == convs + dense == 15_404_192


def test_gflops_is_flops_per_sample_times_samples_per_second():
    assert gflops(3_000_000, 2_000.0) == pytest.approx(6.0)


# -- end to end ---------------------------------------------------------------------------------


def _bench(tmp_path, *args):
    out = tmp_path / "bench"
    code = main(["bench", *args, "--pairs", "1", "--gemm-size", "256", "--out", str(out)])
    return code, out


def _check_entry(entry: dict, train_flops: int, reference: bool = True) -> None:
    assert entry["status"] == "ok" and entry["reason"] is None
    assert entry["train_flops_per_sample"] == train_flops
    assert entry["harness_samples_per_s"] > 0 and entry["gemm_gflops"] > 0
    assert entry["gflops"] == pytest.approx(train_flops * entry["harness_samples_per_s"] / 1e9)
    assert entry["gemm_fraction"] == pytest.approx(entry["gflops"] / entry["gemm_gflops"])
    assert len(entry["harness_seconds"]) == 1
    if reference:
        assert entry["reference_samples_per_s"] > 0 and entry["reference_skipped"] is None
        ratio = entry["harness_samples_per_s"] / entry["reference_samples_per_s"]
        assert entry["ratio_median"] == entry["ratio_min"] == entry["ratio_max"] == pytest.approx(ratio)


def test_bench_times_the_harness_and_the_reference_and_writes_bench_json(tmp_path, capsys):
    code, out = _bench(tmp_path, "mlp-relu-adam", "--backends", "numpy,torch", "--set", TINY_MLP, "--steps", "2")
    printed = capsys.readouterr().out
    assert code == 0, printed
    document = json.loads((out / "bench.json").read_text())
    assert document["presets"] == ["mlp-relu-adam"] and document["backends"] == ["numpy", "torch"]
    assert document["dataset"] == "mnist-subset" and document["threads"] == 2 and document["pairs"] == 1
    assert document["gemm_size"] == 256
    assert document["steps"] == {"mlp-relu-adam": 2}
    for backend in ("numpy", "torch"):
        entry = document["results"]["mlp-relu-adam"][backend]
        _check_entry(entry, 3 * 2 * (784 * 16 + 16 * 10))
        assert entry["samples_per_chunk"] == 2 * 64
    assert "ratio" in printed and "torch" in printed and "numpy" in printed
    assert not (out / ".scratch").exists() and (out / "logs" / "mlp-relu-adam-torch.log").exists()
    _check_registered(out, document)
    assert list(tmp_path.iterdir()) == [out]  # nothing written outside --out, the store included


def _check_registered(out, document: dict) -> None:
    """The bench is registered in the store inside its --out folder: one row per preset and backend holding
    bench.json's figures as written, its threads, date, versions and the load measured during the pairs."""
    frame = load_bench(store_path(out))
    assert [(row["preset"], row["backend"]) for row in records(frame)] == [
        (preset, backend) for preset, entries in document["results"].items() for backend in entries]
    for row in records(frame):
        entry = document["results"][row["preset"]][row["backend"]]
        for name in ("harness_samples_per_s", "reference_samples_per_s", "ratio_median", "ratio_min", "ratio_max",
                     "gflops", "gemm_gflops", "gemm_fraction", "train_flops_per_sample"):
            assert row[name] == entry[name], name
        assert (row["bench_id"], row["threads"], row["created"]) == (".", document["threads"], document["created"])  # the folder relative to the store: the store is inside --out
        assert row["versions_json"] == entry["versions"] and row["load_json"] == entry["load"]
        load = entry["load"]  # measured from /proc on Linux
        assert load["cores"] == os.cpu_count() and load["threads"] == document["threads"]
        assert 0 <= load["mean"] <= load["max"] <= load["cores"] + LOAD_SLACK_CORES and load["seconds"] > 0


def test_bench_builds_the_torch_reference_of_a_cnn(tmp_path, capsys):
    code, out = _bench(tmp_path, str(_tiny_cnn(tmp_path)), "--backends", "torch", "--steps", "1")
    assert code == 0, capsys.readouterr().out
    entry = json.loads((out / "bench.json").read_text())["results"]["tiny-cnn"]["torch"]
    _check_entry(entry, 3 * (112_896 + 331_776 + 46_080))


def test_a_plan_the_tutorial_model_cannot_express_skips_the_reference_not_the_harness(tmp_path, capsys):
    code, out = _bench(tmp_path, "mlp-relu-adam", "--backends", "numpy", "--steps", "1",
                       "--set", 'model.hidden=[{units = 16, activation = {name = "gelu", approximate = "none"}}]')
    printed = capsys.readouterr().out
    assert code == 0, printed
    entry = json.loads((out / "bench.json").read_text())["results"]["mlp-relu-adam"]["numpy"]
    _check_entry(entry, 3 * 2 * (784 * 16 + 16 * 10), reference=False)
    assert "gelu" in entry["reference_skipped"] and entry["ratio_median"] is None
    assert entry["reference_samples_per_s"] is None and "reference skipped" in printed


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["no-such-preset"], "no-such-preset"),
    (["--backends", "tensorflow"], "unknown backend"),
    (["--backends", ""], "no backend"),
    (["--pairs", "0"], "--pairs"),
    (["--threads", "0"], "--threads"),
    (["--steps", "0"], "--steps"),
    (["--gemm-size", "0"], "--gemm-size"),
    (["--steps", "58"], "57 batches per epoch"),
    (["--pairs", "two"], "--pairs"),
    (["--set", "optimizer.learning_rate=-1"], "learning_rate"),
    (["--dataset", "no-such-dataset", "--no-download"], "no-such-dataset"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, words):
    out = tmp_path / "bench"
    code = main(["bench", *args, "--out", str(out)])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mnist-parity: error:") and words in lines[0], captured.err
    assert not out.exists()


def test_a_store_that_cannot_take_the_bench_is_refused_before_anything_runs(tmp_path, capsys):
    """The bench registers in the store inside --out (`<--out>/results.sqlite`); a store that could not take it is one
    line, exit 2, and nothing is written."""
    out = tmp_path / "bench"
    (out / "results.sqlite").mkdir(parents=True)  # a folder where the store should be
    code = main(["bench", "--backends", "numpy", "--steps", "1", "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "results store" in lines[0] and "not a file" in lines[0], lines
    assert list(out.iterdir()) == [out / "results.sqlite"] and not any((out / "results.sqlite").iterdir())


def test_a_failing_backend_is_reported_and_the_others_keep_their_results(tmp_path, capsys, monkeypatch):
    """The torch worker gets a training split that does not exist: it fails, numpy still runs; exit 1."""
    import experiments.commands.bench as command

    real_job = command.BenchJob

    def broken_for_torch(backend, spec, data_path, *rest):
        return real_job(backend, spec, str(tmp_path / "missing.npz") if backend == "torch" else data_path, *rest)

    monkeypatch.setattr(command, "BenchJob", broken_for_torch)
    code, out = _bench(tmp_path, "mlp-relu-adam", "--backends", "torch,numpy", "--set", TINY_MLP, "--steps", "1")
    printed = capsys.readouterr().out
    assert code == 1, printed
    results = json.loads((out / "bench.json").read_text())["results"]["mlp-relu-adam"]
    assert results["torch"]["status"] == "failed" and "missing.npz" in results["torch"]["reason"]
    assert results["torch"]["harness_samples_per_s"] is None
    _check_entry(results["numpy"], 3 * 2 * (784 * 16 + 16 * 10))
    assert "torch: failed" in printed
