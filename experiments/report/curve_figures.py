"""Figures of training curves per epoch and of training time and throughput per backend."""

import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from experiments.report import drawing
from experiments.report.drawing import Figure, any_finite, backend_colour, plain_text, visible
from experiments.report.inputs import Inputs, Run, records

CURVE_PANELS = (("train_accuracy", "training accuracy"), ("val_accuracy", "validation accuracy"),
                ("train_loss", "training loss"), ("val_loss", "validation loss"))


@plain_text
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
            if not any_finite(values):
                continue
            if key.endswith("accuracy"):
                values = [100.0 * v for v in values]
            first = backend not in labelled
            labelled.add(backend)
            ax.plot(epochs, values, marker="o", markersize=3, color=backend_colour(backend, order),
                    alpha=0.9 if len(runs) == 1 else 0.55, label=visible(backend) if first else "_nolegend_")
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
    return Figure(name, f"{title}: training and validation accuracy and loss per epoch, backends overlaid.",
                  drawing.png(figure))


@plain_text
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
                ax.bar(xs, means, width=width, color=backend_colour(backend, order), label=visible(backend),
                       yerr=[low, high] if any(low) or any(high) else None, capsize=3)
        ax.set_xticks(range(len(data)), [visible(label[:40]) for label, _ in data], rotation=20, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    figure.suptitle("time and throughput per backend")
    return Figure("time-and-throughput", "Training time and steady throughput (after the first epoch) per backend; "
                  "for a sweep the mean over its cells, whiskers from the lowest to the highest cell.", drawing.png(figure))
