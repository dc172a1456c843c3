"""Bad or hostile input to run, verify, sweep and defaults: one line, exit 2, nothing written anywhere.

Each case ran to a late failure, a traceback, a silent default or a wrong verdict before these checks existed
(issue 10's findings); each names the words its one line must carry.
"""

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from experiments.cli import main
from tests.cli_helpers import mnist_parity
from tests.test_neutral_imports import FRAMEWORKS

PIXELS = 28 * 28


def _header_only_csv(folder: Path) -> str:
    path = folder / "header.csv"
    path.write_text("label," + ",".join(f"pixel{i}" for i in range(PIXELS)) + "\n")
    return f"csv:{path}"


def _idx(magic: int, dims: tuple[int, ...]) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + bytes(int(np.prod(dims)))


def _zero_image_idx(folder: Path) -> str:
    """The four IDX files of a dataset with no images at all (valid headers, 0 items)."""
    folder = folder / "idx"
    folder.mkdir()
    for stem in ("train", "t10k"):
        (folder / f"{stem}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(0x0803, (0, 28, 28))))
        (folder / f"{stem}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(0x0801, (0,))))
    return f"idx:{folder}"


def _sweep_with_an_untrainable_cell(folder: Path) -> str:
    """A sweep whose second cell's batch is larger than the training part, with drop_last."""
    path = folder / "big-batches.toml"
    path.write_text('name = "big-batches"\nbase = "mlp-relu-adam"\nbackends = ["numpy"]\n[set]\n"data.dataset" = "mnist-subset"\n'
                    '"training.drop_last" = true\n[grid."training.batch_size"]\nsmall = 64\nhuge = 100000\n')
    return str(path)


def _a_file(folder: Path) -> str:
    path = folder / "afile"
    path.write_text("not a folder\n")
    return str(path / "sub")


# (case id, command arguments with {data} / {file} placeholders, words the one line must hold)
CASES = [
    ("run-empty-backends", ["run", "mlp-relu-adam", "--backends", ""], "--backends: no backend named"),
    ("run-batch-over-samples-drop-last", ["run", "mlp-relu-adam", "--set", "training.drop_last=true", "--set",
                                          "training.batch_size=100000"], "training.batch_size: 100000 is more than the 3,600"),
    ("run-header-only-csv", ["run", "mlp-relu-adam", "--dataset", "{csv}"], "gives 0 train images"),
    ("run-zero-image-idx", ["run", "mlp-relu-adam", "--dataset", "{idx}"], "gives 0 train images"),
    ("run-out-below-a-file", ["run", "mlp-relu-adam", "--out", "{file}"], "afile is not a folder; give a folder you can write to"),
    ("run-out-in-proc", ["run", "mlp-relu-adam", "--out", "/proc/mnist-parity-test"], "cannot create files in /proc"),
    ("run-missing-data-dir", ["run", "mlp-relu-adam", "--data-dir", "/nonexistent/mnist"], "--data-dir /nonexistent/mnist: no such"),
    ("run-no-spec", ["run"], "name a preset or a .toml spec, or give --resume"),
    ("run-zero-threads", ["run", "mlp-relu-adam", "--threads", "0"], "--threads: 0; must be at least 1"),
    ("run-resume-missing", ["run", "--resume", "{data}/nothing-here"], "no results.json there"),
    ("verify-one-seed", ["verify", "mlp-relu-adam", "--levels", "5", "--seeds", "1"], "--seeds: 1; must be at least 2"),
    ("verify-margin-nan", ["verify", "mlp-relu-adam", "--margin", "nan"], "--margin: nan; must be a finite number above 0"),
    ("verify-margin-negative", ["verify", "mlp-relu-adam", "--margin", "-1"], "--margin: -1.0; must be a finite number above 0"),
    ("verify-margin-inf", ["verify", "mlp-relu-adam", "--margin", "inf"], "--margin: inf; must be a finite number above 0"),
    ("verify-empty-levels", ["verify", "mlp-relu-adam", "--levels", ""], "--levels: '' names no level"),
    ("verify-cells-without-matrix", ["verify", "mlp-relu-adam", "--cells", "cnn-*"], "--cells 'cnn-*': only with --matrix"),
    ("verify-empty-backends", ["verify", "mlp-relu-adam", "--backends", ""], "--backends: no backend named"),
    ("verify-batch-over-samples", ["verify", "mlp-relu-adam", "--levels", "1", "--set", "training.batch_size=100000"],
     "levels 1-4 probe whole batches"),
    ("verify-out-below-a-file", ["verify", "mlp-relu-adam", "--levels", "1", "--out", "{file}"], "is not a folder"),
    ("sweep-out-below-a-file", ["sweep", "study-activations", "--out", "{file}"], "is not a folder"),
    ("sweep-untrainable-cell", ["sweep", "{sweep}"], "(training.batch_size=huge, seed=0, backend=numpy): training.batch_size: 100000"),
    ("defaults-unknown-entry", ["defaults", "foo"], "defaults: unknown entry foo; known: adadelta"),
]


@pytest.mark.parametrize("args, expected", [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_rejected_with_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, args, expected):
    """In-process (the command's own main, as the console script calls it), from an empty working folder."""
    data = tmp_path / "data"
    data.mkdir()
    places = {"{csv}": lambda: _header_only_csv(data), "{idx}": lambda: _zero_image_idx(data), "{file}": lambda: _a_file(data),
              "{data}": lambda: str(data), "{sweep}": lambda: _sweep_with_an_untrainable_cell(data)}
    filled = []
    for arg in args:
        for placeholder, make in places.items():
            if placeholder in arg:
                arg = arg.replace(placeholder, make())
        filled.append(arg)
    if filled[0] in ("run", "verify", "sweep") and "--out" not in filled and "--resume" not in filled:
        filled += ["--out", str(tmp_path / "out")]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_PARITY_DATA", "")
    code = main(filled)
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert expected in lines[0], lines[0]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p != cwd)
    assert after == before, "written: " + ", ".join(map(str, set(after) - set(before)))


def test_the_installed_command_gives_the_same_one_line(tmp_path):
    """One case through a real process, as a user runs it: exit status and stderr as the shell sees them."""
    result = mnist_parity("verify", "mlp-relu-adam", "--margin", "nan", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "mnist-parity: error: --margin: nan; must be a finite number above 0"]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option, path", [("--out", "/proc/a\nb"), ("--data-dir", "/nonexistent/a\nb")], ids=["out", "data-dir"])
def test_a_newline_in_a_path_stays_one_line(tmp_path, monkeypatch, capsys, option, path):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "mlp-relu-adam", option, path, *(["--out", str(tmp_path / "out")] if option != "--out" else [])])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "a\\nb" in lines[0], lines


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can create files in, root included (the immutable attribute); skipped where it cannot be set."""
    folder = tmp_path / "runs"
    folder.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system that supports it)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("command", [["run", "mlp-relu-adam"], ["verify", "mlp-relu-adam", "--levels", "1"], ["sweep", "study-activations"]],
                         ids=["run", "verify", "sweep"])
def test_a_read_only_out_is_one_line(read_only_folder, monkeypatch, capsys, command):
    monkeypatch.chdir(read_only_folder.parent)
    code = main([*command, "--out", str(read_only_folder)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"cannot create files in {read_only_folder}" in lines[0], lines
    assert not any(read_only_folder.iterdir())


def test_an_unknown_defaults_entry_is_refused_before_any_framework_is_imported(tmp_path):
    """Every process the command starts records any framework import it attempts (a sitecustomize on PYTHONPATH)."""
    log = tmp_path / "framework-imports.log"
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.abc, os, sys\n"
        "class Watch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {set(FRAMEWORKS)!r}:\n"
        "            open(os.environ['FRAMEWORK_IMPORT_LOG'], 'a').write(name + '\\n')\n"
        "sys.meta_path.insert(0, Watch())\n")
    result = mnist_parity("defaults", "foo", env={"PYTHONPATH": str(tmp_path), "FRAMEWORK_IMPORT_LOG": str(log)}, cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not log.exists(), "frameworks imported: " + log.read_text()
