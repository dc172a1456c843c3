"""`mnist-parity defaults`: each framework's own default next to the value the suite pins (experiments.framework_defaults)."""

import pandas as pd
from rich.console import Console
from rich.table import Table

from experiments.errors import UserError
from experiments.framework_defaults import defaults_frame, known_entries


def defaults_command(console: Console, entries: list[str] | None = None) -> int:
    if entries:  # checked before the frameworks are imported (seconds each)
        unknown = sorted(set(entries) - set(known_entries()))
        if unknown:
            raise UserError(f"defaults: unknown entry {', '.join(unknown)}; known: {', '.join(known_entries())}")
    frame, problems = defaults_frame()
    if entries:
        frame = frame[frame["entry"].isin(entries)]
    table = Table(title="framework defaults vs the suite's pinned values", show_lines=True)
    for column in frame.columns:
        table.add_column(column, overflow="fold")
    for _, row in frame.iterrows():
        table.add_row(*("-" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value) for value in row))
    console.print(table)
    for problem in problems:
        console.print(f"could not read defaults from {problem}", style="red", markup=False)
    return 1 if problems else 0
