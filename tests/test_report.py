"""`mnist-parity report`: stored run, sweep and verify directories in, markdown, HTML and PNG figures out; nothing retrained.

The inputs are written by the project's own writers (experiments.results.write_results, the
sweep's expand_cells and write_sweep_document, the verify ladder's summarize and the level-5
statistics) with made-up outcomes, so they have exactly the shape real runs have.
"""

import argparse
import io
import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from rich.console import Console

from experiments.commands.report import report_command
from experiments.data import Dataset, DatasetRecord
from experiments.errors import UserError
from experiments.outcome import BackendOutcome
from experiments.report import build_report, default_out, gates
from experiments.report import drawing as report_drawing
from experiments.report import loading as report_loading
from experiments.report.defaults import UNPINNED, neutralised_defaults, same_value, used_entries
from experiments.report.html import table as html_table
from experiments.report.document import Bullets
from experiments.report.loading import load_inputs
from experiments.report.markdown import escape as md_escape
from experiments.report.ranking_tables import NOT_RANKED_NO_SPLIT, ranking_table
from experiments.report.results_tables import NO_VALIDATION
from experiments.report.seed_tables import seed_groups, seed_table
from experiments.report.study_figures import studies_figure
from experiments.report.table import Table
from tests.test_store import run_document  # noqa: F401 (a fixture)
from experiments.report.writing import MARKER, write_directory
from experiments.results import write_results
from experiments.runner import RunResult
from experiments.spec import load_spec
from experiments.store import load_runs, register_run
from experiments.sweep import SweepDefinition, expand_cells
from experiments.sweep.local import write_sweep_document
from experiments.verify import statistical
from experiments.verify.ladder import Row, summarize, trajectory_growth
from experiments.verify.tolerances import tolerance
from tests.test_neutral_imports import BLOCKER, FRAMEWORKS

SUBSET_SPLIT = {"train": 3600, "validation": 400, "test": 1000}
RECORD = DatasetRecord("mnist-subset", "test fixture", {"train": 4000, "test": 1000}, {"mnist_5k.csv.gz": "0" * 64},
                       "embedded 5,000-digit subset (fixture)")
EMPTY = Dataset("mnist-subset", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), np.zeros((0, 28, 28), np.uint8),
                np.zeros(0, np.int64), 10, RECORD)
EVIL = "<script>alert(1)</script>&co"
MIN_PNG_BYTES = 5_000


# ---------------------------------------------------------------- builders of stored results


def history(epochs: int, val: float, train_loss_end: float = 0.3) -> list[dict]:
    """Per-epoch records ending at validation accuracy `val`."""
    rows = []
    for epoch in range(1, epochs + 1):
        f = epoch / epochs
        rows.append({"epoch": epoch, "train_loss": 1.0 - (1.0 - train_loss_end) * f, "train_accuracy": 0.6 + 0.3 * f,
                     "val_loss": 1.1 - 0.7 * f, "val_accuracy": val - 0.1 * (1 - f), "learning_rate": 0.001,
                     "epoch_time_s": 1.0, "elapsed_s": float(epoch)})
    return rows


def outcome(backend: str, test: float, val: float, epochs: int, time_s: float = 2.0) -> BackendOutcome:
    return BackendOutcome(backend, status="ok", versions={backend: "1.0"}, settings={"dtype": "float32", "device": "cpu"},
                          parameter_count=235146, history=history(epochs, val),
                          metrics={"test_loss": 0.3, "test_accuracy": test, "train_time_s": time_s, "samples_per_s": 3000.0,
                                   "steady_samples_per_s": 3500.0 + 100 * len(backend)})


def failed(backend: str) -> BackendOutcome:
    return BackendOutcome(backend, status="failed", reason="worker exited with code 1 before finishing")


def write_run(directory: Path, spec, outcomes, split=SUBSET_SPLIT, extra=None) -> Path:
    directory.mkdir(parents=True)
    write_results(RunResult(spec, EMPTY, split, outcomes), directory, ["mnist-parity", "run"], extra)
    return directory


def run_dir(parent: Path, name="run-mlp", epochs=2, accuracies=None, overrides=(), split=SUBSET_SPLIT, spec_name=None) -> Path:
    """A standalone run of mlp-relu-adam; accuracies: {backend: test accuracy} (a value None: that backend failed)."""
    spec = load_spec("mlp-relu-adam", [f"training.epochs={epochs}", *overrides])
    if spec_name:
        spec = spec.model_copy(update={"name": spec_name})
    accuracies = accuracies or {"numpy": 0.913, "torch": 0.919, "jax": 0.922}
    outcomes = [outcome(b, a, a - 0.005, epochs) if a is not None else failed(b) for b, a in accuracies.items()]
    return write_run(parent / name, spec, outcomes, split)


def sweep_dir(parent: Path, definition: dict, result) -> Path:
    """A sweep directory as `mnist-parity sweep` writes it; result(factors) -> (test, val) or None (failed)."""
    sweep = SweepDefinition.model_validate(definition)
    cells = expand_cells(sweep)
    directory = parent / "sweeps" / sweep.name
    for cell in cells:
        spec = load_spec("mlp-relu-adam").model_validate(cell.spec)
        accuracies = result(cell.factors)
        made = failed(cell.backend) if accuracies is None else outcome(cell.backend, *accuracies, spec.training.epochs)
        extra = {"sweep": {"name": sweep.name, "key": cell.key, "factors": cell.factors, "overrides": cell.overrides}}
        write_run(directory / "cells" / cell.key, spec, [made], extra=extra)
    write_sweep_document(directory, sweep, cells)
    return directory


ACTIVATIONS = {"relu": {"name": "relu"}, "tanh": {"name": "tanh"}, "sigmoid": {"name": "sigmoid"}}
# Validation order relu > tanh > sigmoid; test order the reverse: the rank must follow validation.
ACTIVATION_RESULTS = {"relu": (0.80, 0.95), "tanh": (0.85, 0.90), "sigmoid": (0.90, 0.85)}


def activation_sweep(parent: Path, name="study-activations", backends=("torch", "jax")) -> Path:
    definition = {"name": name, "base": "seed-mlp-sigmoid", "backends": list(backends),
                  "set": {"loss": {"name": "mse"}, "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
                          "training.epochs": 3},
                  "grid": {"model.hidden[*].activation": ACTIVATIONS}}
    return sweep_dir(parent, definition, lambda f: ACTIVATION_RESULTS[f["model.hidden[*].activation"]])


def optimizer_sweep(parent: Path) -> Path:
    definition = {"name": "study-optimizers", "base": "seed-mlp-relu", "backends": ["torch", "jax"], "set": {"training.epochs": 3},
                  "grid": {"optimizer": {
                      "sgd": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
                      "adam": {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}}}}
    return sweep_dir(parent, definition, lambda f: (0.95, 0.96) if f["optimizer"] == "adam" else (0.88, 0.89))


SEED_ACCURACIES = {("torch", 0): 0.990, ("torch", 1): 0.992, ("torch", 2): 0.991,
                   ("jax", 0): 0.989, ("jax", 1): 0.993, ("jax", 2): 0.990}


def seed_sweep(parent: Path) -> Path:
    definition = {"name": "study-seed-mlp", "base": "mlp-relu-adam", "backends": ["torch", "jax"], "seeds": [0, 1, 2],
                  "set": {"training.epochs": 2}}
    return sweep_dir(parent, definition, lambda f: (SEED_ACCURACIES[f["backend"], f["seed"]], 0.99))


PAIRS = [("torch", "numpy"), ("jax", "numpy"), ("torch", "jax")]
STEPS = (1, 2, 5, 10)


def ladder_rows(failing: tuple[str, str] | None = None) -> list[Row]:
    """Levels 1-4 rows as experiments.verify.ladder.compare_pair makes them; `failing` fails its gradients."""
    rows = []
    for first, second in PAIRS:
        for level, quantities in (("forward", ["dense_0", "logits"]), ("gradients", ["dense_0/kernel", "logits/bias"]),
                                  ("step", ["adam/weights/dense_0/kernel"]),
                                  ("trajectory", ["loss", *(f"at/{s}/dense_0/kernel" for s in STEPS)])):
            for quantity in quantities:
                step = int(quantity.split("/")[1]) if quantity.startswith("at/") else 1
                error = 1e-15 * step * (2 if first == "torch" else 1)
                if failing == (first, second) and level == "gradients":
                    error = 3e-6
                limit = tolerance(level, "float64")
                rows.append(Row(level, first, second, quantity, {"needed": error, "max_abs": error}, limit, error <= limit,
                                "" if error <= limit else "a known cause"))
    return rows


def verify_levels_dir(parent: Path, failing=None, name="verify-mlp") -> Path:
    spec = load_spec("mlp-relu-adam", ['dtype="float64"'])
    rows = ladder_rows(failing)
    lines = summarize(rows, ["dense_0", "activation_0", "logits"])
    levels = {}
    for number, level in enumerate(("forward", "gradients", "step", "trajectory"), start=1):
        summary = [line for line in lines if line["level"] == level]
        levels[str(number)] = {"name": level, "summary": summary, "rows": [r.to_dict() for r in rows if r.level == level],
                               "failures": {}, "passed": all(line["passed"] for line in summary)}
    levels["4"]["growth"] = trajectory_growth(rows)
    document = {"spec": spec.to_dict(), "dataset": RECORD.to_dict(), "levels": levels,
                "passed": all(level["passed"] for level in levels.values())}
    return _write_json(parent / name, "verify.json", document)


LEVEL5_ACCURACIES = {"torch": [0.941, 0.943, 0.944], "jax": [0.940, 0.944, 0.942]}

# Worked by hand, not by the code under test: mean and two-sided 95% t interval in accuracy points,
# mean +- t(0.975, n - 1) * s / sqrt(n) with t = 4.3027 (n = 3) and 12.706 (n = 2).
HAND_STATS = {
    ("seeds", "torch"): (99.1, 98.8516, 99.3484),  # 99.0, 99.2, 99.1: s = 0.1
    ("seeds", "jax"): (99.0667, 98.5496, 99.5838),  # 98.9, 99.3, 99.0: s = 0.2082
    ("two", "torch"): (80.1, 78.8294, 81.3706),  # 80.0, 80.2: s = 0.1414
    ("level5", "torch"): (94.2667, 93.8872, 94.6461),  # 94.1, 94.3, 94.4: s = 0.1528
    ("level5", "jax"): (94.2, 93.7032, 94.6968),  # 94.0, 94.4, 94.2: s = 0.2
    ("failed-middle", "torch"): (99.05, 98.4147, 99.6853),  # 99.0, 99.1: s = 0.0707
    ("past-100", "torch"): (98.2667, 91.2390, 105.2943),  # 99.9, 95.0, 99.9: s = 2.829
}
HAND_LEVEL5_PAIR = ("inconclusive", +0.067)  # torch - jax = +0.1, -0.1, +0.2: p(TOST, margin 0.3) = 0.059 > 0.05
HAND_TOL = 0.001  # points: the hand values carry four decimals


def verify_level5_dir(parent: Path, epochs=10, name="verify-level5") -> Path:
    spec = load_spec("mlp-relu-adam", [f"training.epochs={epochs}"])
    pair = statistical.equivalence("torch", LEVEL5_ACCURACIES["torch"], "jax", LEVEL5_ACCURACIES["jax"], 0.3)
    level5 = {"seeds": [0, 1, 2], "margin_points": 0.3,
              "backends": [asdict(statistical.summarize(b, a)) for b, a in LEVEL5_ACCURACIES.items()],
              "pairs": [pair.to_dict()], "failures": [], "passed": pair.verdict != "different"}
    document = {"spec": spec.to_dict(), "dataset": RECORD.to_dict(), "levels": {"5": level5}, "passed": level5["passed"]}
    return _write_json(parent / name, "verify.json", document)


def verify_matrix_dir(parent: Path) -> Path:
    cells = {}
    for cell, failing in (("mlp-activation-relu", None), ("mlp-optimizer-sgd", ("torch", "jax"))):
        rows = ladder_rows(failing)
        lines = summarize(rows, ["dense_0", "logits"])
        levels = {str(n): {"name": level, "summary": [ln for ln in lines if ln["level"] == level], "failures": {},
                           "passed": all(ln["passed"] for ln in lines if ln["level"] == level)}
                  for n, level in enumerate(("forward", "gradients", "step", "trajectory"), start=1)}
        model, axis, entry = cell.split("-", 2)
        cells[cell] = {"model": model, "axis": axis, "entry": entry, "overrides": [], "levels": levels,
                       "passed": all(level["passed"] for level in levels.values())}
    document = {"base": "mlp-relu-adam", "dataset": RECORD.to_dict(), "matrix": cells, "passed": False}
    return _write_json(parent / "verify-matrix", "verify.json", document)


def _write_json(directory: Path, name: str, document: dict) -> Path:
    directory.mkdir(parents=True)
    (directory / name).write_text(json.dumps(document, indent=2, default=float))
    return directory


FAKE_DEFAULTS = {
    "torch": [("adam", "epsilon", 1e-8, "torch.optim.Adam(eps=...)"), ("adam", "beta_1", 0.9, "torch.optim.Adam(betas)"),
              ("leaky_relu", "negative_slope", 0.01, "torch.nn.LeakyReLU"), ("sgd", "momentum", 0, "torch.optim.SGD")],
    "jax": [("adam", "epsilon", 1e-8, "optax.adam(eps)"), ("adam", "beta_1", 0.9, "optax.adam(b1)"),
            ("leaky_relu", "negative_slope", 0.01, "jax.nn.leaky_relu")],
    "keras": [("adam", "epsilon", 1e-7, "keras.optimizers.Adam(epsilon)"), ("adam", "beta_1", 0.9, "keras.optimizers.Adam(beta_1)"),
              ("leaky_relu", "negative_slope", 0.3, "keras.layers.LeakyReLU")],
}


def fake_defaults(backend: str):
    """Stands in for experiments.framework_defaults.framework_values (which imports each framework in a subprocess)."""
    rows = [dict(zip(("entry", "parameter", "value", "source"), row)) for row in FAKE_DEFAULTS.get(backend, [])]
    return pd.DataFrame(rows, columns=["entry", "parameter", "value", "source"]), None


def png_ok(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > MIN_PNG_BYTES, (path.name, len(data))
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# ---------------------------------------------------------------- one full report, read by many tests


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    four = {"numpy": 0.913, "torch": 0.919, "keras": 0.917, "jax": 0.922}
    paths = [run_dir(root, accuracies=four), activation_sweep(root), optimizer_sweep(root), seed_sweep(root),
             verify_levels_dir(root), verify_level5_dir(root), verify_matrix_dir(root)]
    out = tmp_path_factory.mktemp("reports") / "full"
    written = build_report(paths, out, fake_defaults)
    return written, (out / "report.md").read_text(), (out / "report.html").read_text(), paths


EXPECTED_FIGURES = ["curves-run-mlp", "curves-study-seed-mlp", "time-and-throughput", "studies", "ranking-study-activations",
                    "ranking-study-optimizers", "accuracy-over-seeds", "parity-ladder-verify-mlp", "error-growth-verify-mlp",
                    "parity-matrix-verify-matrix"]


def test_report_writes_markdown_html_and_figures(full):
    written, markdown, html, _ = full
    assert sorted(p.name for p in written.out.iterdir()) == [MARKER, "figures", "report.html", "report.md"]
    stems = sorted(p.stem.split("-", 1)[1] for p in (written.out / "figures").iterdir())
    assert stems == sorted(EXPECTED_FIGURES)
    for path in written.figures:
        assert f"](figures/{path.name})" in markdown
    assert html.count('<img src="data:image/png;base64,') == len(EXPECTED_FIGURES)
    assert not list(written.out.parent.glob(".full.*")), "staging folder left behind"


@pytest.mark.parametrize("figure", EXPECTED_FIGURES)
def test_every_figure_is_a_real_png(full, figure):
    written, _, _, _ = full
    (path,) = [p for p in written.figures if p.stem.split("-", 1)[1] == figure]
    width, height = png_ok(path)
    assert width >= 300 and height >= 200


def test_results_table_holds_the_stored_numbers(full):
    _, markdown, _, _ = full
    assert "| numpy | ok | 90.80 | 91.30 | 0.3000 | 2.00 | 4,000 | 235,146 | numpy 1.0 | no reference band |" in markdown
    assert "| jax | ok | 91.70 | 92.20 |" in markdown


def _tables(written) -> dict[str, Table]:
    return {block.title: block for section in written.report.sections for block in section.blocks if isinstance(block, Table)}


def _spy_on_the_store(monkeypatch, change=None) -> list[list[str]]:
    """Record the columns of each frame the report makes of a run's rows (and let `change` edit it)."""
    frames, real = [], report_loading.rows_frame

    def rows_frame_spy(columns, rows):
        frames.append(list(columns))
        frame = real(columns, rows)
        return change(frame) if change else frame
    monkeypatch.setattr(report_loading, "rows_frame", rows_frame_spy)
    return frames


def _report_rows(frame):
    return frame.drop(columns=["label", "diverged", "usable", "val_missing", "registered", "run_id"])


def test_the_report_rows_are_the_stores_rows(tmp_path):
    """Each run's rows hold the values its results.json was written with (hand-written below, not made by
    document_rows), and equal load_runs' for the same run
    registered in a real store (a sweep cell written without its tag takes sweep.json's); nothing is written
    beside the runs."""
    inputs = tmp_path / "inputs"
    run = run_dir(inputs, accuracies={"numpy": 0.913, "torch": 0.919, "jax": None})
    sweep = activation_sweep(inputs)
    cell = sorted((sweep / "cells").iterdir())[0]
    document = json.loads((cell / "results.json").read_text())
    tag = document.pop("sweep")
    (cell / "results.json").write_text(json.dumps(document))
    loaded = load_inputs([run, sweep])
    assert not list(inputs.rglob("*.sqlite*"))
    by_path = {r.path.resolve(): r for r in loaded.all_runs}
    assert set(by_path) == {run.resolve(), *(path.resolve() for path in (sweep / "cells").iterdir())}
    db_path = tmp_path / "check" / "results.sqlite"
    db_path.parent.mkdir()
    for path, loaded_run in by_path.items():
        data = json.loads((path / "results.json").read_text())
        if path == cell.resolve():
            data["sweep"] = tag
        (path / "results.json").write_text(json.dumps(data))
        register_run(path, db_path)
        kind = "sweep-cell" if "sweep" in data else "run"
        rows = _report_rows(loaded_run.rows)
        if kind == "run":  # written by run_dir: numpy 0.913 and torch 0.919 (validation 0.005 lower), jax failed
            expected = pd.DataFrame({
                "backend": ["numpy", "torch", "jax"], "kind": ["run"] * 3, "spec_name": ["mlp-relu-adam"] * 3,
                "epochs": [2, 2, 2], "status": ["ok", "ok", "failed"], "test_accuracy": [0.913, 0.919, np.nan],
                "test_loss": [0.3, 0.3, np.nan], "best_val_accuracy": [0.908, 0.914, np.nan],
                "final_val_accuracy": [0.908, 0.914, np.nan], "epochs_run": [2, 2, 0],
                "steady_samples_per_s": [4000.0, 4000.0, np.nan], "parameter_count": [235146, 235146, None],
                "split_train": [3600] * 3, "split_test": [1000] * 3,
            })
        else:  # a cell of activation_sweep: (test, validation) from ACTIVATION_RESULTS, 3 epochs, one backend
            activation = data["sweep"]["factors"]["model.hidden[*].activation"]
            test, val = ACTIVATION_RESULTS[activation]
            backend = data["sweep"]["factors"]["backend"]
            expected = pd.DataFrame({
                "backend": [backend], "kind": ["sweep-cell"], "spec_name": ["seed-mlp-sigmoid"], "epochs": [3],
                "status": ["ok"], "test_accuracy": [test], "test_loss": [0.3], "best_val_accuracy": [val],
                "final_val_accuracy": [val], "epochs_run": [3], "steady_samples_per_s": [3500.0 + 100 * len(backend)],
                "parameter_count": [235146], "split_train": [3600], "split_test": [1000],
            })
            assert rows["sweep"].tolist() == ["study-activations"] and rows["cell_key"].tolist() == [path.name]
            assert rows["factors_json"].iloc[0] == data["sweep"]["factors"]
        assert set(rows["run_dir"]) == {path.as_posix()}
        got = rows[list(expected.columns)].astype(object).where(rows[list(expected.columns)].notna(), None)
        assert got.to_dict("list") == expected.astype(object).where(expected.notna(), None).to_dict("list"), path.name
        stored = load_runs(db_path, run_dirs=[path]).drop(columns=["id", "registered", "run_id"])
        pd.testing.assert_frame_equal(_report_rows(loaded_run.rows), stored)
    assert loaded.runs[0].rows["kind"].tolist() == ["run"] * 3
    assert set(loaded.sweeps[0].rows["kind"]) == {"sweep-cell"}
    assert by_path[cell.resolve()].factors == tag["factors"]


def test_the_results_table_holds_the_rows_values(tmp_path, monkeypatch):
    """The results tables hold the rows' values, as load_runs would return them."""
    inputs = tmp_path / "inputs"
    run = run_dir(inputs, accuracies={"numpy": 0.913, "torch": 0.919, "jax": None})
    sweep = activation_sweep(inputs)
    db_path = tmp_path / "check" / "results.sqlite"
    db_path.parent.mkdir()
    for path in (run, *sorted((sweep / "cells").iterdir())):
        register_run(path, db_path)
    expected = load_runs(db_path)
    frames = _spy_on_the_store(monkeypatch)
    written = build_report([run, sweep], tmp_path / "out", fake_defaults)

    assert len(frames) == 1 + len(list((sweep / "cells").iterdir()))  # one per run directory
    assert not list(inputs.rglob("*.sqlite*"))
    tables = _tables(written)
    run_rows = expected[expected["sweep"].isna()]
    frame = tables["run-mlp: mlp-relu-adam on mnist-subset"].frame
    assert list(frame["backend"]) == list(run_rows["backend"]) == ["numpy", "torch", "jax"]
    for column, store_column, scale in (("test acc (%)", "test_accuracy", 100.0), ("val acc (%)", "final_val_accuracy", 100.0),
                                        ("test loss", "test_loss", 1.0), ("train time (s)", "train_time_s", 1.0),
                                        ("samples/s", "steady_samples_per_s", 1.0), ("parameters", "parameter_count", 1)):
        assert frame[column].tolist() == pytest.approx((scale * run_rows[store_column].astype(float)).tolist(), nan_ok=True)
    assert frame["status"].tolist() == ["ok", "ok", "FAILED: " + run_rows["reason"].iloc[2]]
    assert frame["framework"].tolist()[:2] == [" ".join(f"{k} {v}" for k, v in versions.items())
                                               for versions in run_rows["versions_json"].iloc[:2]]
    cells = tables["sweep study-activations: every cell"].frame
    cell_rows = expected[expected["sweep"] == "study-activations"]
    assert len(cells) == len(cell_rows) == 6
    by_cell = {(f["model.hidden[*].activation"], b): a for f, b, a in
               zip(cell_rows["factors_json"], cell_rows["backend"], cell_rows["test_accuracy"])}
    for activation, backend, accuracy in zip(cells["model.hidden[*].activation"], cells["backend"], cells["test acc (%)"]):
        assert accuracy == pytest.approx(100.0 * by_cell[activation, backend])


def test_results_gate_ranking_and_throughput_read_the_stores_frame(tmp_path, monkeypatch):
    """Numbers changed in the frame load_runs returns (and only there) are the ones the report shows."""
    def change(frame):
        frame = frame.copy()
        frame["test_accuracy"] = 0.4321
        frame["train_time_s"] = 123.0
        sigmoid = frame["factors_json"].map(lambda f: (f or {}).get("model.hidden[*].activation") == "sigmoid")
        frame.loc[sigmoid, "final_val_accuracy"] = 0.99
        return frame
    _spy_on_the_store(monkeypatch, change)
    drawn = []
    monkeypatch.setattr(report_drawing, "png", lambda figure: drawn.append(figure) or b"\x89PNG")
    written = build_report([run_dir(tmp_path, epochs=10), activation_sweep(tmp_path)], tmp_path / "out", fake_defaults)
    tables = _tables(written)
    assert set(tables["run-mlp: mlp-relu-adam on mnist-subset"].frame["test acc (%)"].round(6)) == {43.21}
    gate = tables["Sanity gate per run and backend"].frame
    assert set(gate["test acc (%)"].round(6)) == {43.21}
    assert set(gate.loc[gate["run"] == "run-mlp", "verdict"]) == {gates.SUSPECT}  # 43.21% is far below an MLP's band
    ranking = tables["study-activations: model.hidden[*].activation ranked per backend"].frame
    assert list(ranking.loc[ranking["backend"] == "torch", "model.hidden[*].activation"]) == ["sigmoid", "relu", "tanh"]
    timing = next(f for f in drawn if f.get_suptitle() == "time and throughput per backend")
    assert {patch.get_height() for patch in timing.axes[0].patches} == {123.0}


def test_cells_written_without_their_sweep_tag_take_it_from_sweep_json(tmp_path):
    """The store has no factors for a cell whose results.json lacks "sweep"; the report takes sweep.json's."""
    sweep = activation_sweep(tmp_path)
    for path in sweep.glob("cells/*/results.json"):
        document = json.loads(path.read_text())
        del document["sweep"]
        path.write_text(json.dumps(document))
    frame = ranking_table(load_inputs([sweep]).sweeps[0]).frame
    assert list(frame.loc[frame["backend"] == "torch", "model.hidden[*].activation"]) == ["relu", "tanh", "sigmoid"]
    assert set(frame["seeds"]) == {1}


def test_ranking_uses_validation_accuracy_not_test(tmp_path):
    sweep = load_inputs([activation_sweep(tmp_path)]).sweeps[0]
    frame = ranking_table(sweep).frame
    for backend in ("torch", "jax"):
        part = frame[frame["backend"] == backend]
        assert list(part["model.hidden[*].activation"]) == ["relu", "tanh", "sigmoid"]
        assert list(part["rank"]) == [1, 2, 3]
        assert list(part["val acc (%)"].round(6)) == [95.0, 90.0, 85.0]
        assert list(part["test acc (%)"].round(6)) == [80.0, 85.0, 90.0]


def test_seed_groups_match_the_level5_statistics(full):
    inputs = load_inputs([full[3][3]])
    groups = {g.backend: g for g in seed_groups(inputs)}
    for backend in ("torch", "jax"):
        mean, low, high = HAND_STATS["seeds", backend]
        assert groups[backend].seeds == [0, 1, 2]
        assert groups[backend].mean == pytest.approx(mean, abs=HAND_TOL)
        assert (groups[backend].ci_low, groups[backend].ci_high) == pytest.approx((low, high), abs=HAND_TOL)


NAN = float("nan")


def diverged_sweep(parent: Path) -> Path:
    """An activation study over seeds 0-2 where relu (best by validation) diverges for torch at seed 1: NaN accuracies."""
    definition = {"name": "study-unstable", "base": "seed-mlp-sigmoid", "backends": ["torch", "jax"], "seeds": [0, 1, 2],
                  "set": {"loss": {"name": "mse"}, "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0,
                                                                  "nesterov": False}, "training.epochs": 3},
                  "grid": {"model.hidden[*].activation": ACTIVATIONS}}

    def result(f):
        activation = f["model.hidden[*].activation"]
        if (activation, f["backend"], f["seed"]) == ("relu", "torch", 1):
            return NAN, NAN
        test, val = ACTIVATION_RESULTS[activation]
        return test + 0.001 * f["seed"], val
    return sweep_dir(parent, definition, result)


def test_a_diverged_seed_is_counted_ranked_last_and_left_out_of_the_means(tmp_path):
    sweep = load_inputs([diverged_sweep(tmp_path)]).sweeps[0]
    frame = ranking_table(sweep).frame
    torch = frame[frame["backend"] == "torch"]
    assert list(torch["model.hidden[*].activation"]) == ["tanh", "sigmoid", "relu"]
    assert list(torch["rank"]) == [1, 2, 3]
    relu = torch.iloc[-1]
    assert relu["seeds"] == 3 and relu["status"] == "1 of 3 diverged; means over the other 2"
    assert relu["val acc (%)"] == pytest.approx(95.0) and relu["test acc (%)"] == pytest.approx(80.1)
    jax = frame[frame["backend"] == "jax"]
    assert list(jax["model.hidden[*].activation"]) == ["relu", "tanh", "sigmoid"] and set(jax["status"]) == {"ok"}

    group = next(g for g in seed_groups(load_inputs([sweep.path])) if g.backend == "torch" and g.label.endswith(": relu"))
    assert group.seeds == [0, 1, 2] and group.diverged == 1
    mean, low, high = HAND_STATS["two", "torch"]
    assert group.mean == pytest.approx(mean, abs=HAND_TOL)
    assert (group.ci_low, group.ci_high) == pytest.approx((low, high), abs=HAND_TOL)
    row = seed_table([group]).cells()[0]
    assert row[2:] == ["3", "80.10", "[78.83, 81.37]", "80.00 diverged 80.20",
                       "1 of 3 diverged; mean and CI over the other 2"]


def test_a_diverged_seed_is_shown_in_the_report(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(report_drawing, "png", lambda figure: drawn.append(figure) or b"\x89PNG")
    written = build_report([diverged_sweep(tmp_path)], tmp_path / "out", fake_defaults)
    markdown = written.markdown.read_text()
    assert "> **DIVERGED: study-unstable: model.hidden\\[\\*\\].activation=relu, seed=1, backend torch:" in markdown
    assert "| relu | 1 | torch | diverged: finished without a finite accuracy |" in markdown
    assert "| torch | 3 | relu | 95.00 | 80.10 | 3 | 1 of 3 diverged; means over the other 2 |" in markdown
    assert "no finite test accuracy: the training diverged" in markdown
    html = written.html.read_text()
    assert '<td class="bad">1 of 3 diverged; means over the other 2</td>' in html
    ranking = next(f for f in drawn if f.get_suptitle().startswith("study-unstable: ranked"))
    labels = [t.get_text() for t in ranking.axes[0].get_yticklabels()]
    assert labels[0] == "relu (1 of 3 diverged)"  # the bottom bar: ranked last


def test_parity_and_equivalence_tables(full):
    _, markdown, _, _ = full
    assert "| 2 gradients | torch vs jax | pass | 2.00e-15 | 1e-10 |" in markdown
    assert "| mlp-activation-relu | mlp | activation | relu | pass" in markdown
    assert "| mlp-optimizer-sgd | mlp | optimizer | sgd | pass 2.0e-15 | FAIL 3.0e-06" in markdown
    verdict, difference = HAND_LEVEL5_PAIR
    assert f"| mlp-relu-adam | torch vs jax | 3 | {difference:+.3f} |" in markdown and verdict in markdown


def test_hyperparameters_and_neutralised_defaults(full):
    _, markdown, _, _ = full
    assert "| optimizer.learning\\_rate | 0.001 | 0.001 | 0.001 |" in markdown
    assert "| model.hidden\\[0\\].activation.name | relu, tanh, sigmoid | relu, tanh, sigmoid |" in markdown
    assert ("| adam | epsilon | from spec: required | 1e-08 (torch.optim.Adam(eps=...)) | 1e-07 (keras.optimizers.Adam(epsilon)) "
            "| 1e-08 (optax.adam(eps)) |") in markdown
    assert "| adam | beta\\_1 |" not in markdown  # the frameworks agree: nothing was neutralised


def test_neutralised_defaults_lists_only_disagreements_for_used_entries():
    spec = load_spec("seed-cnn").to_dict()
    assert {"adam", "leaky_relu", "batch_norm", "max_pool", "conv2d", "dropout", "categorical_crossentropy"} <= used_entries(spec)
    (table,), problems = neutralised_defaults([spec], ["torch", "keras", "jax", "numpy"], fake_defaults)
    assert problems == []
    assert set(zip(table.frame["entry"], table.frame["parameter"])) == {("adam", "epsilon"), ("leaky_relu", "negative_slope")}
    assert list(table.frame.columns) == ["entry", "parameter", "suite", "torch", "keras", "jax"]
    broken = lambda backend: (pd.DataFrame(columns=["entry", "parameter", "value", "source"]), f"{backend}: ImportError")  # noqa: E731
    (table,), problems = neutralised_defaults([spec], ["torch"], broken)
    assert problems == ["torch: ImportError"] and table.frame.empty
    assert neutralised_defaults([spec], ["numpy"], fake_defaults) == ([], [])


def test_defaults_compare_numbers_by_value():
    assert same_value(0) == same_value(0.0) == same_value("0.0")
    assert same_value(1e-07) == same_value("1e-7") != same_value(1e-08)
    assert same_value([2, 2]) == same_value((2.0, 2))
    assert same_value(True) != same_value(1) and same_value(None) == same_value(NAN) != same_value("None")
    assert same_value("valid") != same_value("VALID")


def test_defaults_that_agree_in_value_and_defaults_no_spec_field_pins():
    spec = load_spec("mlp-relu-adam").to_dict()
    spec["optimizer"] = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0, "nesterov": False}
    rows = {"torch": [("sgd", "momentum", 0, "torch.optim.SGD"), ("sgd", "nesterov", False, "torch.optim.SGD"),
                      ("dense", "kernel_init", "kaiming_uniform_(a=math.sqrt(5))", "torch.nn.Linear"),
                      ("categorical_crossentropy", "reduction", "mean", "torch.nn.CrossEntropyLoss")],
            "keras": [("sgd", "momentum", 0.0, "keras.optimizers.SGD"), ("sgd", "nesterov", False, "keras.optimizers.SGD"),
                      ("dense", "kernel_init", "glorot_uniform", "keras.layers.Dense")],
            "jax": [("sgd", "momentum", "0.0", "optax.sgd"), ("sgd", "nesterov", False, "optax.sgd"),
                    ("dense", "kernel_init", "lecun_normal", "flax.linen.Dense"),
                    ("categorical_crossentropy", "reduction", "none", "optax.softmax_cross_entropy")]}
    read = lambda backend: (pd.DataFrame([dict(zip(("entry", "parameter", "value", "source"), r)) for r in rows[backend]]),  # noqa: E731
                            None)
    (pinned, unpinned), problems = neutralised_defaults([spec], ["torch", "keras", "jax"], read)
    assert problems == []
    assert list(zip(pinned.frame["entry"], pinned.frame["parameter"], pinned.frame["suite"])) == [
        ("dense", "kernel_init", "from spec: model.kernel_init (or the block's own), required")]
    assert list(zip(unpinned.frame["entry"], unpinned.frame["parameter"], unpinned.frame["suite"])) == [
        ("categorical_crossentropy", "reduction", UNPINNED)]
    assert "no run relied on these defaults" in pinned.note and "no run relied" not in unpinned.note
    assert "does not pin" in unpinned.title


def test_a_failing_ladder_line_says_how_many_quantities_fail(tmp_path):
    written = build_report([verify_levels_dir(tmp_path, failing=("torch", "jax"))], tmp_path / "out", fake_defaults)
    markdown = written.markdown.read_text()
    assert "| 2 gradients | torch vs jax | FAIL (2 of 2 quantities) | 3.00e-06 | 1e-10 | dense\\_0/kernel |" in markdown
    assert "> **verify verify-mlp (mlp-relu-adam) did not pass; see the parity section.**" in markdown


def test_a_sweep_without_any_results_yet_is_a_user_error_and_writes_nothing(tmp_path, monkeypatch):
    sweep = activation_sweep(tmp_path)
    shutil.rmtree(sweep / "cells")
    out = tmp_path / "reports" / "r"
    monkeypatch.setattr("experiments.framework_defaults.framework_values", fake_defaults)
    with pytest.raises(UserError) as error:
        report_command(argparse.Namespace(paths=[sweep], out=out), Console(file=io.StringIO()))
    assert str(error.value) == ("no results to report: sweep study-activations has no finished cells; "
                                "run 'mnist-parity sweep study-activations' first")
    assert error.value.exit_code == 2 and not (tmp_path / "reports").exists()


def test_an_empty_sweep_beside_other_results_is_reported_with_its_missing_cells(tmp_path):
    """Only inputs that together hold no result are refused: an empty sweep beside a run is noted, not fatal."""
    empty = activation_sweep(tmp_path)
    shutil.rmtree(empty / "cells")
    written = build_report([run_dir(tmp_path), empty], tmp_path / "out", fake_defaults)
    assert "6 of 6 cells have no results yet" in written.markdown.read_text()
    second = optimizer_sweep(tmp_path)
    shutil.rmtree(second / "cells")
    with pytest.raises(UserError, match="^no results to report: sweeps study-activations, study-optimizers have no "
                                        "finished cells; run 'mnist-parity sweep study-activations' and "
                                        "'mnist-parity sweep study-optimizers' first$"):
        build_report([empty, second], tmp_path / "out2", fake_defaults)
    assert not (tmp_path / "out2").exists()


# ---------------------------------------------------------------- sanity gate



def spec_dict(model="mlp", loss="categorical_crossentropy", optimizer="adam", epochs=10, task="digits") -> dict:
    return {"model": {"kind": model}, "loss": {"name": loss}, "optimizer": {"name": optimizer},
            "training": {"epochs": epochs}, "data": {"task": task}}


@pytest.mark.parametrize("change, train, accuracy, verdict", [
    ({}, 3600, 0.94, gates.PLAUSIBLE),  # measured: an MLP with ReLU and Adam reaches ~94% on the subset
    ({}, 3600, 0.80, gates.SUSPECT),
    ({}, 54000, 0.975, gates.PLAUSIBLE),
    ({}, 54000, 0.95, gates.SUSPECT),
    ({"model": "cnn"}, 3600, 0.96, gates.PLAUSIBLE),
    ({"model": "cnn"}, 3600, 0.90, gates.SUSPECT),
    ({"model": "cnn"}, 60000, 0.985, gates.PLAUSIBLE),
    ({"model": "cnn"}, 60000, 0.975, gates.SUSPECT),
    ({"loss": "mse", "optimizer": "sgd"}, 3600, 0.30, gates.NO_BAND),
    ({"optimizer": "sgd"}, 54000, 0.30, gates.NO_BAND),
    ({"epochs": 2}, 3600, 0.30, gates.NO_BAND),
    ({"task": "even_odd", "loss": "binary_crossentropy"}, 3600, 0.30, gates.NO_BAND),
    ({}, 500, 0.30, gates.NO_BAND),
    ({}, None, 0.30, gates.NO_BAND),
])
def test_gate_verdicts(change, train, accuracy, verdict):
    result = gates.gate(spec_dict(**change), train, accuracy)
    assert result.status == verdict, result.reason
    assert result.reason


def test_gate_skips_a_failed_backend():
    assert gates.gate(spec_dict(), 3600, None, ok=False).status == gates.NOT_GATED


@pytest.mark.parametrize("model, train, expected", [("mlp", 60000, 96.0), ("mlp", 54000, 95.8), ("mlp", 3600, 83.7),
                                                    ("cnn", 60000, 98.0), ("cnn", 54000, 97.9), ("cnn", 3600, 91.8)])
def test_gate_thresholds_are_the_documented_ones(model, train, expected):
    assert round(gates.threshold(gates.REFERENCE_BANDS[model], train), 1) == expected
    assert f"{expected}%" in gates.__doc__


def test_flagged_run_is_shown_everywhere_and_others_are_not(tmp_path):
    low = run_dir(tmp_path, "run-low", epochs=10, accuracies={"torch": 0.70, "jax": 0.94})
    study = activation_sweep(tmp_path)  # MSE + SGD: outside the recipe, however low
    level5 = verify_level5_dir(tmp_path)
    written = build_report([low, study, level5], tmp_path / "out", fake_defaults)
    assert written.flagged == [f"run-low (torch): {gates.gate(spec_dict(), 3600, 0.70).reason}"]
    markdown = written.markdown.read_text()
    html = written.html.read_text()
    assert "> **IMPLEMENTATION SUSPECT: run-low, backend torch:" in markdown
    assert '<p class="alert">IMPLEMENTATION SUSPECT: run-low, backend torch:' in html
    assert "| run-low | torch | mlp | 3,600 | 10 | 70.00 | 83.7 | implementation suspect |" in markdown
    assert "| run-low | jax | mlp | 3,600 | 10 | 94.00 | 83.7 | plausible |" in markdown
    assert "| verify-level5 (level 5 mean of 3 seeds) | torch | mlp | 3,600 | 10 | 94.27 | 83.7 | plausible |" in markdown
    assert markdown.count("IMPLEMENTATION SUSPECT") == 1
    assert "loss mse (the bands assume categorical\\_crossentropy)" in markdown
    assert '<td class="bad">implementation suspect</td>' in html


def test_failed_backend_and_missing_sweep_cells_are_reported(tmp_path):
    run = run_dir(tmp_path, "run-failed", accuracies={"torch": 0.9, "jax": None})
    sweep = activation_sweep(tmp_path)
    document = json.loads((sweep / "sweep.json").read_text())
    missing = document["cells"][0]["key"]
    shutil.rmtree(sweep / "cells" / missing)
    written = build_report([run, sweep], tmp_path / "out", fake_defaults)
    markdown = written.markdown.read_text()
    assert "> **FAILED: run-failed, backend jax: worker exited with code 1 before finishing**" in markdown
    assert "| jax | FAILED: worker exited with code 1 before finishing |" in markdown
    assert f"1 of 6 cells have no results yet ({missing})" in markdown


# ---------------------------------------------------------------- summary first, figures before the long tables


def _section(written, heading: str):
    (section,) = [s for s in written.report.sections if s.heading == heading]
    return section


def _summary_table(written, title: str) -> pd.DataFrame:
    (table,) = [b for b in _section(written, "Summary").blocks if isinstance(b, Table) and b.title.startswith(title)]
    return table.frame


def _summary_markdown(markdown: str) -> str:
    return markdown.split("## Summary", 1)[1].split("\n## ", 1)[0]


def _store_frame(sweep: Path, tmp_path: Path) -> pd.DataFrame:
    """The sweep's cells as the results store holds them, registered independently of the report."""
    db_path = tmp_path / f"check-{sweep.name}" / "results.sqlite"
    db_path.parent.mkdir()
    for cell in sorted((sweep / "cells").iterdir()):
        register_run(cell, db_path)
    return load_runs(db_path)


def test_summary_names_the_best_and_worst_configuration_per_backend_from_the_data(full, tmp_path):
    written, markdown, _, paths = full
    headline = _summary_table(written, "Studies: best and worst")
    for sweep, field in ((paths[1], "model.hidden[*].activation"), (paths[2], "optimizer")):
        store = _store_frame(sweep, tmp_path)
        store["config"] = store["factors_json"].map(lambda f: str(f[field]))
        for backend, rows in store.groupby("backend"):
            rows = rows.sort_values("final_val_accuracy", ascending=False)
            best, worst = rows.iloc[0], rows.iloc[-1]
            (line,) = headline[(headline["study"] == f"{sweep.name} ({field})") & (headline["backend"] == backend)].to_dict("records")
            assert (line["best"], line["worst"]) == (best["config"], worst["config"])
            assert [line["best val (%)"], line["best test (%)"], line["worst val (%)"], line["worst test (%)"]] == pytest.approx(
                [100 * best["final_val_accuracy"], 100 * best["test_accuracy"],
                 100 * worst["final_val_accuracy"], 100 * worst["test_accuracy"]])
    # validation picks relu though its test accuracy is the lowest (ACTIVATION_RESULTS): the summary says so as it is
    assert "| study-activations (model.hidden\\[\\*\\].activation) | torch | relu | 95.00 | 80.00 | sigmoid | 85.00 | 90.00 | 3 |" \
        in _summary_markdown(markdown)
    assert "| study-optimizers (optimizer) | jax | adam | 96.00 | 95.00 | sgd | 89.00 | 88.00 | 2 |" in _summary_markdown(markdown)


def test_summary_gives_the_seed_means_intervals_and_verdicts(full):
    written, markdown, _, _ = full
    seeds = _summary_table(written, "Test accuracy over seeds")
    expected = [("sweep study-seed-mlp", b, HAND_STATS["seeds", b]) for b in ("torch", "jax")]
    expected += [("mlp-relu-adam (verify level 5)", b, HAND_STATS["level5", b]) for b in ("torch", "jax")]
    assert list(zip(seeds["seeds of"], seeds["backend"])) == [(label, b) for label, b, _ in expected]  # study sweeps: not here
    for (label, backend, (mean, low, high)), row in zip(expected, seeds.to_dict("records")):
        assert row["mean test acc (%)"] == pytest.approx(mean, abs=HAND_TOL) and row["seeds"] == "3"
        assert row["95% CI (%)"] == f"[{low:.2f}, {high:.2f}]"
    verdict, difference = HAND_LEVEL5_PAIR
    assert (f"- Equivalence of mlp-relu-adam (verify level 5, 3 seeds, margin ±0.3 points): torch vs jax {verdict} "
            f"({difference:+.3f} points).") in _summary_markdown(markdown)


def test_summary_gives_pass_or_fail_per_ladder_level_with_the_worst_error(tmp_path):
    written = build_report([verify_levels_dir(tmp_path, failing=("torch", "jax")), verify_matrix_dir(tmp_path)],
                           tmp_path / "out", fake_defaults)
    summary = _summary_markdown(written.markdown.read_text())
    assert "| mlp-relu-adam (float64) | 1 forward | pass | 2.00e-15 | torch vs numpy |" in summary
    assert "| mlp-relu-adam (float64) | 2 gradients | FAIL: torch vs jax | 3.00e-06 | torch vs jax |" in summary
    assert "| matrix on mlp-relu-adam | 2 gradients | FAIL in 1 of 2 cells: mlp-optimizer-sgd | 3.00e-06 | " \
           "mlp-optimizer-sgd: torch vs jax |" in summary
    assert "| matrix on mlp-relu-adam | 1 forward | pass in all 2 cells | 2.00e-15 |" in summary
    assert '<td class="bad">FAIL: torch vs jax</td>' in written.html.read_text()


def test_a_suspect_run_heads_the_summary_in_red(tmp_path):
    low = run_dir(tmp_path, "run-low", epochs=10, accuracies={"torch": 0.70, "jax": 0.94})
    written = build_report([low, activation_sweep(tmp_path), verify_level5_dir(tmp_path)], tmp_path / "out", fake_defaults)
    first = _section(written, "Summary").blocks[0]
    assert first.kind == "alert" and first.text.startswith("IMPLEMENTATION SUSPECT: run-low, backend torch: 70.00%")
    summary = _summary_markdown(written.markdown.read_text())
    assert summary.lstrip().startswith("> **IMPLEMENTATION SUSPECT: run-low, backend torch:")
    assert ("- Sanity gate: 4 runs (per backend) checked against a reference band: 1 implementation suspect (run-low (torch)), "
            "3 plausible; 6 runs without a reference band, counted per reason in the Sanity gate section.") in summary
    assert "- Run run-low (mlp-relu-adam): test accuracy torch 70.00%, jax 94.00%." in summary
    html = written.html.read_text()
    summary_html = html.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert summary_html.startswith('<h2>Summary</h2>\n<p class="alert">IMPLEMENTATION SUSPECT: run-low, backend torch:')
    assert "color: #b71c1c" in html.split(".alert {", 1)[1].split("}", 1)[0]


def test_failed_and_diverged_runs_are_named_in_the_summary(tmp_path):
    written = build_report([run_dir(tmp_path, "run-failed", accuracies={"torch": 0.9, "jax": None}), diverged_sweep(tmp_path)],
                           tmp_path / "out", fake_defaults)
    summary = _summary_markdown(written.markdown.read_text())
    assert "> **FAILED: run-failed, backend jax: worker exited with code 1 before finishing**" in summary
    assert "> **DIVERGED: study-unstable: model.hidden\\[\\*\\].activation=relu, seed=1, backend torch:" in summary
    assert "- Run run-failed (mlp-relu-adam): test accuracy torch 90.00%, jax FAILED." in summary
    # the worst torch configuration is the one with a diverged seed (ranked last), and it says so
    assert "| torch | tanh | 90.00 | 85.10 | relu (1 of 3 diverged; means over the other 2) | 95.00 | 80.10 | 3 |" in summary


def test_runs_without_a_reference_band_are_counted_per_reason(tmp_path):
    low = run_dir(tmp_path, "run-low", epochs=10, accuracies={"torch": 0.70, "jax": 0.94})
    short = run_dir(tmp_path, "run-short", epochs=2, accuracies={"torch": 0.90, "jax": None})
    written = build_report([low, short, activation_sweep(tmp_path), optimizer_sweep(tmp_path)], tmp_path / "out", fake_defaults)
    gate = _section(written, "Sanity gate")
    (gated,) = [b for b in gate.blocks if isinstance(b, Table)]
    assert list(zip(gated.frame["run"], gated.frame["backend"], gated.frame["verdict"])) == [
        ("run-low", "torch", gates.SUSPECT), ("run-low", "jax", gates.PLAUSIBLE)]  # no optimizer cell: 3 epochs, too short
    (counts,) = [b for b in gate.blocks if isinstance(b, Bullets)]
    sgd = "optimizer sgd (the bands assume an adaptive optimizer: adam, adamw, nadam, adamax, rmsprop)"
    assert counts.items == ["6 runs: loss mse (the bands assume categorical_crossentropy)",
                            f"2 runs: {sgd}", "2 runs: 3 epochs (the bands need the standard budget: at least 10)",
                            "1 run: 2 epochs (the bands need the standard budget: at least 10)",
                            "1 run: the backend did not finish"]
    (listed,) = [b for b in _section(written, "Appendix: runs without a reference band").blocks if isinstance(b, Table)]
    assert listed.collapsed and len(listed.frame) == 12 and gates.SUSPECT not in set(listed.frame["verdict"])
    assert written.report.sections[-1].heading == "Appendix: runs without a reference band"
    markdown = written.markdown.read_text()
    gate_markdown = markdown.split("## Sanity gate", 1)[1].split("\n## ", 1)[0]
    assert "| no reference band |" not in gate_markdown and "- 6 runs: loss mse (the bands assume categorical\\_crossentropy)" in gate_markdown
    appendix = markdown.split("## Appendix: runs without a reference band", 1)[1]
    assert appendix.count("| no reference band |") == 11 and appendix.count("| not gated |") == 1
    html = written.html.read_text()
    folded = html.split("<details><summary>Runs without a reference band (12 rows; click to show)</summary>", 1)[1]
    assert folded.split("</details>", 1)[0].count("<tr>") == 13  # the header and the 12 runs


def test_figures_come_before_the_long_tables(full):
    written, markdown, html, _ = full
    headings = [s.heading for s in written.report.sections]
    assert headings[:2] == ["Summary", "Training curves"]
    last_figure = max(markdown.rindex(f"(figures/{p.name})") for p in written.figures)
    for table in ("**Sanity gate per run and backend**", "**sweep study-activations: every cell**",
                  "**run-mlp: mlp-relu-adam on mnist-subset**", "**study-activations: model.hidden\\[\\*\\].activation ranked per backend**",
                  "**Inputs**", "**Runs without a reference band**"):
        assert last_figure < markdown.index(table), table
    assert markdown.index("## Summary") < markdown.index("![") < markdown.index("## Results side by side")
    assert html.rindex("<figure") < html.index('<section id="sanity-gate">') < html.index('<section id="results-side-by-side">')


def test_summary_names_from_configs_are_escaped(evil):
    summary = _summary_markdown(evil.markdown.read_text())
    assert f"- Run run ({md_escape(EVIL)}): test accuracy torch 92.00%, jax 91.00%." in summary
    assert f"| {md_escape(EVIL)} (model.hidden\\[\\*\\].activation) | torch |" in summary
    html = evil.html.read_text().split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert "<script" not in html and html.count("&lt;script&gt;alert(1)&lt;/script&gt;&amp;co") >= 3


# ---------------------------------------------------------------- only figures with data


@pytest.mark.parametrize("kinds, expected", [
    (["run"], {"curves-run-mlp", "time-and-throughput"}),
    (["levels"], {"parity-ladder-verify-mlp", "error-growth-verify-mlp"}),
    (["level5"], {"accuracy-over-seeds"}),
    (["activations"], {"studies", "ranking-study-activations", "time-and-throughput"}),
])
def test_only_figures_the_inputs_have_data_for(tmp_path, kinds, expected):
    makers = {"run": run_dir, "levels": verify_levels_dir, "level5": verify_level5_dir, "activations": activation_sweep}
    written = build_report([makers[k](tmp_path) for k in kinds], tmp_path / "out", fake_defaults)
    assert {p.stem.split("-", 1)[1] for p in written.figures} == expected


def test_a_run_without_history_gets_no_curves(tmp_path):
    path = run_dir(tmp_path)
    document = json.loads((path / "results.json").read_text())
    for backend in document["backends"].values():
        backend["history"] = []
    (path / "results.json").write_text(json.dumps(document))
    written = build_report([path], tmp_path / "out", fake_defaults)
    assert [p.stem.split("-", 1)[1] for p in written.figures] == ["time-and-throughput"]


def test_study_panels_share_the_y_axis_across_backends(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(report_drawing, "png", lambda figure: drawn.append(figure) or b"")
    sweeps = load_inputs([activation_sweep(tmp_path), optimizer_sweep(tmp_path)]).sweeps
    assert studies_figure(sweeps) is not None
    (figure,) = drawn
    (activations_torch, activations_jax, optimizers_torch, optimizers_jax) = figure.axes[:4]
    assert activations_torch.get_shared_y_axes().joined(activations_torch, activations_jax)
    assert optimizers_torch.get_shared_y_axes().joined(optimizers_torch, optimizers_jax)
    assert activations_torch.get_ylim() == activations_jax.get_ylim()


# ---------------------------------------------------------------- escaping


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """A report whose spec, sweep and activation names carry markup (backend names cannot: a results.json naming a
    backend that is not the suite's own is refused); shared with the browser test."""
    root = tmp_path_factory.mktemp("evil")
    return evil_report(root, root / "out")


def evil_report(root: Path, out: Path):
    run = run_dir(root, "run", accuracies={"torch": 0.92, "jax": 0.91}, spec_name=EVIL)
    sweep = activation_sweep(root, name="study")
    document = json.loads((sweep / "sweep.json").read_text())
    document["name"] = EVIL
    for cell in document["cells"]:
        if cell["factors"]["model.hidden[*].activation"] == "tanh":
            cell["factors"]["model.hidden[*].activation"] = EVIL
            results = json.loads((sweep / "cells" / cell["key"] / "results.json").read_text())
            results["sweep"]["factors"] = cell["factors"]
            results["spec"]["model"]["hidden"][0]["activation"]["name"] = EVIL
            (sweep / "cells" / cell["key"] / "results.json").write_text(json.dumps(results))
    (sweep / "sweep.json").write_text(json.dumps(document))
    return build_report([run, sweep, verify_levels_dir(root)], out, fake_defaults)


def test_names_from_configs_are_escaped_in_markdown(evil):
    markdown = evil.markdown.read_text()
    assert "<script" not in markdown and "alert(1)</" not in markdown
    assert md_escape(EVIL) == "&lt;script&gt;alert(1)&lt;/script&gt;&amp;co"
    assert md_escape(EVIL) in markdown
    for where in (f"sweep {md_escape(EVIL)}: every cell", f"{md_escape(EVIL)} on mnist-subset"):
        assert where in markdown
    assert md_escape("a|b_c*[d]") == "a\\|b\\_c\\*\\[d\\]"


def test_names_from_configs_are_escaped_in_html(evil):
    html = evil.html.read_text()
    assert "<script" not in html.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&amp;co"
    assert html.count(escaped) >= 4
    assert "default-src 'none'" in html


def test_html_colours_verdict_columns_only():
    frame = pd.DataFrame([{"activation": "ok: x", "status": "ok", "verdict": "different"},
                          {"activation": "failed run", "status": "1 of 3 diverged; means over the other 2", "verdict": "x"}])
    html = html_table(Table("t", frame))
    assert "<td>ok: x</td>" in html and "<td>failed run</td>" in html
    assert '<td class="good">ok</td>' in html and '<td class="bad">different</td>' in html
    assert '<td class="bad">1 of 3 diverged; means over the other 2</td>' in html


def test_html_still_colours_the_matrix_levels(full):
    _, _, html, _ = full
    assert '<td class="bad">FAIL 3.0e-06' in html and '<td class="good">pass 2.0e-15</td>' in html


# ---------------------------------------------------------------- bad input: UserError, exit 2, nothing written


def _corrupt_results(root: Path) -> Path:
    path = run_dir(root)
    text = (path / "results.json").read_text()
    (path / "results.json").write_text(text[: len(text) // 2])
    return path


def _wrong_shape(root: Path) -> Path:
    path = run_dir(root)
    document = json.loads((path / "results.json").read_text())
    document["backends"] = [document["backends"]["torch"]]
    (path / "results.json").write_text(json.dumps(document))
    return path


def _corrupt_cell(root: Path) -> Path:
    sweep = activation_sweep(root)
    key = json.loads((sweep / "sweep.json").read_text())["cells"][0]["key"]
    (sweep / "cells" / key / "results.json").write_text("{not json")
    return sweep


def _sweep_json_array(root: Path) -> Path:
    sweep = activation_sweep(root)
    (sweep / "sweep.json").write_text("[]")
    return sweep


def _bad_cell_key(root: Path) -> Path:
    sweep = activation_sweep(root)
    document = json.loads((sweep / "sweep.json").read_text())
    document["cells"][0]["key"] = "../../etc"
    (sweep / "sweep.json").write_text(json.dumps(document))
    return sweep


def _corrupt_verify(root: Path) -> Path:
    path = verify_levels_dir(root)
    document = json.loads((path / "verify.json").read_text())
    document["levels"]["1"]["summary"][0]["passed"] = "maybe"
    (path / "verify.json").write_text(json.dumps(document))
    return path


def _empty_dir(root: Path) -> Path:
    (root / "empty").mkdir()
    return root / "empty"


def _a_file(root: Path) -> Path:
    (root / "file.json").write_text("{}")
    return root / "file.json"


@pytest.mark.parametrize("make, message", [
    (_a_file, "is not a directory"),
    (_empty_dir, "is not a run, sweep or verify directory"),
    (lambda root: root / "nowhere", "is not a directory"),
    (_corrupt_results, "is not valid JSON"),
    (_wrong_shape, "'backends' is a list, expected an object"),
    (_corrupt_cell, "moves a damaged cell aside"),
    (_sweep_json_array, "expected a JSON object"),
    (_bad_cell_key, "is not a folder name"),
    (_corrupt_verify, "is not a verify.json this version writes"),
])
def test_bad_input_is_a_user_error_and_writes_nothing(tmp_path, make, message):
    good = run_dir(tmp_path / "good")
    bad = make(tmp_path)
    out = tmp_path / "reports" / "r"
    args = argparse.Namespace(paths=[good, bad], out=out)
    with pytest.raises(UserError) as error:
        report_command(args, Console(file=io.StringIO()))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert error.value.exit_code == 2
    assert not (tmp_path / "reports").exists()


def test_an_unwritable_out_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        build_report([run_dir(tmp_path)], tmp_path / "file" / "out", fake_defaults)


def _user_folder(out: Path) -> None:
    (out / "precious.txt").write_text("keep me")


def _report_md_among_other_files(out: Path) -> None:
    (out / "report.md").write_text("my notes, not a generated report")
    (out / "thesis.tex").write_text("keep me")


def _a_figures_folder_with_other_files(out: Path) -> None:
    (out / "report.md").write_text("x")
    (out / "figures").mkdir()
    (out / "figures" / "01-curves.png").write_bytes(b"png")
    (out / "figures" / "data.csv").write_text("keep me")


def _report_md_that_is_a_folder(out: Path) -> None:
    (out / "report.md").mkdir()
    (out / "report.md" / "chapter.md").write_text("keep me")


@pytest.mark.parametrize("make", [_user_folder, _report_md_among_other_files, _a_figures_folder_with_other_files,
                                  _report_md_that_is_a_folder])
def test_out_that_is_not_a_report_is_refused(tmp_path, make, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    make(out)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    monkeypatch.setattr("experiments.framework_defaults.framework_values", fake_defaults)
    with pytest.raises(UserError) as error:
        report_command(argparse.Namespace(paths=[run_dir(tmp_path)], out=out), Console(file=io.StringIO()))
    assert str(error.value) == (f"--out: {out} exists and is not a report (no {MARKER} marker, and it holds other files); "
                                "choose another --out")
    assert error.value.exit_code == 2
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before


def test_a_report_folder_carries_the_marker_and_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    build_report([run_dir(tmp_path, "a")], out, fake_defaults)
    assert (out / MARKER).is_file()
    (out / "scratch.txt").write_text("put into a report folder: replaced with it")
    build_report([verify_level5_dir(tmp_path)], out, fake_defaults)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "figures", "report.html", "report.md"]


def test_a_report_written_before_the_marker_is_replaced(tmp_path):
    out = tmp_path / "reports" / "old"
    (out / "figures").mkdir(parents=True)
    for name in ("report.md", "report.html"):
        (out / name).write_text("old")
    (out / "figures" / "01-curves-old.png").write_bytes(b"old")
    build_report([run_dir(tmp_path)], out, fake_defaults)
    assert (out / MARKER).is_file() and (out / "report.md").read_text() != "old"
    assert not (out / "figures" / "01-curves-old.png").exists()


def test_an_earlier_report_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    build_report([run_dir(tmp_path, "a")], out, fake_defaults)
    (out / "figures" / "stale.png").write_bytes(b"old")
    build_report([verify_level5_dir(tmp_path)], out, fake_defaults)
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["01-accuracy-over-seeds.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "out", "verify-level5"]


def test_a_failure_while_writing_leaves_the_earlier_report(tmp_path):
    out = tmp_path / "out"
    write_directory(out, {"report.md": b"first"})
    with pytest.raises(TypeError):
        write_directory(out, {"report.md": b"second", "figures/x.png": "not bytes"})
    assert (out / "report.md").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------- headlines: unranked, failed, incomplete, clipped

POINTS_TOL = 1e-9  # accuracy points recomputed from the same numbers: equal up to floating-point rounding


def _without_validation(sweep: Path) -> Path:
    """The sweep's cells as a run without a validation split writes them: no val_* in the history, validation 0."""
    for path in sweep.glob("cells/*/results.json"):
        document = json.loads(path.read_text())
        document["dataset"]["split"]["validation"] = 0
        for outcome in document["backends"].values():
            for record in outcome["history"]:
                record.pop("val_accuracy", None)
                record.pop("val_loss", None)
        path.write_text(json.dumps(document))
    return sweep


def test_a_study_without_validation_accuracies_is_not_ranked(tmp_path):
    """No configuration has a validation accuracy: no best or worst (the test accuracy must not choose), no ranks."""
    sweep = _without_validation(activation_sweep(tmp_path))
    written = build_report([sweep], tmp_path / "out", fake_defaults)
    headline = _summary_table(written, "Studies: best and worst")
    assert list(headline["best"]) == [NOT_RANKED_NO_SPLIT] * 2
    assert headline[["best val (%)", "best test (%)", "worst", "worst val (%)", "worst test (%)"]].isna().all().all()
    ranking = ranking_table(load_inputs([sweep]).sweeps[0])
    assert ranking.frame["rank"].isna().all() and ranking.title.endswith(f"per backend ({NOT_RANKED_NO_SPLIT})")
    assert f"{NOT_RANKED_NO_SPLIT.capitalize()} (torch, jax)" in ranking.note
    summary = _summary_markdown(written.markdown.read_text())
    assert f"| study-activations (model.hidden\\[\\*\\].activation) | torch | {NOT_RANKED_NO_SPLIT} | - | - | - | - | - | 3 |" in summary


def test_a_configuration_whose_only_seed_failed_is_not_the_worst_but_listed_apart(tmp_path):
    definition = {"name": "study-failing", "base": "seed-mlp-sigmoid", "backends": ["torch", "jax"],
                  "set": {"loss": {"name": "mse"}, "training.epochs": 3,
                          "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0, "nesterov": False}},
                  "grid": {"model.hidden[*].activation": ACTIVATIONS}}

    def result(f):
        activation = f["model.hidden[*].activation"]
        return None if (activation, f["backend"]) == ("sigmoid", "torch") else ACTIVATION_RESULTS[activation]
    written = build_report([sweep_dir(tmp_path, definition, result)], tmp_path / "out", fake_defaults)
    headline = _summary_table(written, "Studies: best and worst").set_index("backend")
    # sigmoid is torch's worst by validation only when it has a result; its only seed failed, so tanh is the worst
    assert (headline.loc["torch", "best"], headline.loc["torch", "worst"]) == ("relu", "tanh")
    assert headline.loc["torch", "worst val (%)"] == pytest.approx(90.0, abs=POINTS_TOL)
    assert headline.loc["torch", "not ranked"] == "sigmoid (1 of 1 FAILED)"
    assert headline.loc["jax", "worst"] == "sigmoid" and pd.isna(headline.loc["jax", "not ranked"])
    summary = _summary_markdown(written.markdown.read_text())
    assert "| torch | relu | 95.00 | 80.00 | tanh | 90.00 | 85.00 | 3 | sigmoid (1 of 1 FAILED) |" in summary


def seeds_sweep(parent: Path, accuracies: dict, name: str = "study-seeds") -> Path:
    """A sweep over seeds 0-2 only; accuracies: {(backend, seed): test accuracy, or None when that seed failed}."""
    definition = {"name": name, "base": "mlp-relu-adam", "backends": ["torch", "jax"], "seeds": [0, 1, 2],
                  "set": {"training.epochs": 2}}

    def result(f):
        accuracy = accuracies[f["backend"], f["seed"]]
        return None if accuracy is None else (accuracy, 0.99)
    return sweep_dir(parent, definition, result)


def test_a_failed_seed_stays_in_its_group_and_is_named(tmp_path):
    accuracies = {**SEED_ACCURACIES, ("torch", 1): None}
    written = build_report([seeds_sweep(tmp_path, accuracies)], tmp_path / "out", fake_defaults)
    (torch,) = [g for g in seed_groups(load_inputs([tmp_path / "sweeps" / "study-seeds"])) if g.backend == "torch"]
    assert torch.seeds == [0, 1, 2] and torch.failures == 1 and torch.diverged == 0
    mean, low, high = HAND_STATS["failed-middle", "torch"]
    assert torch.mean == pytest.approx(mean, abs=HAND_TOL)
    row = seed_table([torch]).cells()[0]
    assert row[2:] == ["3", f"{mean:.2f}", f"[{low:.2f}, {high:.2f}]", "99.00 FAILED 99.10",
                       "1 of 3 FAILED; mean and CI over the other 2"]
    seeds = _summary_table(written, "Test accuracy over seeds").set_index("backend")
    assert seeds.loc["torch", "seeds"] == "3 (1 of 3 FAILED; mean and CI over the other 2)" and seeds.loc["jax", "seeds"] == "3"
    assert "| torch | 3 | 99.05 |" in written.markdown.read_text().split("**Test accuracy over seeds", 2)[2]


def test_an_interval_past_100_percent_is_clipped_and_says_so(tmp_path):
    accuracies = {**SEED_ACCURACIES, ("torch", 0): 0.999, ("torch", 1): 0.95, ("torch", 2): 0.999}
    _, truth_low, truth_high = HAND_STATS["past-100", "torch"]
    assert truth_high > 100.0  # the raw t interval reaches past an accuracy's range
    written = build_report([seeds_sweep(tmp_path, accuracies)], tmp_path / "out", fake_defaults)
    (torch,) = [g for g in seed_groups(load_inputs([tmp_path / "sweeps" / "study-seeds"])) if g.backend == "torch"]
    low, high, clipped = torch.interval
    assert clipped and high == 100.0 and low == pytest.approx(truth_low, abs=HAND_TOL)
    table = seed_table([torch])
    assert table.cells()[0][4] == f"[{truth_low:.2f}, 100.00] (clipped)" and "clipped to [0, 100]" in table.note
    seeds = _summary_table(written, "Test accuracy over seeds").set_index("backend")
    assert seeds.loc["torch", "95% CI (%)"] == f"[{truth_low:.2f}, 100.00] (clipped)"
    assert seeds.loc["jax", "95% CI (%)"].endswith("]")  # inside [0, 100]: not clipped
    assert "Intervals clipped to \\[0, 100\\]%" in _summary_markdown(written.markdown.read_text())


def test_an_incomplete_grid_says_how_many_configurations_and_which_are_missing(tmp_path):
    sweep = activation_sweep(tmp_path)
    for cell in json.loads((sweep / "sweep.json").read_text())["cells"]:
        if (cell["factors"]["model.hidden[*].activation"], cell["backend"]) == ("relu", "torch"):
            shutil.rmtree(sweep / "cells" / cell["key"])
    written = build_report([sweep], tmp_path / "out", fake_defaults)
    headline = _summary_table(written, "Studies: best and worst").set_index("backend")
    assert headline.loc["torch", "configurations"] == "2 of 3 (no results yet: relu)"
    assert headline.loc["jax", "configurations"] == "3"
    ranking = ranking_table(load_inputs([sweep]).sweeps[0])
    assert "Incomplete grid: torch has results for 2 of 3 configurations; no results yet: relu." in ranking.note
    assert "| torch | tanh | 90.00 | 85.00 | sigmoid | 85.00 | 90.00 | 2 of 3 (no results yet: relu) |" in \
        _summary_markdown(written.markdown.read_text())


def test_a_missing_final_validation_accuracy_is_not_a_divergence(tmp_path):
    """Diverged only when the last epoch's validation accuracy is there and not finite; a missing one is said as such
    and the backend's test accuracy still counts."""
    path = run_dir(tmp_path)
    document = json.loads((path / "results.json").read_text())
    del document["backends"]["numpy"]["history"][-1]["val_accuracy"]
    document["backends"]["torch"]["history"][-1]["val_accuracy"] = float("nan")
    (path / "results.json").write_text(json.dumps(document))
    rows = load_inputs([path]).runs[0].rows.set_index("backend")
    assert not rows.loc["numpy", "diverged"] and rows.loc["numpy", "usable"] and rows.loc["numpy", "val_missing"]
    assert rows.loc["torch", "diverged"] and not rows.loc["torch", "usable"]
    assert not rows.loc["jax", "diverged"] and not rows.loc["jax", "val_missing"]
    written = build_report([path], tmp_path / "out", fake_defaults)
    frame = _tables(written)["run-mlp: mlp-relu-adam on mnist-subset"].frame.set_index("backend")
    assert frame.loc["numpy", "status"] == NO_VALIDATION and frame.loc["torch", "status"].startswith("diverged")
    markdown = written.markdown.read_text()
    assert "DIVERGED: run-mlp, backend torch" in markdown and "DIVERGED: run-mlp, backend numpy" not in markdown
    assert '<td class="neutral">no validation accuracy</td>' in written.html.read_text()


# ---------------------------------------------------------------- command and naming


def test_report_command_prints_what_it_wrote(tmp_path, monkeypatch):
    monkeypatch.setattr("experiments.framework_defaults.framework_values", fake_defaults)
    low = run_dir(tmp_path, "run-low", epochs=10, accuracies={"torch": 0.5})
    monkeypatch.chdir(tmp_path)
    buffer = io.StringIO()
    code = report_command(argparse.Namespace(paths=[low], out=None), Console(file=buffer, width=300))
    assert code == 0
    assert (tmp_path / "reports" / "run-low" / "report.html").is_file()
    assert "IMPLEMENTATION SUSPECT: run-low (torch)" in buffer.getvalue()


def test_default_out_names_the_inputs(tmp_path):
    one = load_inputs([run_dir(tmp_path, "20261130-mlp")])
    assert default_out(one) == Path("reports/20261130-mlp")
    several = load_inputs([tmp_path / "20261130-mlp", activation_sweep(tmp_path)])
    assert default_out(several) == Path("reports/20261130-mlp-and-1-more")


def test_report_modules_import_no_framework():
    code = BLOCKER.format(frameworks=set(FRAMEWORKS), module="experiments.commands.report")  # imports experiments.report
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1:]


# ---------------------------------------------------------------- stopped runs


def test_a_stopped_run_names_its_backends_interrupted_and_pending(tmp_path):
    """A run stopped by Ctrl-C while jax trained, keras never started: neither is called FAILED."""
    spec = load_spec("mlp-relu-adam", ["training.epochs=2"])
    outcomes = [outcome("torch", 0.919, 0.914, 2), BackendOutcome("jax", status="interrupted", reason="interrupted by SIGINT"),
                BackendOutcome("keras")]
    run = write_run(tmp_path / "stopped", spec, outcomes)
    markdown = build_report([run], tmp_path / "out", fake_defaults).markdown.read_text()
    assert "| jax | INTERRUPTED: interrupted by SIGINT |" in markdown
    assert "| keras | PENDING: the run stopped before this backend started |" in markdown
    assert "**INTERRUPTED: stopped, backend jax: interrupted by SIGINT**" in markdown and "FAILED" not in markdown


def test_a_native_run_shows_its_implementation_in_the_results_table(tmp_path, run_document):
    """A run with implementation "native" gets an implementation column (stored per row); a catalog run's table
    leaves the column out."""
    from experiments.report.results_tables import results_table
    from tests.test_store import write_run

    native = json.loads(json.dumps(run_document))
    native["spec"]["implementation"] = "native"
    runs = load_inputs([write_run(tmp_path / "20260101-000000-catalog", run_document),
                        write_run(tmp_path / "20260101-000001-native", native)]).runs
    tables = {run.label: results_table(run.label, run.rows).frame for run in runs}
    catalog, native_table = (tables[label] for label in sorted(tables))
    assert "implementation" not in catalog.columns
    assert list(native_table.columns[:2]) == ["backend", "implementation"] and set(native_table["implementation"]) == {"native"}


def test_a_native_verify_gets_a_table_of_what_the_built_ins_change(tmp_path):
    """Failing rows against the oracle, grouped by level, backend and measured cause, with the component (from the
    differences catalog), the worst error and the number of rows; a catalog-mode verify gets no such table."""
    from experiments.report.inputs import Verify
    from experiments.report.schemas import VerifyDocument
    from experiments.report.verify_tables import builtins_table

    spec = {"name": "seed-cnn", "model": {}, "loss": {}, "optimizer": {}, "training": {}, "dtype": "float64",
            "implementation": "native"}
    row = lambda quantity, error, cause, passed=False, second="numpy": {
        "level": "step", "first": "keras", "second": second, "quantity": quantity, "passed": passed,
        "stats": {"needed": error}, "cause": cause}
    rows = [row("adam/weights/w", 0.3, "keras-adam-epsilon-hat"), row("adam/weights/b", 0.1, "keras-adam-epsilon-hat"),
            row("sgd/weights/w", 1e-8, "new difference: optimizer"), row("sgd/weights/b", 0.0, "", passed=True),
            row("adam/weights/w", 0.2, "keras: keras-adam-epsilon-hat", second="jax")]
    level = {"name": "step", "summary": [], "rows": rows, "passed": False}
    document = VerifyDocument.model_validate({"spec": spec, "levels": {"3": level}, "passed": False})
    table = builtins_table(Verify(tmp_path, document, "seed-cnn")).frame
    assert table.to_dict("records") == [
        {"level": "3 step", "pair": "keras vs numpy", "component": "optimizer", "cause": "keras-adam-epsilon-hat",
         "size": 0.3, "rows": 2, "worst quantity": "adam/weights/w"},
        {"level": "3 step", "pair": "keras vs numpy", "component": "optimizer", "cause": "new difference: optimizer",
         "size": 1e-8, "rows": 1, "worst quantity": "sgd/weights/w"}]
    catalog = VerifyDocument.model_validate({"spec": {**spec, "implementation": "catalog"}, "levels": {"3": level},
                                             "passed": False})
    assert builtins_table(Verify(tmp_path, catalog, "seed-cnn")) is None


def test_a_native_matrix_gets_the_table_per_cell(tmp_path):
    from experiments.report.inputs import Verify
    from experiments.report.schemas import VerifyDocument
    from experiments.report.verify_tables import builtins_table

    row = {"level": "gradients", "first": "jax", "second": "numpy", "quantity": "dense_0/kernel", "passed": False,
           "stats": {"needed": 0.6}, "cause": "jax-leaky-relu-derivative-at-zero"}
    level = {"name": "gradients", "summary": [], "rows": [row, {**row, "passed": True}], "passed": False}
    cell = {"model": "mlp", "axis": "activation", "entry": "leaky_relu", "levels": {"2": level}, "passed": False}
    document = VerifyDocument.model_validate({"base": "mlp-relu-adam", "matrix": {"mlp-activation-leaky_relu": cell},
                                              "passed": False})
    table = builtins_table(Verify(tmp_path, document, "matrix"))
    assert table.frame.to_dict("records") == [
        {"cell": "mlp-activation-leaky_relu", "level": "2 gradients", "pair": "jax vs numpy", "component": "activation",
         "cause": "jax-leaky-relu-derivative-at-zero", "size": 0.6, "rows": 1, "worst quantity": "dense_0/kernel"}]
    passing = VerifyDocument.model_validate({"base": "mlp-relu-adam", "matrix": {"c": {**cell, "levels": {"2": {
        **level, "rows": [{**row, "passed": True}], "passed": True}}, "passed": True}}, "passed": True})
    assert builtins_table(Verify(tmp_path, passing, "matrix")) is None
