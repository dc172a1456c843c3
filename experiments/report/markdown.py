"""Render the report as markdown: pipe tables, figures as relative PNG links; every name from a config is escaped."""

import re

from experiments.report.document import Bullets, Note, Report
from experiments.report.drawing import Figure
from experiments.report.table import Table

FIGURE_DIR = "figures"
_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def escape(text: str) -> str:
    """Plain text as inert markdown: HTML's & < > as entities (no raw HTML survives), markdown's
    emphasis, link, code, heading and table characters backslash-escaped, newlines as spaces."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))


def table(t: Table) -> str:
    lines = [f"**{escape(t.title)}**", ""]
    columns = [escape(c) for c in t.frame.columns]
    rows = t.cells()
    if not rows:
        lines.append("(no rows)")
    else:
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in columns) + "|")
        lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    if t.note:
        lines += ["", f"_{escape(t.note)}_"]
    return "\n".join(lines)


def figure(f: Figure) -> str:
    return f"![{escape(f.caption)}]({FIGURE_DIR}/{f.name}.png)\n\n_{escape(f.caption)}_"


def render_markdown(report: Report) -> str:
    out = [f"# {escape(report.title)}", ""]
    for section in report.sections:
        out += [f"## {escape(section.heading)}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                out.append(table(block))
            elif isinstance(block, Figure):
                out.append(figure(block))
            elif isinstance(block, Bullets):
                out.append("\n".join(f"- {escape(item)}" for item in block.items))
            elif isinstance(block, Note):
                out.append(f"> **{escape(block.text)}**" if block.kind == "alert" else f"> {escape(block.text)}")
            else:
                out.append(escape(block))
            out.append("")
    return "\n".join(out).rstrip() + "\n"
