"""The throughput section's table and words: a bench folder's harness vs reference samples/s, ratio, GFLOP/s and its share
of the GEMM rate, per preset and backend, from the store's bench rows (experiments.store.rows.bench_rows)."""

import pandas as pd

from experiments.bench.flops import CONVENTION
from experiments.report.inputs import Bench, records
from experiments.report.table import Table, rate
from experiments.progress import threshold_text
from experiments.load import load_distorts

RATIO_DIGITS = 3


def share(percent: float) -> str:
    """A percentage with one decimal, or two significant digits below 1 % (a small model's step reaches 0.03 %)."""
    return f"{percent:.1f}" if percent >= 1 else f"{percent:.2g}"


def ratio_text(row: dict) -> str | None:
    """"median [min, max]" of the per-pair ratios; None when the reference did not run."""
    if row["ratio_median"] is None:
        return None
    return f"{row['ratio_median']:.{RATIO_DIGITS}f} [{row['ratio_min']:.{RATIO_DIGITS}f}, {row['ratio_max']:.{RATIO_DIGITS}f}]"


def _status(row: dict) -> str:
    if row["status"] != "ok":
        return f"FAILED: {row['reason'] or 'no reason recorded'}"
    if row["reference_failed"]:
        return f"ok (reference failed: {row['reference_failed']})"
    if row["reference_skipped"]:
        return "ok (reference skipped)"
    return "ok"


def _load(row: dict) -> float | None:
    return (row["load_json"] or {}).get("mean")


def bench_table(bench: Bench) -> Table:
    """One row per preset and backend: harness and reference samples/s, the ratio median [min, max], GFLOP/s, the GEMM
    rate and the share of it reached, the cores other processes kept busy, the framework's versions."""
    rows = []
    for row in records(bench.rows):
        rows.append({
            "preset": row["preset"], "backend": row["backend"], "status": _status(row),
            "harness samples/s": row["harness_samples_per_s"], "reference samples/s": row["reference_samples_per_s"],
            "ratio median [min, max]": ratio_text(row), "GFLOP/s": row["gflops"], "GEMM GFLOP/s": row["gemm_gflops"],
            "share of GEMM (%)": None if row["gemm_fraction"] is None else 100.0 * row["gemm_fraction"],
            "others' CPU (cores)": _load(row),
            "framework": " ".join(f"{k} {v}" for k, v in (row["versions_json"] or {}).items()) or None,
        })
    data = bench.data
    steps = data.get("steps") or {}
    title = (f"{bench.label}: harness vs tutorial-style reference, {data.get('threads', '?')} thread(s), "
             f"{data.get('pairs', '?')} timed pair(s) of {', '.join(f'{n} batches ({p})' for p, n in steps.items()) or '?'}"
             f" on {data.get('dataset', '?')}")
    formats = {"harness samples/s": rate, "reference samples/s": rate, "GFLOP/s": lambda v: f"{v:.2f}",
               "GEMM GFLOP/s": lambda v: f"{v:.1f}", "share of GEMM (%)": share,
               "others' CPU (cores)": lambda v: f"{v:.2f}"}
    note = f"created {data.get('created', '?')}; {data.get('gemm_size', '?')}x{data.get('gemm_size', '?')} GEMM"
    return Table(title, pd.DataFrame(rows), formats, note)


def meaning(benches: list[Bench]) -> list[str]:
    """What each figure of the throughput tables means, in words."""
    conventions = {bench.data.get("flop_convention") or CONVENTION for bench in benches}
    return [
        "harness samples/s: training samples per second of the suite's own training step (each backend's Trainer), "
        "training steps only: after one untimed warm-up chunk (which compiles), each timed chunk trains the same first "
        "batches of the run's first epoch, with no evaluation; the median over the pairs.",
        "reference samples/s: the same batches, batch size, optimizer values, dtype and threads through a training loop "
        "written the way the framework's own tutorials write it (backends/<backend>/reference.py, described below), timed "
        "in the same process, interleaved with the harness: harness then reference, once per pair.",
        "ratio: harness samples/s / reference samples/s of each pair, median [min, max] over the pairs; above 1 the "
        "harness is faster. The two sides of a ratio ran in one process within seconds of each other, so a ratio is "
        "comparable within one bench run only, as are the samples/s; across runs and machines neither is.",
        "GFLOP/s: floating-point operations per sample counted from the plan, never measured ("
        + " | ".join(sorted(conventions)) + "), times the harness samples/s. GEMM GFLOP/s: a square matmul in the spec's "
        "dtype timed in the same process before and after the pairs (median); share of GEMM: GFLOP/s / GEMM GFLOP/s, how "
        "close the training step comes to the process's dense matmul rate.",
        "others' CPU: the cores other processes kept busy during the timed pairs (mean; the CPU time of the machine "
        "less the worker's own, per second); '-' where it was not measured.",
    ]


def bench_notes(bench: Bench) -> list[tuple[str, str]]:
    """(text, kind) notes: failures, skipped or failed references, a busy machine, and each reference's description."""
    notes, described = [], {}
    for row in records(bench.rows):
        where = f"bench {bench.label}, {row['preset']} on {row['backend']}"
        if row["status"] != "ok":
            notes.append((f"FAILED: {where}: {row['reason'] or 'no reason recorded'}", "alert"))
        if row["reference_skipped"]:
            notes.append((f"{where}: reference skipped: {row['reference_skipped']}", "info"))
        if row["reference_failed"]:
            notes.append((f"{where}: reference failed: {row['reference_failed']}", "alert"))
        if row["reference"]:
            described.setdefault(row["backend"], row["reference"])
    busy = [row for row in records(bench.rows) if load_distorts(row["load_json"])]
    if busy:
        load = busy[0]["load_json"]
        named = ", ".join(f"{row['preset']} on {row['backend']} ({_load(row):.2f})" for row in busy)
        notes.append((f"busy machine in bench {bench.label}: other processes kept cores busy during the timed pairs of "
                      f"{named}, above the {threshold_text(load)}; their samples/s and GFLOP/s are likely low.", "alert"))
    notes += [(f"reference {backend}: {text}", "info") for backend, text in described.items()]
    return notes
