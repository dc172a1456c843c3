"""`mnist-parity report RUN_OR_SWEEP... [--out DIR]`: write report.md, report.html and the figures from stored results."""

import argparse

from rich.console import Console

from experiments.report import build_report


def report_command(args: argparse.Namespace, console: Console) -> int:
    """Returns 0 once the report is written (a flagged run is printed, not an error); bad input raises UserError (exit 2)."""
    written = build_report(list(args.paths), getattr(args, "out", None))
    console.print(f"report: {written.markdown}, {written.html} and {len(written.figures)} figures in "
                  f"{written.out}", highlight=False, markup=False, soft_wrap=True)
    for line in written.flagged:
        console.print(f"IMPLEMENTATION SUSPECT: {line}", style="bold red", highlight=False, markup=False, soft_wrap=True)
    return 0
