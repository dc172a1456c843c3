"""The store's tables: `runs`, one row per run directory and backend, and `bench`, one row per bench folder, preset and
backend; flat where a report filters, JSON text where nested."""

SCHEMA_VERSION = 4  # kept in PRAGMA user_version; a store with a higher number was written by a newer mnist-parity
# Versions: 1, the first; 2, final_val_accuracy is the last epoch's value (NULL when missing or not finite), where
# version 1 held the last finite one; 3, the implementation column (catalog or native); 4, the bench table and the
# runs' load_json column. An older store is upgraded in place when it is opened (experiments.store.upgrade).

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
    "load_json": "TEXT",  # the cores other processes kept busy while it trained (experiments.load.LoadMeter); NULL: not measured
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


# The bench table: one row per bench folder (`mnist-parity bench --out`), preset and backend, from bench.json. The
# throughput figures are bench.json's own (experiments.bench.results.BackendBench.summary); the rest is provenance.
BENCH_COLUMNS: dict[str, str] = {
    "bench_id": "TEXT NOT NULL",  # the bench folder relative to the store's folder (see registry.run_id_for)
    "preset": "TEXT NOT NULL",  # the spec's name
    "backend": "TEXT NOT NULL",
    "bench_dir": "TEXT NOT NULL",  # absolute, resolved
    "created": "TEXT",  # ISO 8601 UTC, when the bench wrote bench.json
    "registered": "TEXT",
    "command": "TEXT",
    "dataset": "TEXT",
    "spec_hash": "TEXT",
    "spec_json": "TEXT",
    "dtype": "TEXT",
    "threads": "INTEGER",  # threads per framework process (--threads)
    "pairs": "INTEGER",  # timed (harness, reference) pairs
    "steps_per_chunk": "INTEGER",  # batches per timed chunk
    "samples_per_chunk": "INTEGER",
    "gemm_size": "INTEGER",
    "status": "TEXT NOT NULL",  # "ok" or "failed"
    "reason": "TEXT",
    "harness_samples_per_s": "REAL",  # median over the pairs
    "reference_samples_per_s": "REAL",
    "ratio_median": "REAL",  # harness / reference samples/s, per pair
    "ratio_min": "REAL",
    "ratio_max": "REAL",
    "ratios_json": "TEXT",
    "gflops": "REAL",  # the harness's achieved GFLOP/s (FLOPs counted from the plan)
    "reference_gflops": "REAL",
    "gemm_gflops": "REAL",  # a square matmul in the same process
    "gemm_fraction": "REAL",  # gflops / gemm_gflops
    "forward_flops_per_sample": "INTEGER",
    "train_flops_per_sample": "INTEGER",
    "reference": "TEXT",  # the reference loop's description
    "reference_skipped": "TEXT",
    "reference_failed": "TEXT",
    "flop_convention": "TEXT",
    "versions_json": "TEXT",
    "load_json": "TEXT",  # the cores other processes kept busy during the timed pairs
    "cpu_count": "INTEGER",
    "platform": "TEXT",
    "processor": "TEXT",
}
BENCH_JSON_COLUMNS = tuple(name for name in BENCH_COLUMNS if name.endswith("_json"))
BENCH_KEY = ("bench_id", "preset", "backend")

CREATE_BENCH_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench (\n    id INTEGER PRIMARY KEY,\n"
    + "".join(f"    {name} {declaration},\n" for name, declaration in BENCH_COLUMNS.items())
    + f"    UNIQUE ({', '.join(BENCH_KEY)})\n)"
)
CREATE_BENCH_INDEXES = ("CREATE INDEX IF NOT EXISTS bench_by_bench_dir ON bench (bench_dir)",)
_BENCH_KEYS = [name for name in BENCH_COLUMNS if name not in BENCH_KEY]
BENCH_UPSERT = (
    f"INSERT INTO bench ({', '.join(BENCH_COLUMNS)}) VALUES ({', '.join('?' * len(BENCH_COLUMNS))})\n"
    f"ON CONFLICT ({', '.join(BENCH_KEY)}) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in _BENCH_KEYS)}"
)
