"""One framework's bench outcome from its worker's events, the printed table, and bench.json."""

import json
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from experiments.bench.flops import CONVENTION, gflops
from experiments.progress import threshold_text
from experiments.load import load_distorts

BENCH_FILE = "bench.json"
SCHEMA_VERSION = 1  # bench.json's "schema"; a bench.json without one was written before the field, with the same shape


@dataclass
class BackendBench:
    """What one worker reported: status "ok" or "failed" (reason), the timed pairs, the GEMM rate, the reference's
    description or why it was skipped or failed."""

    backend: str
    status: str = "pending"
    reason: str | None = None
    samples: int = 0
    steps: int = 0
    forward_flops: int = 0
    train_flops: int = 0
    harness_s: list = field(default_factory=list)
    reference_s: list = field(default_factory=list)
    warmup: dict = field(default_factory=dict)
    gemm_gflops: float | None = None
    gemm_samples: list = field(default_factory=list)
    reference: str | None = None
    reference_skipped: str | None = None
    reference_failed: str | None = None
    versions: dict = field(default_factory=dict)
    log: str | None = None
    load: dict | None = None  # experiments.load.LoadMeter.summary() over the timed pairs; None when not measured

    def apply(self, event: dict) -> None:
        kind = event["event"]
        if kind == "started":
            self.status = "running"
            self.versions = event.get("versions", {})
            self.samples, self.steps = event["samples"], event["steps"]
            self.forward_flops, self.train_flops = event["forward_flops"], event["train_flops"]
        elif kind == "reference":
            self.reference = event["description"]
        elif kind == "reference-skipped":
            self.reference_skipped = event["reason"]
        elif kind == "reference-failed":
            self.reference_failed = event["reason"]
        elif kind == "warmup":
            self.warmup = {"harness_s": event["harness_s"], "reference_s": event["reference_s"]}
        elif kind == "pair":
            self.harness_s.append(event["harness_s"])
            if event["reference_s"] is not None:
                self.reference_s.append(event["reference_s"])
        elif kind == "finished":
            self.status = "ok"
            self.gemm_gflops, self.gemm_samples = event["gemm_gflops"], event["gemm_samples"]
        elif kind == "failed":
            self.status, self.reason = "failed", event["reason"]

    def summary(self) -> dict:
        """bench.json's entry: medians over the pairs; ratio = harness samples/s / reference samples/s per pair."""
        harness = [self.samples / s for s in self.harness_s if s > 0]
        reference = [self.samples / s for s in self.reference_s if s > 0]
        ratios = [h / r for h, r in zip(harness, reference)]
        harness_rate = statistics.median(harness) if harness else None
        reference_rate = statistics.median(reference) if reference else None
        achieved = gflops(self.train_flops, harness_rate) if harness_rate else None
        return {
            "status": self.status, "reason": self.reason,
            "harness_samples_per_s": harness_rate, "reference_samples_per_s": reference_rate,
            "ratio_median": statistics.median(ratios) if ratios else None,
            "ratio_min": min(ratios) if ratios else None, "ratio_max": max(ratios) if ratios else None,
            "ratios": ratios,
            "gflops": achieved,
            "reference_gflops": gflops(self.train_flops, reference_rate) if reference_rate else None,
            "gemm_gflops": self.gemm_gflops,
            "gemm_fraction": achieved / self.gemm_gflops if achieved and self.gemm_gflops else None,
            "gemm_samples": self.gemm_samples,
            "forward_flops_per_sample": self.forward_flops, "train_flops_per_sample": self.train_flops,
            "samples_per_chunk": self.samples, "steps_per_chunk": self.steps,
            "harness_seconds": self.harness_s, "reference_seconds": self.reference_s, "warmup_seconds": self.warmup,
            "reference": self.reference, "reference_skipped": self.reference_skipped,
            "reference_failed": self.reference_failed, "versions": self.versions, "log": self.log,
            "load": self.load,
        }


def _number(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(console: Console, results: dict[str, dict[str, BackendBench]], threads: int, gemm_size: int) -> None:
    table = Table(title=f"harness vs tutorial-style reference, {threads} thread(s); ratio > 1: the harness is faster",
                  title_justify="left")
    for column in ("preset", "backend", "harness samples/s", "reference samples/s", "ratio median", "ratio min-max",
                   "harness GFLOP/s", "reference GFLOP/s", "GEMM GFLOP/s", "harness / GEMM", "others' CPU (cores)"):
        table.add_column(column, justify="left" if column in ("preset", "backend") else "right")
    notes = []
    for preset, backends in results.items():
        for backend, bench in backends.items():
            s = bench.summary()
            if bench.status != "ok":
                table.add_row(preset, backend, "failed", *["-"] * 8)
                notes.append(f"{preset} / {backend}: failed: {bench.reason}" + (f" (log: {bench.log})" if bench.log else ""))
                continue
            spread = "-" if s["ratio_min"] is None else f"{s['ratio_min']:.3f}-{s['ratio_max']:.3f}"
            table.add_row(preset, backend, _number(s["harness_samples_per_s"]), _number(s["reference_samples_per_s"]),
                          _number(s["ratio_median"], 3), spread, _number(s["gflops"], 1), _number(s["reference_gflops"], 1),
                          _number(s["gemm_gflops"], 1),
                          "-" if s["gemm_fraction"] is None else f"{100 * s['gemm_fraction']:.1f}%",
                          _number((bench.load or {}).get("mean"), 2))
            if bench.reference_skipped:
                notes.append(f"{preset} / {backend}: reference skipped: {bench.reference_skipped}")
            if bench.reference_failed:
                notes.append(f"{preset} / {backend}: reference failed: {bench.reference_failed}")
    console.print(table)
    for note in notes:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    console.print(f"GFLOP/s: {CONVENTION}; GEMM: a {gemm_size}x{gemm_size} matmul in the spec's dtype timed in the same process "
                  "before and after the pairs (median); others' CPU: cores other processes kept busy during the timed "
                  "pairs (mean)", highlight=False, markup=False, soft_wrap=True)
    busy = [(f"{preset} / {backend}", bench.load) for preset, backends in results.items()
            for backend, bench in backends.items() if load_distorts(bench.load)]
    if busy:
        named = ", ".join(f"{name} {load['mean']:.2f}" for name, load in busy)
        console.print(f"warning: busy machine: other processes kept {named} cores busy during the timed pairs, above the "
                      f"{threshold_text(busy[0][1])}; their samples/s and "
                      "GFLOP/s are likely low (the ratios, harness and reference interleaved, less so): compare on an "
                      "idle machine", style="yellow", highlight=False, markup=False, soft_wrap=True)
    references = {backend: bench.reference for backends in results.values() for backend, bench in backends.items()
                  if bench.reference}
    for backend, description in references.items():
        console.print(f"reference {backend}: {description}", highlight=False, markup=False, soft_wrap=True)


def write_bench(path: Path, results: dict[str, dict[str, BackendBench]], settings: dict) -> None:
    """bench.json: the command's settings and, per preset and backend, BackendBench.summary()."""
    document = {
        "schema": SCHEMA_VERSION,
        **settings,
        "flop_convention": CONVENTION,
        "ratio": "harness samples/s / reference samples/s, per pair; > 1: the harness is faster",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
        "results": {preset: {backend: bench.summary() for backend, bench in backends.items()}
                    for preset, backends in results.items()},
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, default=float) + "\n", encoding="utf-8")
    tmp.replace(path)
