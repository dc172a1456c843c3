"""Assemble the report from loaded inputs: sections of paragraphs, notes, tables and figures, renderer-neutral."""

from dataclasses import dataclass, field

import pandas as pd

from experiments.report import summary
from experiments.report.bench_tables import bench_notes, bench_table, meaning
from experiments.report.curve_figures import curves_figure, timing_figure
from experiments.report.defaults import Reader, neutralised_defaults
from experiments.report.drawing import Figure, slug
from experiments.report.gates import SUSPECT, rule_text
from experiments.report.inputs import Inputs, records
from experiments.report.parity_figures import growth_figure, ladder_figure
from experiments.report.provenance_tables import hyperparameters_table, inputs_table
from experiments.report.ranking_tables import ranking_table
from experiments.report.results_tables import NOT_STARTED, gate_formats, gate_table, results_table, status_word
from experiments.report.seed_figures import seed_figure
from experiments.report.seed_tables import seed_groups, seed_table
from experiments.report.study_figures import ranking_figure, studies_figure
from experiments.report.table import Table
from experiments.report.verify_tables import builtins_table, equivalence_table, growth_table, ladder_table, matrix_table


@dataclass(frozen=True)
class Note:
    """A paragraph that stands out: kind "alert" (flagged runs, failures) or "info"."""

    text: str
    kind: str = "info"


@dataclass(frozen=True)
class Bullets:
    """A short list of plain-text lines (the summary's headlines, the gate's per-reason counts)."""

    items: list[str]


Block = str | Note | Bullets | Table | Figure


@dataclass
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block | None) -> None:
        if block is not None:
            self.blocks.append(block)


@dataclass
class Report:
    """Everything the markdown and HTML renderers write; figures carry their final file stems."""

    title: str
    sections: list[Section]
    flagged: list[str]

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def _summary(inputs: Inputs, gate_frame: pd.DataFrame) -> Section:
    """Alerts first (flagged runs, failures, divergences), then the headline figures, then what was read."""
    section = Section("Summary")
    flagged = gate_frame[gate_frame["verdict"] == SUSPECT]
    for row in flagged.itertuples():
        section.add(Note(f"IMPLEMENTATION SUSPECT: {row.run}, backend {row.backend}: {row.reason}", "alert"))
    for result in records(inputs.results):
        if result["status"] != "ok":
            section.add(Note(f"{status_word(result['status'])}: {result['label']}, backend {result['backend']}: "
                             f"{result['reason'] or NOT_STARTED}", "alert"))
        elif result["diverged"]:
            section.add(Note(f"DIVERGED: {result['label']}, backend {result['backend']}: finished without a finite "
                             "accuracy; left out of means, intervals and ranks", "alert"))
    for verify in inputs.verifies:
        if not verify.document.passed:
            section.add(Note(f"verify {verify.label} ({verify.name}) did not pass; see the parity section.", "alert"))
        level5 = verify.document.levels.get("5")
        for failure in getattr(level5, "failures", []):
            section.add(Note(f"FAILED: {verify.label} level 5: {failure}", "alert"))
    for sweep in inputs.sweeps:
        if sweep.missing:
            section.add(Note(f"sweep {sweep.name}: {len(sweep.missing)} of {len(sweep.document.cells)} cells have no results "
                             f"yet ({', '.join(sweep.missing[:5])}{', ...' if len(sweep.missing) > 5 else ''}).", "alert"))
    if not gate_frame.empty:
        section.add(Bullets([summary.gate_line(gate_frame)]))
    if inputs.runs:
        section.add(Bullets(summary.run_lines(inputs.runs)))
    section.add(summary.study_headlines(inputs.sweeps))
    section.add(summary.seed_headlines(inputs))
    equivalence = summary.equivalence_lines(inputs.verifies)
    if equivalence:
        section.add(Bullets(equivalence))
    section.add(summary.ladder_headlines(inputs.verifies))
    for bench in inputs.benches:
        for text, kind in bench_notes(bench):
            if kind == "alert":
                section.add(Note(text, kind))
    parts = [f"{len(inputs.runs)} run(s)", f"{len(inputs.sweeps)} sweep(s) ({sum(len(s.runs) for s in inputs.sweeps)} "
             "cells with results)", f"{len(inputs.verifies)} verify result(s)"]
    if inputs.benches:
        parts.append(f"{len(inputs.benches)} bench result(s)")
    section.add(f"This report reads stored results only (nothing is retrained): {', '.join(parts)}.")
    notes = dict.fromkeys(run.document.dataset.note for run in inputs.all_runs if run.document.dataset.note)
    for note in notes:
        section.add(Note(f"dataset: {note}"))
    return section


def _curves(inputs: Inputs) -> Section:
    section = Section("Training curves")
    for run in inputs.runs:
        section.add(curves_figure(f"curves-{slug(run.label)}", f"{run.spec.name} ({run.label})", [run]))
    for sweep in inputs.sweeps:
        if not summary.study_axes(sweep):
            section.add(curves_figure(f"curves-{slug(sweep.name)}", f"sweep {sweep.name} (all seeds)", sweep.runs))
    return section


def _studies(inputs: Inputs) -> tuple[Section, Section]:
    """The studies' figures, and their full rankings (long tables, placed after every figure)."""
    section, rankings = Section("Studies"), Section("Study rankings")
    studies = [s for s in inputs.sweeps if summary.study_axes(s)]
    section.add(studies_figure(studies))
    for sweep in studies:
        ranking = ranking_table(sweep)
        section.add(ranking_figure(sweep, ranking))
        rankings.add(ranking)
    return section, rankings


def _seeds(inputs: Inputs) -> Section:
    section = Section("Accuracy over seeds and equivalence")
    groups = seed_groups(inputs)
    section.add(seed_figure(groups))
    if groups:
        section.add(seed_table(groups))
    equivalence = equivalence_table(inputs.verifies)
    if not equivalence.frame.empty:
        section.add(equivalence)
    return section


def _parity(inputs: Inputs) -> Section:
    """Figures first (ladder and error growth of every verify), then the per-pair tables."""
    section = Section("Parity ladder")
    for verify in inputs.verifies:
        section.add(ladder_figure(verify))
        section.add(growth_figure(verify))
    for verify in inputs.verifies:
        if verify.document.matrix:
            section.add(matrix_table(verify))
            section.add(builtins_table(verify))
        elif any(n != "5" for n in verify.document.levels):
            section.add(ladder_table(verify))
            section.add(builtins_table(verify))
        section.add(growth_table(verify))
    return section


def _throughput(inputs: Inputs) -> Section:
    return Section("Time and throughput", [b for b in [timing_figure(inputs)] if b is not None])


THROUGHPUT = "Throughput (bench)"


def _bench_throughput(inputs: Inputs) -> Section:
    """Per bench folder: the harness vs reference table and its notes, then what each figure means."""
    section = Section(THROUGHPUT)
    for bench in inputs.benches:
        section.add(bench_table(bench))
        for text, kind in bench_notes(bench):
            section.add(Note(text, kind))
    if inputs.benches:
        section.add(Bullets(meaning(inputs.benches)))
    return section


def _gate(gate_frame: pd.DataFrame) -> tuple[Section, Section]:
    """The runs the gate applies to (suspect first) as a table, the others counted per reason; their list in an appendix."""
    section, appendix = Section("Sanity gate"), Section("Appendix: runs without a reference band")
    if gate_frame.empty:
        return section, appendix
    section.add(summary.gate_line(gate_frame, pointer=False))
    gated = gate_frame[gate_frame["verdict"].isin(summary.GATED)].reset_index(drop=True)
    rest = gate_frame[~gate_frame["verdict"].isin(summary.GATED)].reset_index(drop=True)
    formats = gate_formats()
    if not gated.empty:
        section.add(Table("Sanity gate per run and backend", gated, formats))
    if not rest.empty:
        section.add("Without a reference band (the gate does not apply; every run is listed in the appendix):")
        section.add(Bullets(summary.no_band_lines(gate_frame)))
        appendix.add(Table("Runs without a reference band", rest.drop(columns=["threshold (%)"]),
                           formats, collapsed=True))
    section.add(Note(rule_text()))
    return section, appendix


def _results(inputs: Inputs) -> Section:
    section = Section("Results side by side")
    for run in inputs.runs:
        section.add(results_table(f"{run.label}: {run.spec.name} on {run.document.dataset.name}", run.rows))
    for sweep in inputs.sweeps:
        section.add(results_table(f"sweep {sweep.name}: every cell", sweep.rows, sweep.study_fields))
    return section


def _hyperparameters(inputs: Inputs) -> Section:
    section = Section("Effective hyperparameters")
    for run in inputs.runs:
        section.add(hyperparameters_table(f"{run.label}: {run.spec.name}", [run]))
    for sweep in inputs.sweeps:
        if sweep.runs:
            section.add(hyperparameters_table(f"sweep {sweep.name} (several values: the sweep's grid)", sweep.runs))
    return section


def _defaults(inputs: Inputs, read: Reader) -> Section:
    section = Section("Framework defaults the suite neutralised")
    specs = [run.raw_spec for run in inputs.all_runs]
    specs += [v.document.spec.model_dump(mode="json") for v in inputs.verifies if v.document.spec is not None]
    backends = set(inputs.results["backend"])
    backends |= {ln.first for v in inputs.verifies for lv in v.document.levels.values() for ln in getattr(lv, "summary", [])}
    backends |= {b.backend for v in inputs.verifies for lv in v.document.levels.values() for b in getattr(lv, "backends", [])}
    found, problems = neutralised_defaults(specs, sorted(backends), read)
    for table in found:
        section.add(table)
    for problem in problems:
        section.add(Note(f"could not read the defaults of {problem}", "alert"))
    return section


def _numbered(sections: list[Section]) -> None:
    """Give each figure a unique file stem in reading order: 01-curves-..., 02-..."""
    count = 0
    for section in sections:
        for index, block in enumerate(section.blocks):
            if isinstance(block, Figure):
                count += 1
                section.blocks[index] = Figure(f"{count:02d}-{block.name}", block.caption, block.png)


def build_document(inputs: Inputs, read_defaults: Reader) -> Report:
    """The whole report: the summary, every figure, then the long tables; sections without content are left out."""
    gate_frame = gate_table(inputs).frame
    studies, rankings = _studies(inputs)
    gate, appendix = _gate(gate_frame)
    sections = [_summary(inputs, gate_frame), _curves(inputs), studies, _seeds(inputs), _parity(inputs),
                _throughput(inputs), _bench_throughput(inputs), gate, rankings, _results(inputs), Section("Inputs", [inputs_table(inputs)]),
                _hyperparameters(inputs), _defaults(inputs, read_defaults), appendix]
    sections = [s for s in sections if s.blocks]
    _numbered(sections)
    flagged = [f"{row.run} ({row.backend}): {row.reason}" for row in gate_frame.itertuples() if row.verdict == SUSPECT]
    names = inputs.labels
    title = f"mnist-parity report: {', '.join(names[:3])}{f' and {len(names) - 3} more' if len(names) > 3 else ''}"
    return Report(title, sections, flagged)
