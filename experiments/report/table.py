"""The Table type (a titled pandas frame of plain values, rendered by markdown.py and html.py) and its cell formatters."""

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

VERDICT_COLUMNS = ("status", "gate", "verdict", "result")


@dataclass(frozen=True)
class Table:
    """A titled frame; formats maps a column to how its values are written (default: str)."""

    title: str
    frame: pd.DataFrame
    formats: dict[str, Callable[[Any], str]] = field(default_factory=dict)
    note: str = ""
    verdicts: tuple[str, ...] = VERDICT_COLUMNS  # the columns whose text is a verdict (the HTML colours only these)
    collapsed: bool = False  # the HTML shows it folded in a <details> element (markdown as it is)

    def cells(self) -> list[list[str]]:
        """Every row as display text ("-" for a missing value)."""
        rows = []
        for _, row in self.frame.iterrows():
            rows.append([_text(value, self.formats.get(column)) for column, value in row.items()])
        return rows


def missing(value: Any) -> bool:
    """None, or the NaN pandas puts in its place in a column of numbers."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any, fmt: Callable[[Any], str] | None) -> str:
    if missing(value):
        return "-"
    return fmt(value) if fmt else str(value)


def points(value: float) -> str:
    return f"{value:.2f}"


def sci(value: float) -> str:
    return f"{value:.2e}"


def seconds(value: float) -> str:
    return f"{value:.2f}"


def rate(value: float) -> str:
    return f"{value:,.0f}"


def integer(value: Any) -> str:
    return f"{int(value):,}"


def percent(fraction: float | None) -> float | None:
    return None if missing(fraction) else 100.0 * fraction


def factor_label(factors: dict[str, Any] | None, fields: list[str], name: str | None) -> str:
    """A sweep cell's study configuration, e.g. "relu" or "relu / adam" (name: the spec's, when there are no fields)."""
    factors = factors or {}
    return " / ".join(str(factors.get(field_name, "?")) for field_name in fields) or str(name)


def listed(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def interval_text(low: float, high: float, signed: bool = False, finite: int | None = None) -> str:
    if finite == 0:
        return "none (no finite seed)"
    if not (math.isfinite(low) and math.isfinite(high)):
        return "unbounded (one seed)" if finite in (None, 1) else "-"
    return f"[{low:+.3f}, {high:+.3f}]" if signed else f"[{low:.2f}, {high:.2f}]"
