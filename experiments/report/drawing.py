"""What every report figure draws with: the Figure type, plain text, PNG bytes on the Agg canvas, colours and slugs."""

import io
import math
import re
from dataclasses import dataclass
from functools import wraps

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

BACKEND_COLOURS = {"numpy": "#444444", "torch": "#ee4c2c", "keras": "#8e24aa", "jax": "#1e88e5"}
OTHER_COLOURS = ["#2e7d32", "#f9a825", "#00897b", "#6d4c41", "#c2185b", "#5c6bc0"]
PASS_COLOUR, FAIL_COLOUR, NONE_COLOUR = "#a5d6a7", "#ef9a9a", "#eeeeee"
DPI = 100


@dataclass(frozen=True)
class Figure:
    """A drawn figure: file stem (safe characters only), caption (plain text) and PNG bytes."""

    name: str
    caption: str
    png: bytes


def slug(text: str) -> str:
    """A file-name-safe stem from any name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "x"


def plain_text(draw):
    """Draw with mathtext off (a `$` in a spec name stays a dollar sign) and the figures' font size.

    Every figure function returns None when its inputs hold no data for it, so the report draws only
    figures it can fill; matplotlib's object API on the Agg canvas only (no pyplot, no display).
    """
    @wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):
            return draw(*args, **kwargs)
    return wrapper


def png(figure: MplFigure) -> bytes:
    """The figure as PNG bytes, without the Software metadata (the same figure gives the same bytes)."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def visible(text: str) -> str:
    """Matplotlib hides legend labels that start with an underscore; keep them visible."""
    return f" {text}" if text.startswith("_") else text


def backend_colour(backend: str, order: list[str]) -> str:
    """The backend's own colour, or one of the others by its place among the unknown backends in order."""
    if backend in BACKEND_COLOURS:
        return BACKEND_COLOURS[backend]
    others = [b for b in order if b not in BACKEND_COLOURS]
    return OTHER_COLOURS[others.index(backend) % len(OTHER_COLOURS)] if backend in others else OTHER_COLOURS[0]


def any_finite(values) -> bool:
    """Whether any value is a finite number (None and NaN are not)."""
    return any(v is not None and math.isfinite(v) for v in values)
