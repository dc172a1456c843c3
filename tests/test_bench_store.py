"""bench.json in the results store and in reports: one row per bench folder, preset and backend holding bench.json's own
figures and provenance; bad bench.json documents refused with one line (register_bench and the report alike, exit 2,
nothing written); the report's throughput section shows the numbers and says what they mean.

The bench.json here is written by hand (BENCH below), with the shape experiments.bench.results.write_bench gives;
tests/test_bench.py checks that a real bench registers the same way."""

import argparse
import copy
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from experiments.commands.report import report_command
from experiments.errors import UserError
from experiments.report import build_report
from experiments.report.bench_tables import bench_table
from experiments.report.document import THROUGHPUT, Bullets, Note
from experiments.report.inputs import records
from experiments.report.loading import load_inputs
from experiments.report.table import Table, missing
from experiments.load import LOAD_MARGIN_CORES
from experiments.spec import load_spec
from experiments.store import load_bench, register_bench, register_tree, store_path
from tests.cli_helpers import mnist_parity
from tests.test_report import fake_defaults, run_dir
from tests.test_report_inputs import _set
from tests.test_store import run_document, write_run  # noqa: F401 (run_document is a fixture)

PRESET = "mlp-relu-adam"
TINY_MLP = 'model.hidden=[{units = 16, activation = "relu"}]'
TRAIN_FLOPS = 3 * 2 * (784 * 16 + 16 * 10)
QUIET = {"mean": 0.12, "max": 0.3, "cores": 2, "threads": 2, "seconds": 1.5, "window": "the timed pairs"}
TORCH = {
    "status": "ok", "reason": None, "harness_samples_per_s": 12345.6, "reference_samples_per_s": 10000.0,
    "ratio_median": 1.2346, "ratio_min": 1.1, "ratio_max": 1.4, "ratios": [1.1, 1.2346, 1.4], "gflops": 9.876,
    "reference_gflops": 8.0, "gemm_gflops": 123.4, "gemm_fraction": 0.08, "gemm_samples": [120.0, 123.4, 125.0],
    "forward_flops_per_sample": TRAIN_FLOPS // 3, "train_flops_per_sample": TRAIN_FLOPS, "samples_per_chunk": 128,
    "steps_per_chunk": 2, "harness_seconds": [0.0104, 0.0104, 0.0103], "reference_seconds": [0.0128, 0.0128, 0.0128],
    "warmup_seconds": {"harness_s": 0.5, "reference_s": 0.4},
    "reference": "nn.Sequential (torch.nn layers, default init), torch.optim.Adam", "reference_skipped": None,
    "reference_failed": None, "versions": {"torch": "2.13.0"}, "log": "/somewhere/logs/mlp-relu-adam-torch.log",
    "load": QUIET,
}
NUMPY = {  # the reference skipped, and no "load": a bench.json from before the field
    **{key: None for key in TORCH if key not in ("ratios", "harness_seconds", "reference_seconds", "gemm_samples")},
    "status": "ok", "harness_samples_per_s": 800.0, "gflops": 0.061, "gemm_gflops": 50.0, "gemm_fraction": 0.00122,
    "ratios": [], "harness_seconds": [0.16, 0.16, 0.16], "reference_seconds": [], "gemm_samples": [50.0],
    "forward_flops_per_sample": TRAIN_FLOPS // 3, "train_flops_per_sample": TRAIN_FLOPS, "samples_per_chunk": 128,
    "steps_per_chunk": 2, "reference_skipped": "the tutorial-style reference has no activation 'gelu'",
    "versions": {"numpy": "2.4.6"},
}
JAX = {**{key: None for key in NUMPY}, "status": "failed", "reason": "worker exited with code 1 before finishing",
       "ratios": [], "harness_seconds": [], "reference_seconds": [], "gemm_samples": [], "forward_flops_per_sample": 0,
       "train_flops_per_sample": 0, "samples_per_chunk": 0, "steps_per_chunk": 0, "versions": {}}
FIGURES = ("harness_samples_per_s", "reference_samples_per_s", "ratio_median", "ratio_min", "ratio_max", "gflops",
           "reference_gflops", "gemm_gflops", "gemm_fraction", "forward_flops_per_sample", "train_flops_per_sample",
           "samples_per_chunk", "steps_per_chunk", "reference", "reference_skipped", "reference_failed")


@pytest.fixture(scope="module")
def bench_document() -> dict:
    spec = load_spec(PRESET, [TINY_MLP, 'data.dataset="mnist-subset"'])
    return {
        "schema": 1, "command": ["mnist-parity", "bench", "--pairs", "3"], "created": "2026-12-01T10:00:00+00:00",
        "dataset": "mnist-subset", "threads": 2, "pairs": 3, "steps": {PRESET: 2}, "gemm_size": 256,
        "presets": [PRESET], "backends": ["torch", "numpy", "jax"], "specs": {PRESET: spec.to_dict()},
        "flop_convention": "2 FLOPs per multiply-add; a training step = 3 x forward",
        "ratio": "harness samples/s / reference samples/s, per pair; > 1: the harness is faster",
        "machine": {"cpu_count": 2, "platform": "Linux-test", "processor": "x86_64"},
        "results": {PRESET: {"torch": TORCH, "numpy": NUMPY, "jax": JAX}},
    }


def write_bench(folder: Path, document: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "bench.json").write_text(json.dumps(document))
    return folder


# -- registration -----------------------------------------------------------------------------------------------


def test_register_bench_writes_one_row_per_preset_and_backend_holding_bench_jsons_values(tmp_path, bench_document):
    folder = write_bench(tmp_path / "bench-20261201-100000", bench_document)
    assert register_bench(folder) == 3
    frame = load_bench(store_path(tmp_path))  # the store beside the bench folder, as beside runs
    assert list(frame["backend"]) == ["torch", "numpy", "jax"] and set(frame["preset"]) == {PRESET}
    assert set(frame["bench_id"]) == {folder.name} and set(frame["bench_dir"]) == {str(folder.resolve())}
    for row in records(frame):  # plain values: None where the store holds NULL
        entry = bench_document["results"][PRESET][row["backend"]]
        assert {name: row[name] for name in FIGURES} == {name: entry[name] for name in FIGURES}, row["backend"]
        assert row["status"] == entry["status"] and row["reason"] == entry["reason"]
        assert row["ratios_json"] == entry["ratios"]
        assert row["versions_json"] == (entry["versions"] or None)
        assert row["load_json"] == entry.get("load")
        assert (row["threads"], row["pairs"], row["gemm_size"], row["created"], row["dataset"]) == (
            2, 3, 256, "2026-12-01T10:00:00+00:00", "mnist-subset")
        assert row["command"] == "mnist-parity bench --pairs 3" and row["cpu_count"] == 2
        assert row["spec_json"] == bench_document["specs"][PRESET] and row["dtype"] == "float32"
        assert row["spec_hash"] == load_spec(PRESET, [TINY_MLP, 'data.dataset="mnist-subset"']).spec_hash()


def test_registering_again_replaces_the_rows_and_drops_backends_gone_from_the_document(tmp_path, bench_document):
    folder = write_bench(tmp_path / "bench-a", bench_document)
    register_bench(folder)
    changed = copy.deepcopy(bench_document)
    del changed["results"][PRESET]["jax"]
    changed["results"][PRESET]["torch"]["harness_samples_per_s"] = 99.0
    (folder / "bench.json").write_text(json.dumps(changed))
    assert register_bench(folder) == 2
    frame = load_bench(store_path(tmp_path))
    assert list(frame["backend"]) == ["torch", "numpy"] and frame.iloc[0]["harness_samples_per_s"] == 99.0


def test_a_bench_json_from_before_the_schema_field_is_read_as_version_1(tmp_path, bench_document):
    older = {key: value for key, value in bench_document.items() if key != "schema"}
    assert register_bench(write_bench(tmp_path / "bench-old", older)) == 3


def test_register_tree_registers_bench_folders_beside_runs(tmp_path, bench_document, run_document):
    write_run(tmp_path / "20260101-000000-mlp", run_document)
    write_bench(tmp_path / "bench-20261201-100000", bench_document)
    assert register_tree(tmp_path) == 3 + 3
    assert len(load_bench(store_path(tmp_path))) == 3


def test_load_bench_picks_bench_folders(tmp_path, bench_document):
    first, second = (write_bench(tmp_path / name, bench_document) for name in ("bench-1", "bench-2"))
    for folder in (first, second):
        register_bench(folder)
    assert set(load_bench(store_path(tmp_path), bench_dirs=[second])["bench_id"]) == {"bench-2"}


# -- bad bench.json: one line, the same from register_bench and from the report ----------------------------------


def _entry(key, value):
    return _set("results", PRESET, "torch", key, value)


# (id, change to a good bench.json, what the one line must say)
BAD_BENCH = [
    ("schema-99", _set("schema", 99), ["'schema' is 99", "reads bench.json schema version 1 only", "upgrade mnist-parity"]),
    ("schema-a-string", _set("schema", "1"), ["'schema' is \"1\""]),
    ("results-missing", lambda d: d.pop("results"), ["'results' is missing, expected an object"]),
    ("results-a-list", _set("results", []), ["'results' is a list, expected an object"]),
    ("preset-a-list", _set("results", PRESET, ["torch"]), [f"results.{PRESET} is [\"torch\"]", "an object of backends"]),
    ("unknown-backend", _set("results", PRESET, "tensorflow", {"status": "ok"}), ["backend \"tensorflow\" is not one of"]),
    ("entry-without-status", lambda d: d["results"][PRESET]["torch"].pop("status"), [f"results.{PRESET}.torch has no status"]),
    ("rate-a-word", _entry("harness_samples_per_s", "fast"),
     [f"results.{PRESET}.torch.harness_samples_per_s is \"fast\"", "must be a number, not negative, or null"]),
    ("rate-negative", _entry("reference_samples_per_s", -5.0), [f"results.{PRESET}.torch.reference_samples_per_s is -5.0"]),
    ("rate-true", _entry("gflops", True), [f"results.{PRESET}.torch.gflops is true"]),
    ("ratios-with-a-word", _entry("ratios", [1.1, "x"]), [f"results.{PRESET}.torch.ratios is [1.1, \"x\"]", "a list of numbers"]),
    ("flops-a-float", _entry("train_flops_per_sample", 1.5), [f"results.{PRESET}.torch.train_flops_per_sample is 1.5",
                                                              "an integer"]),
    ("versions-a-list", _entry("versions", ["torch"]), [f"results.{PRESET}.torch.versions is [\"torch\"]", "an object"]),
    ("load-a-word", _entry("load", "high"), [f"results.{PRESET}.torch.load is \"high\"", "must be an object"]),
    ("load-mean-a-word", _entry("load", {**QUIET, "mean": "1.5"}), [f"results.{PRESET}.torch.load.mean is \"1.5\""]),
    ("threads-a-string", _set("threads", "2"), ["(top level).threads is \"2\"", "an integer"]),
]


def _bad(tmp_path: Path, document: dict, change) -> Path:
    bad = copy.deepcopy(document)
    change(bad)
    return write_bench(tmp_path / "inputs" / "bench-bad", bad)


def _tree(root: Path) -> dict[Path, bytes | None]:
    return {path: path.read_bytes() if path.is_file() else None for path in sorted(root.rglob("*"))}


@pytest.mark.parametrize("change, expected", [case[1:] for case in BAD_BENCH], ids=[case[0] for case in BAD_BENCH])
def test_a_bad_bench_json_is_refused_with_one_line_by_the_store_and_the_report(tmp_path, bench_document, change, expected):
    folder = _bad(tmp_path, bench_document, change)
    before = _tree(tmp_path)
    with pytest.raises(UserError) as error:
        register_bench(folder)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{folder / 'bench.json'}: "), message
    for phrase in expected:
        assert phrase in message, message
    with pytest.raises(UserError) as refused:
        report_command(argparse.Namespace(paths=[folder], out=tmp_path / "reports" / "r"), Console(file=io.StringIO()))
    assert refused.value.exit_code == 2 and str(refused.value) == f"report: {message}"
    assert _tree(tmp_path) == before  # no store, no report


@pytest.mark.parametrize("text, expected", [("{\"results\": {", "bench.json is not valid JSON"),
                                            ("[1, 2]", "expected a JSON object, found list")])
def test_a_bench_json_that_is_not_an_object_is_one_line(tmp_path, text, expected):
    folder = tmp_path / "bench-bad"
    folder.mkdir()
    (folder / "bench.json").write_text(text)
    with pytest.raises(UserError) as error:
        report_command(argparse.Namespace(paths=[folder], out=tmp_path / "r"), Console(file=io.StringIO()))
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "r").exists()


def test_the_report_command_refuses_a_bad_bench_json_with_one_line_and_exit_2(tmp_path, bench_document):
    folder = _bad(tmp_path, bench_document, _entry("harness_samples_per_s", "fast"))
    result = mnist_parity("report", str(folder), "--out", str(tmp_path / "reports" / "r"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "harness_samples_per_s is \"fast\"" in lines[0] and not (tmp_path / "reports").exists()


# -- the report's throughput section -------------------------------------------------------------------------------


def _section(written, heading: str):
    return next(section for section in written.report.sections if section.heading == heading)


def test_the_throughput_section_shows_bench_jsons_numbers(tmp_path, bench_document):
    folder = write_bench(tmp_path / "bench-20261201-100000", bench_document)
    written = build_report([folder], tmp_path / "reports" / "r", fake_defaults)
    section = _section(written, THROUGHPUT)
    table = next(block for block in section.blocks if isinstance(block, Table))
    frame = table.frame.set_index("backend")
    torch = frame.loc["torch"]
    assert torch["harness samples/s"] == TORCH["harness_samples_per_s"]
    assert torch["reference samples/s"] == TORCH["reference_samples_per_s"]
    assert torch["ratio median [min, max]"] == "1.235 [1.100, 1.400]"
    assert torch["GFLOP/s"] == TORCH["gflops"] and torch["GEMM GFLOP/s"] == TORCH["gemm_gflops"]
    assert torch["share of GEMM (%)"] == pytest.approx(100 * TORCH["gemm_fraction"])
    assert torch["others' CPU (cores)"] == QUIET["mean"] and torch["framework"] == "torch 2.13.0"
    assert missing(frame.loc["numpy", "ratio median [min, max]"]) and frame.loc["numpy", "status"] == "ok (reference skipped)"
    assert frame.loc["jax", "status"].startswith("FAILED: worker exited")
    cells = dict(zip(table.frame["backend"], table.cells()))
    assert cells["torch"][3:10] == ["12,346", "10,000", "1.235 [1.100, 1.400]", "9.88", "123.4", "8.0", "0.12"]
    assert cells["numpy"][3:10] == ["800", "-", "-", "0.06", "50.0", "0.12", "-"]  # 0.00122 of GEMM: 0.122 %
    assert "2 thread(s)" in table.title and "3 timed pair(s)" in table.title and "mnist-subset" in table.title
    markdown = written.markdown.read_text()
    assert f"## {THROUGHPUT}" in markdown and "| mlp-relu-adam | torch | ok | 12,346 | 10,000 |" in markdown
    assert THROUGHPUT in written.html.read_text()


def test_the_throughput_section_says_what_each_figure_means(tmp_path, bench_document):
    written = build_report([write_bench(tmp_path / "bench-a", bench_document)], tmp_path / "r", fake_defaults)
    words = " ".join(item for block in _section(written, THROUGHPUT).blocks if isinstance(block, Bullets) for item in block.items)
    for phrase in ("training steps only", "warm-up", "the way the framework's own tutorials write it", "same process",
                   "interleaved", "comparable within one bench run only", "2 FLOPs per multiply-add",
                   "3 x forward", "counted from the plan", "GEMM GFLOP/s: a square matmul", "share of GEMM",
                   "others' CPU"):
        assert phrase in words, phrase
    notes = [block.text for block in _section(written, THROUGHPUT).blocks if isinstance(block, Note)]
    assert any("reference skipped" in note and "gelu" in note for note in notes)
    assert any(note.startswith("reference torch: nn.Sequential") for note in notes)
    summary = _section(written, "Summary")
    alerts = [block.text for block in summary.blocks if isinstance(block, Note) and block.kind == "alert"]
    assert any("FAILED" in alert and "jax" in alert for alert in alerts)
    assert any("1 bench result(s)" in block for block in summary.blocks if isinstance(block, str))


@pytest.mark.parametrize("mean, busy", [(LOAD_MARGIN_CORES + 0.4, True), (LOAD_MARGIN_CORES - 0.1, False)])
def test_a_busy_machine_during_the_pairs_is_an_alert(tmp_path, bench_document, mean, busy):
    document = copy.deepcopy(bench_document)
    document["results"][PRESET]["torch"]["load"] = {**QUIET, "mean": mean}
    table = bench_table(load_inputs([write_bench(tmp_path / "bench-a", document)]).benches[0])
    assert table.frame.set_index("backend").loc["torch", "others' CPU (cores)"] == mean
    written = build_report([tmp_path / "bench-a"], tmp_path / "r", fake_defaults)
    alerts = [block.text for block in _section(written, THROUGHPUT).blocks if isinstance(block, Note) and block.kind == "alert"]
    assert any(alert.startswith("busy machine") and "torch" in alert for alert in alerts) is busy


def test_a_report_of_a_run_and_a_bench_lists_both(tmp_path, bench_document):
    run = run_dir(tmp_path / "inputs")
    bench = write_bench(tmp_path / "inputs" / "bench-a", bench_document)
    written = build_report([run, bench], tmp_path / "r", fake_defaults)
    headings = [section.heading for section in written.report.sections]
    assert THROUGHPUT in headings and "Results side by side" in headings
    inputs = next(block for block in _section(written, "Inputs").blocks if isinstance(block, Table)).frame
    assert list(inputs["kind"]) == ["run", "bench"] and inputs.iloc[1]["backends"] == "torch, numpy, jax"
