"""The store's one table, `runs`: one row per run directory and backend, flat where a report filters, JSON text where nested."""

SCHEMA_VERSION = 3  # kept in PRAGMA user_version; a store with a higher number was written by a newer mnist-parity
# Versions: 1, the first; 2, final_val_accuracy is the last epoch's value (NULL when missing or not finite), where
# version 1 held the last finite one; 3, the implementation column (catalog or native). An older store is upgraded in place when it is opened (experiments.store.upgrade).

# Column name -> SQLite declaration. Columns ending in _json hold JSON text (load_runs decodes them).
COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",  # the run directory relative to the store's folder (see registry.run_id_for)
    "backend": "TEXT NOT NULL",
    "run_dir": "TEXT NOT NULL",  # absolute, resolved
    "kind": "TEXT NOT NULL CHECK (kind IN ('run', 'verify', 'sweep-cell'))",
    "sweep": "TEXT",  # sweep name, for sweep cells
    "cell_key": "TEXT",
    "factors_json": "TEXT",  # {spec field: value} of a sweep cell, in the grid's order
    "created": "TEXT",  # ISO 8601 UTC, when the run wrote its document
    "registered": "TEXT",  # ISO 8601 UTC, when this row was last written
    "command": "TEXT",  # the command line, shell-quoted
    "spec_name": "TEXT",  # the preset or spec name (a verify --matrix: its base)
    "spec_hash": "TEXT",
    "spec_json": "TEXT",
    "dataset": "TEXT",  # the dataset actually used, e.g. "mnist-subset"
    "dataset_sha256_json": "TEXT",  # {file name: SHA-256} of every file read
    "split_train": "INTEGER",
    "split_validation": "INTEGER",
    "split_test": "INTEGER",
    "dtype": "TEXT",
    "seed": "INTEGER",
    "epochs": "INTEGER",  # requested by the spec
    "batch_size": "INTEGER",
    "model_kind": "TEXT",
    "optimizer": "TEXT",
    "loss": "TEXT",
    "initialisation": "TEXT",
    "implementation": "TEXT",  # "catalog" (the suite's formulas) or "native" (each framework's own built-ins)
    "status": "TEXT NOT NULL",  # "ok" or "failed"; a stopped run: "interrupted" (in training) and "pending" (not started)
    "reason": "TEXT",
    "test_accuracy": "REAL",
    "test_loss": "REAL",
    "best_val_accuracy": "REAL",
    "best_val_epoch": "INTEGER",  # first epoch reaching best_val_accuracy
    "final_val_accuracy": "REAL",  # the last epoch's; NULL when it has none or a non-finite one
    "epochs_run": "INTEGER",  # epochs in the history
    "train_time_s": "REAL",
    "samples_per_s": "REAL",
    "steady_samples_per_s": "REAL",
    "parameter_count": "INTEGER",
    "versions_json": "TEXT",  # {framework: version} the backend reported, in its order
    "settings_json": "TEXT",  # threads, determinism flags, device, dtype, in the backend's order
    "python": "TEXT",
    "platform": "TEXT",
    "cpu": "TEXT",
    "cpu_count": "INTEGER",
    "gpu": "TEXT",
    "packages_json": "TEXT",
    "project_commit": "TEXT",
    "parity_passed": "INTEGER",  # verify runs: 1 when every comparison involving this backend passed
    "parity_json": "TEXT",  # verify runs: this backend's per-level lines, growth and level-5 verdicts
}
JSON_COLUMNS = tuple(name for name in COLUMNS if name.endswith("_json"))

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS runs (\n    id INTEGER PRIMARY KEY,\n"
    + "".join(f"    {name} {declaration},\n" for name, declaration in COLUMNS.items())
    + "    UNIQUE (run_id, backend)\n)"
)
CREATE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs (sweep)",
    "CREATE INDEX IF NOT EXISTS runs_by_run_dir ON runs (run_dir)",
)

_KEYS = [name for name in COLUMNS if name not in ("run_id", "backend")]
UPSERT = (
    f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})\n"
    f"ON CONFLICT (run_id, backend) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in _KEYS)}"
)
