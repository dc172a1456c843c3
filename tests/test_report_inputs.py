"""Hostile input to `mnist-parity report`: one line naming what is wrong and what is allowed, exit 2, no traceback,
nothing written. A results.json the report refuses, `register_run` (used by `run`) refuses with the same words."""

import argparse
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from experiments.commands.report import report_command
from experiments.errors import UserError
from experiments.report import build_report
from experiments.store import register_run, store_path
from tests.cli_helpers import mnist_parity
from tests.test_report import _empty_dir, activation_sweep, fake_defaults, run_dir


def _edited(change):
    """A maker of a run folder whose results.json, written by the project's own writer, is then changed by change(doc)."""
    def make(root: Path) -> Path:
        path = run_dir(root, "bad-run")
        document = json.loads((path / "results.json").read_text())
        change(document)
        (path / "results.json").write_text(json.dumps(document))
        return path
    return make


def _set(*keys_and_value):
    *keys, last, value = keys_and_value

    def change(document):
        for key in keys:
            document = document[key]
        document[last] = value
    return change


def _append_to_history(document):
    document["backends"]["torch"]["history"].append("epoch 3")


# (id, change to a valid results.json, what the one line must say)
BAD_DOCUMENTS = [
    ("schema-99", _set("schema", 99), ["'schema' is 99", "reads results.json schema version 1 only",
                                       "upgrade mnist-parity"]),
    ("schema-missing", lambda d: d.pop("schema"), ["'schema' is missing", "schema version 1 only"]),
    ("schema-a-string", _set("schema", "1"), ["'schema' is \"1\"", "schema version 1 only"]),
    ("schema-true", _set("schema", True), ["'schema' is true", "schema version 1 only"]),
    ("accuracy-a-word", _set("backends", "torch", "metrics", "test_accuracy", "high"),
     ["backends.torch.metrics.test_accuracy is \"high\"", "must be a number or null"]),
    ("accuracy-a-list", _set("backends", "torch", "metrics", "test_accuracy", [0.9]),
     ["backends.torch.metrics.test_accuracy is [0.9]", "must be a number or null"]),
    ("accuracy-a-boolean", _set("backends", "numpy", "metrics", "test_accuracy", True),
     ["backends.numpy.metrics.test_accuracy is true", "must be a number or null"]),
    ("loss-an-object", _set("backends", "jax", "metrics", "test_loss", {"value": 0.3}),
     ["backends.jax.metrics.test_loss is {\"value\": 0.3}", "must be a number or null"]),
    ("metrics-a-list", _set("backends", "torch", "metrics", [0.9]),
     ["backends.torch.metrics is [0.9]", "must be an object of numbers"]),
    ("history-entry-a-string", _append_to_history,
     ["backends.torch.history[2] is \"epoch 3\"", "an object with an integer 'epoch'"]),
    ("history-accuracy-a-string", _set("backends", "torch", "history", 1, "val_accuracy", "0.9"),
     ["backends.torch.history[1].val_accuracy is \"0.9\"", "must be a number or null"]),
    ("history-without-epoch", lambda d: d["backends"]["torch"]["history"][0].pop("epoch"),
     ["backends.torch.history[0] is", "an integer 'epoch'"]),
    ("history-an-object", _set("backends", "torch", "history", {"1": 0.9}),
     ["backends.torch.history is {\"1\": 0.9}", "must be a list of per-epoch objects"]),
    ("backends-missing", lambda d: d.pop("backends"), ["'backends' is missing, expected an object"]),
    ("backends-a-list", lambda d: d.update(backends=[d["backends"]["torch"]]), ["'backends' is a list, expected an object"]),
    ("backend-without-status", lambda d: d["backends"]["torch"].pop("status"), ["backend 'torch' has no status"]),
]


def _write(text: str):
    def make(root: Path) -> Path:
        path = run_dir(root, "bad-run")
        (path / "results.json").write_text(text)
        return path
    return make


def _truncated(root: Path) -> Path:
    path = run_dir(root, "bad-run")
    text = (path / "results.json").read_text()
    (path / "results.json").write_text(text[: len(text) // 2])
    return path


def _without_results(root: Path) -> Path:
    path = run_dir(root, "bad-run")
    (path / "results.json").unlink()  # history.csv is still there
    return path


def _a_file(root: Path) -> Path:
    (root / "results.json").write_text("{}")
    return root / "results.json"


def _sweep_with_a_bad_cell(root: Path) -> Path:
    sweep = activation_sweep(root)
    key = json.loads((sweep / "sweep.json").read_text())["cells"][0]["key"]
    cell = sweep / "cells" / key / "results.json"
    document = json.loads(cell.read_text())
    next(iter(document["backends"].values()))["metrics"]["test_accuracy"] = "high"
    cell.write_text(json.dumps(document))
    return sweep


# (id, maker of the bad input folder, what the one line must say)
BAD_FOLDERS = [
    ("not-json", _truncated, ["results.json is not valid JSON"]),
    ("a-json-list", _write("[1, 2]"), ["results.json: expected a JSON object, found list"]),
    ("empty-file", _write(""), ["results.json is not valid JSON"]),
    ("folder-without-results", _without_results, ["is not a run, sweep or verify directory", "holds no results.json"]),
    ("empty-folder", _empty_dir, ["is not a run, sweep or verify directory"]),
    ("path-does-not-exist", lambda root: root / "nowhere", ["nowhere is not a directory"]),
    ("path-is-a-file", _a_file, ["results.json is not a directory"]),
    ("sweep-cell-with-a-word-for-accuracy", _sweep_with_a_bad_cell,
     ["metrics.test_accuracy is \"high\"", "must be a number or null", "moves a damaged cell aside"]),
    *((name, _edited(change), expected) for name, change, expected in BAD_DOCUMENTS),
]


def _tree(root: Path) -> dict[Path, bytes | None]:
    return {path: path.read_bytes() if path.is_file() else None for path in sorted(root.rglob("*"))}


def _refused_in_process(paths: list[Path], out: Path, expected: list[str]) -> str:
    """The report command's UserError, once it is checked: exit code 2, one line naming every expected phrase."""
    with pytest.raises(UserError) as error:
        report_command(argparse.Namespace(paths=paths, out=out), Console(file=io.StringIO()))
    message = str(error.value)
    assert error.value.exit_code == 2 and "\n" not in message
    for phrase in expected:
        assert phrase in message, message
    return message


def _refused_by_the_cli(args: list[str], expected: list[str]) -> str:
    """The real command's one line, once it is checked: exit 2, one line on stderr naming every expected phrase."""
    result = mnist_parity(*args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and not result.stdout.strip()
    for phrase in expected:
        assert phrase in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("make, expected", [case[1:] for case in BAD_FOLDERS], ids=[case[0] for case in BAD_FOLDERS])
def test_a_bad_report_input_is_one_line_exit_2_and_nothing_written(tmp_path, make, expected):
    good = run_dir(tmp_path / "inputs", "good-run")
    bad = make(tmp_path / "inputs")
    before = _tree(tmp_path)
    message = _refused_in_process([good, bad], tmp_path / "reports" / "r", expected)
    assert str(bad) in message  # the file or folder at fault is named
    assert _tree(tmp_path) == before  # no report folder, nothing beside the inputs


def test_the_same_inputs_when_good_give_a_report(tmp_path):
    """The control for the cases above: the same two inputs, both as written, give a report."""
    good, other = run_dir(tmp_path / "inputs", "good-run"), run_dir(tmp_path / "inputs", "bad-run")
    written = build_report([good, other], tmp_path / "reports" / "r", fake_defaults)
    assert written.html.is_file() and written.markdown.is_file()


def _out_a_file(root: Path) -> Path:
    (root / "taken").write_text("my notes")
    return root / "taken"


def _out_under_a_file(root: Path) -> Path:
    (root / "taken").write_text("my notes")
    return root / "taken" / "report"


def _out_someones_folder(root: Path) -> Path:
    (root / "thesis").mkdir()
    (root / "thesis" / "chapter.tex").write_text("keep me")
    return root / "thesis"


BAD_OUTS = [
    ("an-existing-file", _out_a_file, ["--out:", "exists and is not a directory", "choose another --out"]),
    ("under-a-file", _out_under_a_file, ["--out: cannot write a report at", "taken is not a folder", "choose another --out"]),
    ("a-folder-that-is-not-a-report", _out_someones_folder, ["--out:", "is not a report", "choose another --out"]),
]
if Path("/proc/self").is_dir():
    BAD_OUTS += [
        ("inside-proc", lambda root: Path("/proc/mnist-parity-report"),
         ["--out: cannot write a report at /proc/mnist-parity-report", "cannot create files in /proc", "choose another --out"]),
        ("deep-inside-proc", lambda root: Path("/proc/self/reports/r"), ["cannot create files in /proc/self"]),
    ]


@pytest.mark.parametrize("make, expected", [case[1:] for case in BAD_OUTS], ids=[case[0] for case in BAD_OUTS])
def test_a_bad_out_is_one_line_exit_2_and_nothing_written(tmp_path, make, expected, monkeypatch):
    """Refused before any work: the framework defaults are never read."""
    good = run_dir(tmp_path / "inputs", "good-run")
    out = make(tmp_path)
    before = _tree(tmp_path)
    monkeypatch.setattr("experiments.framework_defaults.framework_values", lambda backend: pytest.fail("read defaults"))
    _refused_in_process([good], out, expected)
    assert _tree(tmp_path) == before


CLI_CASES = [case for case in BAD_FOLDERS if case[0] in ("schema-99", "accuracy-a-word", "history-entry-a-string", "not-json",
                                                         "path-does-not-exist")]


@pytest.mark.parametrize("make, expected", [case[1:] for case in CLI_CASES], ids=[case[0] for case in CLI_CASES])
def test_the_command_prints_one_line_and_exits_2(tmp_path, make, expected):
    """The real command, for one case of each kind: the line on stderr, exit status 2, no traceback, nothing written."""
    bad = make(tmp_path / "inputs")
    before = _tree(tmp_path)
    _refused_by_the_cli(["report", str(bad), "--out", str(tmp_path / "reports" / "r")], expected)
    assert _tree(tmp_path) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_the_command_refuses_an_out_inside_proc(tmp_path):
    good = run_dir(tmp_path / "inputs", "good-run")
    _refused_by_the_cli(["report", str(good), "--out", "/proc/mnist-parity-report"], ["cannot create files in /proc"])


@pytest.mark.parametrize("change, expected", [case[1:] for case in BAD_DOCUMENTS], ids=[case[0] for case in BAD_DOCUMENTS])
def test_register_run_refuses_the_same_documents_with_the_same_line(tmp_path, change, expected):
    """`run` registers its results.json with register_run: a document the report refuses is refused there too, with
    the same words (the report only adds its "report: " prefix), and no store is created."""
    bad = _edited(change)(tmp_path)
    with pytest.raises(UserError) as error:
        register_run(bad)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{bad / 'results.json'}: ")
    for phrase in expected:
        assert phrase in message
    assert not store_path(tmp_path).exists()
    assert _refused_in_process([bad], tmp_path / "reports" / "r", expected) == f"report: {message}"
