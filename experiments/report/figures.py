"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no display) into PNG bytes.

Every function returns None when its inputs hold no data for it, so the report draws only
figures it can fill. Names from configs are drawn as plain text (mathtext is off: a `$` in a
spec name stays a dollar sign).
"""

import io
import math
import re
from dataclasses import dataclass
from functools import wraps

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from experiments.report.inputs import Inputs, Run, Sweep, Verify, records
from experiments.report.seed_tables import SeedGroup
from experiments.report.table import factor_label

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


def _plain_text(draw):
    @wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):
            return draw(*args, **kwargs)
    return wrapper


def _png(figure: MplFigure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _label(text: str) -> str:
    """Matplotlib hides legend labels that start with an underscore; keep them visible."""
    return f" {text}" if text.startswith("_") else text


def backend_colour(backend: str, order: list[str]) -> str:
    if backend in BACKEND_COLOURS:
        return BACKEND_COLOURS[backend]
    others = [b for b in order if b not in BACKEND_COLOURS]
    return OTHER_COLOURS[others.index(backend) % len(OTHER_COLOURS)] if backend in others else OTHER_COLOURS[0]


def _finite(values) -> bool:
    return any(v is not None and math.isfinite(v) for v in values)


CURVE_PANELS = (("train_accuracy", "training accuracy"), ("val_accuracy", "validation accuracy"),
                ("train_loss", "training loss"), ("val_loss", "validation loss"))


@_plain_text
def curves_figure(name: str, title: str, runs: list[Run]) -> Figure | None:
    """Training and validation accuracy and loss per epoch, backends overlaid (one line per run and backend)."""
    entries = [(backend, outcome.history) for run in runs for backend, outcome in run.document.backends.items()
               if outcome.history]
    if not entries:
        return None
    order = list(dict.fromkeys(backend for backend, _ in entries))
    figure = MplFigure(figsize=(10, 6.5), layout="constrained")
    axes = figure.subplots(2, 2)
    drawn = False
    for ax, (key, label) in zip(axes.flat, CURVE_PANELS):
        labelled = set()
        for backend, history in entries:
            epochs = [h.epoch for h in history]
            values = [np.nan if getattr(h, key) is None else getattr(h, key) for h in history]
            if not _finite(values):
                continue
            if key.endswith("accuracy"):
                values = [100.0 * v for v in values]
            first = backend not in labelled
            labelled.add(backend)
            ax.plot(epochs, values, marker="o", markersize=3, color=backend_colour(backend, order),
                    alpha=0.9 if len(runs) == 1 else 0.55, label=_label(backend) if first else "_nolegend_")
            drawn = True
        ax.set_title(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("%" if key.endswith("accuracy") else "loss")
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize=8)
    if not drawn:
        return None
    figure.suptitle(title)
    return Figure(name, f"{title}: training and validation accuracy and loss per epoch, backends overlaid.", _png(figure))


def _backends_of(sweeps: list[Sweep]) -> list[str]:
    return list(dict.fromkeys(backend for sweep in sweeps for run in sweep.runs for backend in run.document.backends))


def _study_label(run: Run, fields: list[str]) -> str:
    return factor_label(run.factors, fields, run.spec.name)


@_plain_text
def studies_figure(sweeps: list[Sweep]) -> Figure | None:
    """One row per study sweep, one column per backend: validation accuracy per epoch for each configuration."""
    sweeps = [s for s in sweeps if s.study_fields and any(o.history for r in s.runs for o in r.document.backends.values())]
    if not sweeps:
        return None
    backends = _backends_of(sweeps)
    figure = MplFigure(figsize=(4.2 * len(backends) + 2.2, 3.4 * len(sweeps)), layout="constrained")
    # Within a study the backends' panels share the y axis, so their curves compare at a glance.
    axes = np.atleast_2d(figure.subplots(len(sweeps), len(backends), squeeze=False, sharey="row"))
    for row, sweep in zip(axes, sweeps):
        labels = list(dict.fromkeys(_study_label(run, sweep.study_fields) for run in sweep.runs))
        palette = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"].colors
        colours = lambda index: palette[index % len(palette)]  # noqa: E731
        for ax, backend in zip(row, backends):
            seen = set()
            for run in sweep.runs:
                history = run.document.backends[backend].history if backend in run.document.backends else []
                if history:
                    label = _study_label(run, sweep.study_fields)
                    values = [np.nan if h.val_accuracy is None else 100.0 * h.val_accuracy for h in history]
                    ax.plot([h.epoch for h in history], values, color=colours(labels.index(label)),
                            label=_label(label) if label not in seen else "_nolegend_")
                    seen.add(label)
            ax.set_title(f"{sweep.name}: {backend}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            if ax is row[0]:
                ax.set_ylabel("validation accuracy (%)")
            ax.grid(alpha=0.3)
        handles, names = [], []
        for ax in row:
            for handle, name in zip(*ax.get_legend_handles_labels()):
                if name not in names:
                    handles.append(handle)
                    names.append(name)
        if handles:
            row[-1].legend(handles, names, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5),
                           title=" / ".join(sweep.study_fields), title_fontsize=7)
    return Figure("studies", "Studies side by side per backend: validation accuracy per epoch for each configuration.", _png(figure))


def _unstable(status: str) -> str:
    """" (1 of 3 diverged)" for a ranking row whose seeds did not all give a finite result, else ""."""
    parts = [p for p in str(status).split("; ") if p.endswith(("diverged", "FAILED"))]
    return f" ({', '.join(parts)})" if parts else ""


@_plain_text
def ranking_figure(sweep: Sweep, ranking) -> Figure | None:
    """Per backend, the configurations in rank order: final validation accuracy (bar) and test accuracy (dot)."""
    frame = ranking.frame
    if frame.empty or not frame["val acc (%)"].notna().any():
        return None
    header = frame.columns[2]
    backends = list(dict.fromkeys(frame["backend"]))
    height = max(2.5, 0.28 * frame[header].nunique() + 1.2)
    figure = MplFigure(figsize=(3.8 * len(backends) + 1.5, height), layout="constrained")
    axes = figure.subplots(1, len(backends), squeeze=False)[0]
    shown = pd.concat([frame["val acc (%)"], frame["test acc (%)"]]).astype(float).dropna()
    left = max(0.0, float(shown.min()) - 5.0)
    for ax, backend in zip(axes, backends):
        part = frame[frame["backend"] == backend].iloc[::-1]
        y = np.arange(len(part))
        ax.barh(y, part["val acc (%)"].astype(float).fillna(left), color=backend_colour(backend, backends), alpha=0.8,
                label="validation (ranks)")
        ax.scatter(part["test acc (%)"].astype(float), y, color="black", s=12, zorder=3, label="test")
        ax.set_yticks(y, [_label(str(v)) + _unstable(status) for v, status in zip(part[header], part["status"])])
        ax.set_xlim(left, min(100.0, float(shown.max()) + 1.0))
        ax.set_xlabel("accuracy (%)")
        ax.set_title(_label(backend))
        ax.grid(alpha=0.3, axis="x")
    figure.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="upper right", ncols=2)
    figure.suptitle(f"{sweep.name}: ranked by validation accuracy")
    return Figure(f"ranking-{slug(sweep.name)}", f"{sweep.name}: configurations ranked per backend by final validation "
                  "accuracy (bars); test accuracy as dots, not used to rank.", _png(figure))


@_plain_text
def seed_figure(groups: list[SeedGroup]) -> Figure | None:
    """Final test accuracy per backend with 95% intervals across seeds, grouped by configuration."""
    if not groups:
        return None
    labels = list(dict.fromkeys(g.label for g in groups))
    order = list(dict.fromkeys(g.backend for g in groups))
    figure = MplFigure(figsize=(max(6.0, 1.0 * len(groups) + 2), 4.2), layout="constrained")
    ax = figure.subplots()
    ticks, names, x, seen = [], [], 0.0, set()
    for label in labels:
        for g in [g for g in groups if g.label == label]:
            colour = backend_colour(g.backend, order)
            low, high, _ = g.interval  # clipped to [0, 100]
            if math.isfinite(low) and math.isfinite(high):
                ax.errorbar([x], [g.mean], yerr=[[g.mean - low], [high - g.mean]], fmt="o", color=colour,
                            capsize=4, label=_label(g.backend) if g.backend not in seen else "_nolegend_")
            else:
                ax.plot([x], [g.mean], "o", color=colour, label=_label(g.backend) if g.backend not in seen else "_nolegend_")
            seen.add(g.backend)
            finite = [100 * a for _, a in g.finite]
            ax.scatter([x + 0.15] * len(finite), finite, color=colour, s=8, alpha=0.6)
            ticks.append(x)
            name = f"{label}\n{g.backend}" if len(labels) > 1 else g.backend
            names.append(name + (f" ({', '.join(g.problems())})" if g.problems() else ""))
            x += 1.0
        x += 0.6
    several = len(labels) > 1
    ax.set_xticks(ticks, [_label(n) for n in names], fontsize=7, rotation=30 if several else 0, ha="right" if several else "center")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title("test accuracy over seeds: mean and 95% interval")
    return Figure("accuracy-over-seeds", "Final test accuracy per backend with 95% confidence intervals across seeds "
                  "(small dots: the individual seeds).", _png(figure))


def _matrix_axes(figure: MplFigure, status: np.ndarray, text: list[list[str]], rows: list[str], cols: list[str], title: str):
    ax = figure.subplots()
    ax.imshow(status, cmap=ListedColormap([NONE_COLOUR, FAIL_COLOUR, PASS_COLOUR]), vmin=0, vmax=2, aspect="auto")
    for i, line in enumerate(text):
        for j, value in enumerate(line):
            ax.text(j, i, value, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), [_label(c) for c in cols], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [_label(r) for r in rows])
    ax.set_xticks(np.arange(len(cols) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title)


@_plain_text
def ladder_figure(verify: Verify) -> Figure | None:
    """Levels 1-4 x backend pairs (or matrix cells x levels), green pass / red FAIL with the worst error written in."""
    if verify.document.matrix:
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
                      "(green) or FAIL (red) with the worst normwise relative error over all pairs.", _png(figure))
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
                  "or FAIL (red) with the worst normwise relative error.", _png(figure))


@_plain_text
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
        if _finite(values):
            ax.plot(steps, values, marker="o", color=colours(index % 10), label=_label(pair))
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
                  "error after each checkpoint step, per pair (zero errors are not drawn on the log scale).", _png(figure))


@_plain_text
def timing_figure(inputs: Inputs) -> Figure | None:
    """Training time and steady throughput per backend, per run or sweep (sweeps: mean over cells, whiskers min to max)."""
    groups = [(run.label, run.rows) for run in inputs.runs] + [(s.name, s.rows) for s in inputs.sweeps if s.runs]
    data = []
    for label, results in groups:
        per: dict[str, dict[str, list[float]]] = {}
        for result in records(results):
            if result["status"] == "ok" and result["train_time_s"] is not None:
                slot = per.setdefault(result["backend"], {"time": [], "rate": []})
                slot["time"].append(result["train_time_s"])
                if result["steady_samples_per_s"] is not None:
                    slot["rate"].append(result["steady_samples_per_s"])
        if per:
            data.append((label, per))
    if not data:
        return None
    order = list(dict.fromkeys(b for _, per in data for b in per))
    figure = MplFigure(figsize=(max(7.0, 2.2 * len(data) + 3), 4.0), layout="constrained")
    axes = figure.subplots(1, 2)
    width = 0.8 / len(order)
    for ax, key, ylabel in ((axes[0], "time", "training time (s)"), (axes[1], "rate", "steady samples/s")):
        for b_index, backend in enumerate(order):
            xs, means, low, high = [], [], [], []
            for g_index, (_, per) in enumerate(data):
                values = per.get(backend, {}).get(key, [])
                if values:
                    mean = float(np.mean(values))
                    xs.append(g_index + (b_index - (len(order) - 1) / 2) * width)
                    means.append(mean)
                    low.append(mean - min(values))
                    high.append(max(values) - mean)
            if xs:
                ax.bar(xs, means, width=width, color=backend_colour(backend, order), label=_label(backend),
                       yerr=[low, high] if any(low) or any(high) else None, capsize=3)
        ax.set_xticks(range(len(data)), [_label(label[:40]) for label, _ in data], rotation=20, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    figure.suptitle("time and throughput per backend")
    return Figure("time-and-throughput", "Training time and steady throughput (after the first epoch) per backend; "
                  "for a sweep the mean over its cells, whiskers from the lowest to the highest cell.", _png(figure))
