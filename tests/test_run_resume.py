"""`run --resume RUN_DIR` refuses what it cannot resume with one line, exit 2, the folder left as it was."""

import fcntl
import json
import shutil
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.unfinished import MARKER
from tests.cli_helpers import only_run_dir

TINY = ["--set", 'model.hidden=[{units = 8, activation = "relu"}]', "--dataset", "mnist-subset", "--epochs", "1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished numpy run of a tiny MLP; each test resumes a copy of it."""
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "mlp-relu-adam", "--backends", "numpy", "--out", str(out), *TINY]) == 0
    return only_run_dir(out)


def _pending(document: dict) -> dict:
    document["backends"]["numpy"]["status"] = "pending"
    return document


def _edit(change):
    def edit(document: dict) -> dict:
        change(_pending(document))
        return document
    return edit


# (case id, change to results.json, extra arguments, words of the one line)
CASES = [
    ("all-finished", lambda d: d, [], "every backend finished ok; nothing to resume"),
    ("with-epochs", _pending, ["--epochs", "0"], "--epochs cannot be combined with it"),
    ("with-seed", _pending, ["--seed", "0"], "--seed cannot be combined with it"),
    ("with-out", _pending, ["--out", "elsewhere"], "--out cannot be combined with it"),
    ("with-spec", _pending, ["mlp-relu-adam"], "'mlp-relu-adam' cannot be combined with it"),
    ("with-set", _pending, ["--set", "seed=1"], "--set cannot be combined with it"),
    ("other-dataset", _edit(lambda d: d["dataset"].update(sha256={"mnist.csv": "0" * 64})), [], "not the one the run started with"),
    ("sweep-cell", _edit(lambda d: d.update(sweep={"name": "s", "key": "k"})), [], "a sweep cell; rerun the sweep"),
    ("escaping-backend", _edit(lambda d: d["backends"].update({"../../escape": {"status": "pending"}})), [],
     "backend \"../../escape\" is not one of torch, keras, jax, numpy"),
    ("dataset-not-a-table", _edit(lambda d: d.update(dataset=[])), [], "has no dataset record"),
    ("resumed-not-a-list", _edit(lambda d: d.update(resumed=5)), [], "damaged 'resumed' list"),
    ("bad-spec", _edit(lambda d: d["spec"]["training"].update(epochs=-1)), [], "training.epochs: got -1"),
    ("not-json", None, [], "is not valid JSON"),
]


@pytest.mark.parametrize("change, extra, expected", [pytest.param(c, a, e, id=i) for i, c, a, e in CASES])
def test_resume_refuses_with_one_line(finished, tmp_path, monkeypatch, capsys, change, extra, expected):
    run_dir = tmp_path / finished.name
    shutil.copytree(finished, run_dir)
    path = run_dir / "results.json"
    if change is None:
        path.write_text(path.read_text()[:100])
    else:
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--resume", str(run_dir), *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_resume_refuses_a_run_still_in_progress(finished, tmp_path, capsys):
    run_dir = tmp_path / finished.name
    shutil.copytree(finished, run_dir)
    path = run_dir / "results.json"
    path.write_text(json.dumps(_pending(json.loads(path.read_text()))))
    with open(run_dir / MARKER, "w") as held:  # what a live run holds
        fcntl.flock(held, fcntl.LOCK_EX)
        code = main(["run", "--resume", str(run_dir)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines == [f"mnist-parity: error: --resume {run_dir}: the run is still in progress in another process"]


def test_resume_from_inside_the_run_folder_uses_the_store_beside_it(finished, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    run_dir = out / finished.name
    shutil.copytree(finished, run_dir)
    path = run_dir / "results.json"
    path.write_text(json.dumps(_pending(json.loads(path.read_text()))))
    monkeypatch.chdir(run_dir)
    assert main(["run", "--resume", "."]) == 0
    assert (out / "results.sqlite").is_file() and not (run_dir / "results.sqlite").exists()
    assert json.loads(path.read_text())["backends"]["numpy"]["status"] == "ok"


@pytest.mark.parametrize("text", ["[]", '{"backends": []}', "{not json", '{"schema": 1, "spec": {}, "backends": {"numpy": 3}}'],
                         ids=["list", "backends-list", "not-json", "outcome-number"])
def test_a_damaged_leftover_run_does_not_break_later_runs(tmp_path, text):
    """A dead run's results.json that cannot be read is left for a person (marker kept); the next run goes on."""
    out = tmp_path / "runs"
    leftover = out / "20260101-000000-damaged-000000"
    leftover.mkdir(parents=True)
    (leftover / "results.json").write_text(text)
    (leftover / MARKER).touch()
    assert main(["run", "mlp-relu-adam", "--backends", "numpy", "--out", str(out), *TINY]) == 0
    assert (leftover / "results.json").read_text() == text and (leftover / MARKER).exists()
