"""Figures of the study sweeps: validation curves per configuration side by side, and each study's ranking."""

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from experiments.report import drawing
from experiments.report.drawing import Figure, backend_colour, plain_text, slug, visible
from experiments.report.inputs import Run, Sweep
from experiments.report.table import factor_label


def _backends_of(sweeps: list[Sweep]) -> list[str]:
    return list(dict.fromkeys(backend for sweep in sweeps for run in sweep.runs for backend in run.document.backends))


def _study_label(run: Run, fields: list[str]) -> str:
    return factor_label(run.factors, fields, run.spec.name)


@plain_text
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
                            label=visible(label) if label not in seen else "_nolegend_")
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
    return Figure("studies", "Studies side by side per backend: validation accuracy per epoch for each configuration.",
                  drawing.png(figure))


def _unstable(status: str) -> str:
    """" (1 of 3 diverged)" for a ranking row whose seeds did not all give a finite result, else ""."""
    parts = [p for p in str(status).split("; ") if p.endswith(("diverged", "FAILED"))]
    return f" ({', '.join(parts)})" if parts else ""


@plain_text
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
        ax.set_yticks(y, [visible(str(v)) + _unstable(status) for v, status in zip(part[header], part["status"])])
        ax.set_xlim(left, min(100.0, float(shown.max()) + 1.0))
        ax.set_xlabel("accuracy (%)")
        ax.set_title(visible(backend))
        ax.grid(alpha=0.3, axis="x")
    figure.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="upper right", ncols=2)
    figure.suptitle(f"{sweep.name}: ranked by validation accuracy")
    return Figure(f"ranking-{slug(sweep.name)}", f"{sweep.name}: configurations ranked per backend by final validation "
                  "accuracy (bars); test accuracy as dots, not used to rank.", drawing.png(figure))
