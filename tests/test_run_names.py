"""A spec's name is free text; the run folder made from it is always one safe component directly inside --out."""

import json
import string

import pytest
from hypothesis import given, settings, strategies as st

from experiments.results import NAME_LIMIT, folder_name
from tests.cli_helpers import mnist_parity, only_run_dir

SAFE_CHARACTERS = set(string.ascii_letters + string.digits + "_.-")
HOSTILE_NAMES = {
    "parent-escape": "a/../../../outside",
    "dot-dot": "..",
    "slash": "a/b/c",
    "backslash": "a\\..\\b",
    "nul": "a\x00b",
    "leading-dot": ".hidden",
    "very-long": "x" * 5000,
    "script": "<script>alert(1)</script>",
    "absolute": "/etc/passwd",
    "only-punctuation": "/../",
}


def _toml_string(text: str) -> str:
    """text as a TOML basic string, every character escaped (\\u0000 included)."""
    return '"' + "".join(f"\\U{ord(c):08x}" for c in text) + '"'


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_hostile_spec_name_writes_only_inside_out(tmp_path, name):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'base = "mlp-relu-adam"\nname = {_toml_string(name)}\n')
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    result = mnist_parity("run", str(spec), "--backends", "numpy", "--epochs", "1", "--dataset", "mnist-subset", "--out", str(out),
                          "--set", 'model.hidden=[{units = 8, activation = "relu"}]', cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = only_run_dir(out)
    assert run_dir.parent == out and set(run_dir.name) <= SAFE_CHARACTERS and not run_dir.name.startswith(".")
    assert json.loads((run_dir / "results.json").read_text())["spec"]["name"] == name  # the record keeps the real name
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")}
    assert written == {"spec.toml", "out", "cwd"} and not any(cwd.iterdir())


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(min_size=0, max_size=400))
def test_folder_name_is_one_safe_component(name):
    folder = folder_name(name)
    assert 1 <= len(folder) <= NAME_LIMIT
    assert set(folder) <= SAFE_CHARACTERS
    assert folder[0] not in ".-" and ".." not in folder


@pytest.mark.parametrize("name", [HOSTILE_NAMES["parent-escape"], HOSTILE_NAMES["nul"]], ids=["parent-escape", "nul"])
def test_hostile_spec_name_in_verify_writes_only_inside_out(tmp_path, name):
    """verify's probes name their files after the cell: never after the raw spec name."""
    spec = tmp_path / "spec.toml"
    spec.write_text(f'base = "mlp-relu-adam"\nname = {_toml_string(name)}\n')
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    result = mnist_parity("verify", str(spec), "--levels", "1-2", "--backends", "jax", "--dataset", "mnist-subset", "--out", str(out),
                          "--set", 'model.hidden=[{units = 8, activation = "relu"}]', cwd=cwd,
                          env={"TMPDIR": str(tmp_path / "system-tmp")})
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr[-2000:]
    run_dir = only_run_dir(out)
    assert json.loads((run_dir / "verify.json").read_text())["levels"]["1"]["rows"], "level 1 compared nothing"
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")}
    assert written == {"spec.toml", "out", "cwd"} and not any(cwd.iterdir())
