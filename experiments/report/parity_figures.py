"""Figures of a verify result: the parity ladder or matrix (pass/FAIL grid) and the error growth along the trajectory."""

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, NullFormatter

from experiments.report import drawing
from experiments.report.drawing import FAIL_COLOUR, NONE_COLOUR, PASS_COLOUR, Figure, any_finite, plain_text, slug, visible
from experiments.report.inputs import Verify


def _matrix_axes(figure: MplFigure, status: np.ndarray, text: list[list[str]], rows: list[str], cols: list[str], title: str):
    ax = figure.subplots()
    ax.imshow(status, cmap=ListedColormap([NONE_COLOUR, FAIL_COLOUR, PASS_COLOUR]), vmin=0, vmax=2, aspect="auto")
    for i, line in enumerate(text):
        for j, value in enumerate(line):
            ax.text(j, i, value, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), [visible(c) for c in cols], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [visible(r) for r in rows])
    ax.set_xticks(np.arange(len(cols) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title)


def _matrix_figure(verify: Verify) -> Figure:
    """verify --matrix: cells x levels, each pass or FAIL with the worst error over all pairs."""
    cells = verify.document.matrix
    levels = list(dict.fromkeys(level.name for cell in cells.values() for _, level in sorted(cell.levels.items())))
    rows = list(cells)
    status = np.zeros((len(rows), len(levels)))
    text = [["" for _ in levels] for _ in rows]
    for i, cell in enumerate(cells.values()):
        for level in cell.levels.values():
            j = levels.index(level.name)
            worst = max((ln.worst_error for ln in level.summary if ln.worst_error is not None), default=None)
            status[i, j] = 2 if level.passed else 1
            text[i][j] = ("pass" if level.passed else "FAIL") + ("" if worst is None else f" {worst:.0e}")
    figure = MplFigure(figsize=(2.0 * len(levels) + 3, 0.28 * len(rows) + 1.5), layout="constrained")
    _matrix_axes(figure, status, text, rows, levels, f"parity matrix on {verify.document.base}: worst error over all pairs")
    return Figure(f"parity-matrix-{slug(verify.label)}", f"Parity matrix ({verify.label}): each cell and level, pass "
                  "(green) or FAIL (red) with the worst normwise relative error over all pairs.", drawing.png(figure))


@plain_text
def ladder_figure(verify: Verify) -> Figure | None:
    """Levels 1-4 x backend pairs (or matrix cells x levels), green pass / red FAIL with the worst error written in."""
    if verify.document.matrix:
        return _matrix_figure(verify)
    numeric = [(n, level) for n, level in sorted(verify.document.levels.items()) if n != "5" and level.summary]
    if not numeric:
        return None
    rows = [f"{n} {level.name}" for n, level in numeric]
    pairs = list(dict.fromkeys(f"{ln.first} vs {ln.second}" for _, level in numeric for ln in level.summary))
    status = np.zeros((len(rows), len(pairs)))
    text = [["" for _ in pairs] for _ in rows]
    for i, (_, level) in enumerate(numeric):
        for ln in level.summary:
            j = pairs.index(f"{ln.first} vs {ln.second}")
            status[i, j] = 2 if ln.passed else 1
            text[i][j] = ("pass" if ln.passed else "FAIL") + ("" if ln.worst_error is None else f"\n{ln.worst_error:.1e}")
    figure = MplFigure(figsize=(1.35 * len(pairs) + 2.5, 0.75 * len(rows) + 1.8), layout="constrained")
    dtype = verify.document.spec.dtype if verify.document.spec else ""
    _matrix_axes(figure, status, text, rows, pairs, f"parity ladder: {verify.name} ({dtype})")
    return Figure(f"parity-ladder-{slug(verify.label)}", f"Parity ladder ({verify.label}): level x backend pair, pass (green) "
                  "or FAIL (red) with the worst normwise relative error.", drawing.png(figure))


@plain_text
def growth_figure(verify: Verify) -> Figure | None:
    """Worst parameter error after each checkpoint step of the trajectory, per pair, against the level's tolerance."""
    level = verify.document.levels.get("4")
    growth = getattr(level, "growth", None)
    if not growth:
        return None
    figure = MplFigure(figsize=(7, 4.2), layout="constrained")
    ax = figure.subplots()
    colours = matplotlib.colormaps["tab10"]
    drawn = False
    for index, (pair, errors) in enumerate(growth.items()):
        steps = sorted(errors)
        values = [errors[s] if errors[s] > 0 else np.nan for s in steps]
        if any_finite(values):
            ax.plot(steps, values, marker="o", color=colours(index % 10), label=visible(pair))
            drawn = True
    if not drawn:
        return None
    tolerances = {ln.tolerance for ln in level.summary if ln.tolerance}
    for tol in sorted(tolerances):
        ax.axhline(tol, color="red", linestyle="--", linewidth=1, label=f"tolerance {tol:.0e}")
    ax.set_yscale("log")
    ax.set_xscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # plain-text tick labels: mathtext is off
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("worst normwise relative error")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(f"error growth along the trajectory: {verify.name}")
    return Figure(f"error-growth-{slug(verify.label)}", f"Error growth along the trajectory ({verify.label}): worst parameter "
                  "error after each checkpoint step, per pair (zero errors are not drawn on the log scale).", drawing.png(figure))
