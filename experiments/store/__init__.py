"""The SQLite results store: every run, verify and sweep cell as one row per backend, and every bench as one row per
preset and backend, for reports to query."""

from experiments.store.database import StoreError, check_store
from experiments.store.query import load_bench, load_runs
from experiments.store.registry import (STORE_FILENAME, find_bench_dirs, find_run_dirs, register_bench, register_run,
                                        register_tree, registration_failed_message, run_id_for, store_path)

__all__ = ["STORE_FILENAME", "StoreError", "check_store", "find_bench_dirs", "find_run_dirs", "load_bench", "load_runs",
           "register_bench", "register_run", "register_tree", "registration_failed_message", "run_id_for", "store_path"]
