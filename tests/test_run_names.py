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


def _run_named(tmp_path, name: str, *command: str):
    """command on a spec whose name is `name`, from an empty working folder, with its own system temp folder; returns
    the finished process and the single folder made under --out, after checking nothing was written elsewhere."""
    spec = tmp_path / "spec.toml"
    spec.write_text(f'base = "mlp-relu-adam"\nname = {_toml_string(name)}\n')
    out, cwd, system_tmp = tmp_path / "out", tmp_path / "cwd", tmp_path / "system-tmp"
    cwd.mkdir()
    system_tmp.mkdir()
    result = mnist_parity(*command[:1], str(spec), *command[1:], "--dataset", "mnist-subset", "--out", str(out),
                          "--set", 'model.hidden=[{units = 8, activation = "relu"}]', cwd=cwd, env={"TMPDIR": str(system_tmp)})
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")}
    assert written == {"spec.toml", "out", "cwd", "system-tmp"} and not any(cwd.iterdir()) and not any(system_tmp.iterdir())
    return result, only_run_dir(out)


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_hostile_spec_name_writes_only_inside_out(tmp_path, name):
    result, run_dir = _run_named(tmp_path, name, "run", "--backends", "numpy", "--epochs", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert run_dir.parent == tmp_path / "out" and set(run_dir.name) <= SAFE_CHARACTERS and not run_dir.name.startswith(".")
    assert json.loads((run_dir / "results.json").read_text())["spec"]["name"] == name  # the record keeps the real name


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
    result, run_dir = _run_named(tmp_path, name, "verify", "--levels", "1-2", "--backends", "jax")
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert json.loads((run_dir / "verify.json").read_text())["levels"]["1"]["rows"], "level 1 compared nothing"
