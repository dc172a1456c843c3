"""Render the report as one self-contained HTML page: inline CSS, figures as base64 data URIs, no script at all.

Every text from a config or a result is escaped with html.escape; a Content-Security-Policy
that allows no script is defence in depth, not the protection.
"""

import base64
import html
import re

from experiments.report.document import Bullets, Note, Report
from experiments.report.drawing import Figure, slug
from experiments.report.table import Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
GOOD = ("pass", "ok", "plausible", "equivalent")
BAD = ("fail", "failed", "implementation suspect", "different", "diverged")
SOME_BAD = re.compile(r"^\d+ of \d+ (diverged|failed)\b")
NEUTRAL = ("inconclusive", "no reference band", "not gated", "no validation accuracy", "not ranked")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.good { background: #e8f5e9; } td.bad { background: #ffebee; font-weight: bold; } td.neutral { background: #fafafa; color: #666; }
caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
.note { color: #555; font-size: 0.85em; }
.alert { background: #ffebee; border-left: 4px solid #c62828; padding: 0.5em 1em; font-weight: bold; color: #b71c1c; }
details { margin: 0.5em 0 1.5em; } summary { cursor: pointer; font-weight: bold; }
.info { background: #f5f5f5; border-left: 4px solid #888; padding: 0.5em 1em; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.scroll { overflow-x: auto; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _starts(text: str, words: tuple[str, ...]) -> bool:
    return any(text == w or text.startswith((w + " ", w + ":")) for w in words)


def cell_class(text: str) -> str:
    """A verdict's colour: "good", "bad" or "neutral" when the cell starts with a verdict word, else "".

    Only for cells of a table's verdict columns (Table.verdicts): a name that happens to start with a
    verdict word (an activation labelled "ok: x") is not a verdict."""
    lowered = text.lower()
    if SOME_BAD.match(lowered):
        return "bad"
    for css, words in (("bad", BAD), ("good", GOOD), ("neutral", NEUTRAL)):
        if _starts(lowered, words):
            return css
    return ""


def table(t: Table) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in t.frame.columns)
    body = []
    judged = [column in t.verdicts for column in t.frame.columns]
    for row in t.cells():
        cells = []
        for text, verdict in zip(row, judged):
            css = cell_class(text) if verdict else ""
            cells.append(f'<td class="{css}">{_e(text)}</td>' if css else f"<td>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{max(1, len(t.frame.columns))}">(no rows)</td></tr>')
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    text = (f'<div class="scroll"><table><caption>{_e(t.title)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{note}")
    if t.collapsed:
        rows = len(t.frame)
        return f"<details><summary>{_e(t.title)} ({rows} row{'' if rows == 1 else 's'}; click to show)</summary>{text}</details>"
    return text


def figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure id="{_e(f.name)}"><img src="data:image/png;base64,{data}" alt="{_e(f.caption)}">'
            f"<figcaption>{_e(f.caption)}</figcaption></figure>")


def render_html(report: Report) -> str:
    nav = "".join(f'<li><a href="#{slug(s.heading)}">{_e(s.heading)}</a></li>' for s in report.sections)
    parts = []
    for section in report.sections:
        parts.append(f'<section id="{slug(section.heading)}"><h2>{_e(section.heading)}</h2>')
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(table(block))
            elif isinstance(block, Figure):
                parts.append(figure(block))
            elif isinstance(block, Bullets):
                parts.append("<ul>" + "".join(f"<li>{_e(item)}</li>" for item in block.items) + "</ul>")
            elif isinstance(block, Note):
                parts.append(f'<p class="{block.kind}">{_e(block.text)}</p>')
            else:
                parts.append(f"<p>{_e(block)}</p>")
        parts.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(report.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_e(report.title)}</h1>\n<nav><ul>{nav}</ul></nav>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )
