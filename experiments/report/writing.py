"""Write a report directory all at once: everything goes into a sibling temporary folder that is renamed into place."""

import os
import secrets
import shutil
from pathlib import Path

from experiments.errors import UserError
from experiments.report.markdown import FIGURE_DIR

REPORT_FILES = ("report.md", "report.html")


def check_out(out: Path) -> None:
    """UserError unless out is absent, empty, or an earlier report (which is replaced whole)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a directory; choose another --out")
    if any(out.iterdir()) and not any((out / name).is_file() for name in REPORT_FILES):
        raise UserError(f"--out: {out} is a non-empty directory that holds no report; choose another --out")


def write_directory(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Write files (relative path -> bytes) as the directory out; an earlier report there is replaced.

    Nothing appears at out until every file is written: the files go into `.<name>.tmp-*` beside
    out, which is renamed to out at the end (the earlier report is moved aside first and then
    deleted). A failure removes the temporary folder and leaves out as it was.
    """
    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    staging = out.parent / f".{out.name}.tmp-{tag}"
    staging.mkdir()
    old = None
    try:
        for relative, data in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if out.exists():
            old = out.parent / f".{out.name}.old-{tag}"
            os.rename(out, old)
        os.rename(staging, out)
    except BaseException:
        if old is not None and not out.exists():
            os.rename(old, out)
            old = None
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return [out / relative for relative in files]


__all__ = ["FIGURE_DIR", "REPORT_FILES", "check_out", "write_directory"]
