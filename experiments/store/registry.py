"""Register run directories and bench folders in the store: one row per run and backend (per bench folder, preset and
backend), idempotent, one transaction per run or bench."""

import json
import shlex
import sys
from pathlib import Path

from experiments.errors import UserError
from experiments.store.database import StoreError, write_bench, write_run
from experiments.store.documents import BENCH_FILENAME, RESULTS_FILENAME, VERIFY_FILENAME, read_bench_document, read_run_document
from experiments.store.rows import bench_rows, document_rows

STORE_FILENAME = "results.sqlite"


def store_path(out_dir: Path) -> Path:
    """The store beside the runs: `<out_dir>/results.sqlite`, out_dir being the runs' parent (`--out`)."""
    return Path(out_dir) / STORE_FILENAME


def run_id_for(run_dir: Path, db_path: Path) -> str:
    """A run's key in the store: its directory relative to the store's folder, in POSIX form.

    A plain run or verify directory beside the store is keyed by its name
    (`20261130-105320-mlp-relu-adam-813c4f`, unique because new_run_dir never reuses one); a
    sweep cell under the same `--out` by `sweeps/<name>/cells/<key>`, so cells of different
    sweeps never collide. The key survives moving or copying the whole folder with its store.
    A run outside the store's folder is keyed by its absolute resolved path.
    """
    run_dir, home = Path(run_dir).resolve(), Path(db_path).resolve().parent
    try:
        return run_dir.relative_to(home).as_posix()
    except ValueError:
        return run_dir.as_posix()


def register_run(run_dir: Path, db_path: Path | None = None) -> int:
    """Write one row per backend of the run in run_dir (results.json or verify.json) into the store.

    Args:
        run_dir: a run, verify or sweep-cell directory.
        db_path: the store; default `store_path(run_dir.parent)`. Sweep cells live at
            `<out>/sweeps/<name>/cells/<key>/`, so pass `store_path(out)` for them.

    Returns:
        The number of rows written. Registering again replaces the run's rows (same count).
    """
    run_dir = Path(run_dir).resolve()
    db_path = Path(db_path) if db_path is not None else store_path(run_dir.parent)
    document = read_run_document(run_dir)
    run_id = run_id_for(run_dir, db_path)
    return write_run(db_path, run_id, document_rows(document, run_id, run_dir))


def register_bench(bench_dir: Path, db_path: Path | None = None) -> int:
    """Write one row per preset and backend of the bench.json in bench_dir into the store's bench table.

    Args:
        bench_dir: a `mnist-parity bench` folder (its --out).
        db_path: the store; default `store_path(bench_dir.parent)`, the store of the runs beside the bench folder
            (the default bench folder is `runs/bench-<time>`, beside the runs of `runs/`).

    Returns:
        The number of rows written. Registering again replaces the bench folder's rows (same count).
    """
    bench_dir = Path(bench_dir).resolve()
    db_path = Path(db_path) if db_path is not None else store_path(bench_dir.parent)
    document = read_bench_document(bench_dir)
    return write_bench(db_path, run_id_for(bench_dir, db_path), bench_rows(document, run_id_for(bench_dir, db_path), bench_dir))


def _documents_under(root: Path, names: tuple[str, ...]) -> list[Path]:
    root = Path(root)
    found = {path.parent for name in names for path in root.rglob(name)
             if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts[:-1])}
    return sorted(found)


def find_bench_dirs(root: Path) -> list[Path]:
    """Every folder under root (root included) holding a bench.json, sorted; folders starting with a dot skipped."""
    return _documents_under(root, (BENCH_FILENAME,))


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under root (root included) holding a results.json or verify.json, sorted; folders
    whose name starts with a dot (a sweep's `.partial-*` cells in training or left by a kill) are skipped."""
    return _documents_under(root, (RESULTS_FILENAME, VERIFY_FILENAME))


def register_tree(root: Path, db_path: Path | None = None) -> int:
    """Register every run directory and bench folder under root (e.g. to backfill a store); default store
    `store_path(root)`.

    Each run is its own transaction. Unreadable runs do not stop the others: once every
    readable run is registered, one UserError names the ones that were skipped.

    Returns:
        The number of rows written (runs' and benches').
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder of runs")
    db_path = Path(db_path) if db_path is not None else store_path(root)
    written, skipped = 0, []
    found = [(register_run, run_dir) for run_dir in find_run_dirs(root)]
    found += [(register_bench, bench_dir) for bench_dir in find_bench_dirs(root)]
    for register, folder in found:
        try:
            written += register(folder, db_path)
        except StoreError:  # the store itself is unusable: no other run would register either
            raise
        except UserError as error:
            skipped.append(str(error))
    if skipped:
        raise UserError(f"registered {written} rows in {db_path}; skipped {len(skipped)} unreadable run(s) or bench(es): "
                        f"{' | '.join(skipped)}")
    return written


def registration_failed_message(run_dir: Path, store: Path, error: Exception) -> str:
    """One line for a run whose registration failed after it trained: where its document was kept, the store, why,
    and the command that registers it once the store is fixed (or moved aside: a new one is then created)."""
    run_dir, store = Path(run_dir), Path(store)
    document = next((run_dir / name for name in (RESULTS_FILENAME, VERIFY_FILENAME, BENCH_FILENAME) if (run_dir / name).is_file()),
                    run_dir / RESULTS_FILENAME)
    reason = " ".join(str(error).split())  # one line
    reason = reason.removeprefix(f"results store {store}: ")  # StoreError names the store, as this line already does
    paths = ", ".join(json.dumps(str(path.absolute())) for path in (run_dir, store))  # a JSON string is a Python literal
    register = "register_bench" if document.name == BENCH_FILENAME else "register_run"
    code = f"from experiments.store import {register}; {register}({paths})"
    return (f"{document} kept but not registered in {store}: {reason}; once the store is fixed or moved aside, "
            f"register it with: {shlex.quote(sys.executable)} -c {shlex.quote(code)}")
