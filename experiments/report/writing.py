"""Write a report directory all at once: everything goes into a sibling temporary folder that is renamed into place."""

import os
import secrets
import shutil
from pathlib import Path

from experiments.errors import UserError
from experiments.report.markdown import FIGURE_DIR
from experiments.store.paths import cannot_create_in

REPORT_FILES = ("report.md", "report.html")
MARKER = ".mnist-parity-report"
MARKER_TEXT = (b"This folder was written by `mnist-parity report`; writing a report here again replaces the whole folder.\n"
               b"Keep nothing else in it.\n")


def _report_only(out: Path) -> bool:
    """out holds nothing but what a report writes: report.md, report.html, figures/*.png and the marker."""
    for path in out.iterdir():
        if path.name in (*REPORT_FILES, MARKER):
            if path.is_symlink() or not path.is_file():
                return False
        elif path.name == FIGURE_DIR and path.is_dir() and not path.is_symlink():
            if any(f.suffix != ".png" or f.is_symlink() or not f.is_file() for f in path.iterdir()):
                return False
        else:
            return False
    return True


def check_out(out: Path) -> None:
    """UserError unless out is absent, empty, or an earlier report (which is replaced whole), in a folder where
    files can be created.

    An earlier report carries the marker file written into every report folder; a folder without it
    counts as a report only when it holds nothing but a report's files. Anything else is someone's
    folder, and replacing it would delete their files.
    """
    if out.exists():
        if not out.is_dir():
            raise UserError(f"--out: {out} exists and is not a directory; choose another --out")
        if any(out.iterdir()) and not (out / MARKER).is_file() and not _report_only(out):
            raise UserError(f"--out: {out} exists and is not a report (no {MARKER} marker, and it holds other files); "
                            "choose another --out")
    problem = cannot_create_in(out.parent)  # where the report is staged before it is renamed to out
    if problem:
        raise UserError(f"--out: cannot write a report at {out}: {problem}; choose another --out")


def write_directory(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Write files (relative path -> bytes) and the marker as the directory out; an earlier report there is replaced.

    Nothing appears at out until every file is written: the files go into `.<name>.tmp-*` beside
    out, which is renamed to out at the end (the earlier report is moved aside first and then
    deleted). A failure removes the temporary folder and leaves out as it was.
    """
    out = Path(out)
    check_out(out)
    files = {**files, MARKER: MARKER_TEXT}
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


__all__ = ["FIGURE_DIR", "MARKER", "REPORT_FILES", "check_out", "write_directory"]
