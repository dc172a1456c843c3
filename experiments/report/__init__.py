"""`mnist-parity report`: tables, figures and a self-contained HTML page from stored results (never retrains).

    report = build_report([Path("runs/20261130-...-mlp-relu-adam-3c84d4")], Path("reports/mlp"))

Modules: schemas (the documents' pydantic schemas), loading (read and validate run, sweep, verify and bench
directories into inputs: runs with their results-store rows, sweeps, verifies, benches with their bench-table rows),
gates (the sanity gate), bench_tables (the throughput section of benches),
table (the Table type and its formatters), the *_tables modules (pandas frames: results and gate, rankings,
seeds, verify, provenance), drawing (the Figure type, PNG bytes, colours) and the *_figures modules
(matplotlib PNGs: curves and throughput, studies, seeds, parity), summary (the headline figures:
best and worst study configurations, seed means, ladder levels, the gate in one line),
defaults (the framework defaults the suite neutralised), document (sections: the summary,
then every figure, then the long tables, the runs without a reference band last), markdown
and html (renderers, which escape every name), writing (the output directory, written all at once).
"""

import shlex
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import UserError
from experiments.results import folder_name
from experiments.report.defaults import Reader
from experiments.report.document import Report, build_document
from experiments.report.html import render_html
from experiments.report.inputs import Inputs
from experiments.report.loading import load_inputs
from experiments.report.markdown import FIGURE_DIR, render_markdown
from experiments.report.writing import check_out, write_directory

DEFAULT_PARENT = Path("reports")


@dataclass(frozen=True)
class Written:
    """What build_report wrote: the directory, the two pages, the figure files, and the flagged runs."""

    out: Path
    markdown: Path
    html: Path
    figures: list[Path]
    flagged: list[str]
    report: Report


def default_out(inputs: Inputs, parent: Path = DEFAULT_PARENT) -> Path:
    """reports/<the input's name>, or reports/<first>-and-<N>-more for several inputs."""
    names = inputs.labels
    name = names[0] if len(names) == 1 else f"{names[0]}-and-{len(names) - 1}-more"
    return Path(parent) / folder_name(name, fallback="report", limit=120)


def check_results(inputs: Inputs) -> None:
    """UserError (nothing is written) when the inputs together hold no result at all: only sweeps, none with a
    finished cell. A sweep with some finished cells is reported, its missing cells noted."""
    if inputs.runs or inputs.verifies or inputs.benches or any(sweep.runs for sweep in inputs.sweeps):
        return
    names = [sweep.name for sweep in inputs.sweeps]
    commands = " and ".join(f"'mnist-parity sweep {shlex.quote(name)}'" for name in names)
    if len(names) == 1:
        raise UserError(f"no results to report: sweep {names[0]} has no finished cells; run {commands} first")
    raise UserError(f"no results to report: sweeps {', '.join(names)} have no finished cells; run {commands} first")


def build_report(paths: list[Path], out: Path | None = None, read_defaults: Reader | None = None) -> Written:
    """Read the inputs, draw and render everything in memory, then write the directory in one step.

    Args:
        paths: run, sweep, verify or bench directories.
        out: the report directory (default: reports/<name derived from the inputs>).
        read_defaults: experiments.framework_defaults.framework_values (the default) or a stand-in.

    Returns:
        The paths written and the runs the sanity gate flagged.

    Raises:
        UserError: a path that is not a run, sweep, verify or bench directory, an unreadable or corrupt
            document, inputs without any result (sweeps with no finished cell), or an --out that is not a
            report directory; nothing is written then.
    """
    if read_defaults is None:
        from experiments.framework_defaults import framework_values as read_defaults
    inputs = load_inputs(paths)
    check_results(inputs)
    out = Path(out) if out is not None else default_out(inputs)
    check_out(out)
    report = build_document(inputs, read_defaults)
    files = {f"{FIGURE_DIR}/{f.name}.png": f.png for f in report.figures}
    files["report.md"] = render_markdown(report).encode("utf-8")
    files["report.html"] = render_html(report).encode("utf-8")
    try:
        written = write_directory(out, files)
    except OSError as error:
        raise UserError(f"report: cannot write {out}: {error.strerror or error}") from None
    return Written(out, out / "report.md", out / "report.html", [p for p in written if p.suffix == ".png"],
                   report.flagged, report)
