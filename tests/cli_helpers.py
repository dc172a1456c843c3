"""Run the mnist-parity command in a subprocess, as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path


def mnist_parity(*args: str, env: dict | None = None, timeout: int = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m experiments ARGS` with the given extra environment (in cwd, default the current folder)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "experiments", *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd
    )


def only_run_dir(parent: Path) -> Path:
    runs = [p for p in Path(parent).iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def read_results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())
