"""The figure of final test accuracy over seeds: mean and 95% interval per configuration and backend."""

import math

from matplotlib.figure import Figure as MplFigure

from experiments.report import drawing
from experiments.report.drawing import Figure, backend_colour, plain_text, visible
from experiments.report.seed_tables import SeedGroup


@plain_text
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
                            capsize=4, label=visible(g.backend) if g.backend not in seen else "_nolegend_")
            else:
                ax.plot([x], [g.mean], "o", color=colour, label=visible(g.backend) if g.backend not in seen else "_nolegend_")
            seen.add(g.backend)
            finite = [100 * a for _, a in g.finite]
            ax.scatter([x + 0.15] * len(finite), finite, color=colour, s=8, alpha=0.6)
            ticks.append(x)
            name = f"{label}\n{g.backend}" if len(labels) > 1 else g.backend
            names.append(name + (f" ({', '.join(g.problems())})" if g.problems() else ""))
            x += 1.0
        x += 0.6
    several = len(labels) > 1
    ax.set_xticks(ticks, [visible(n) for n in names], fontsize=7, rotation=30 if several else 0,
                  ha="right" if several else "center")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title("test accuracy over seeds: mean and 95% interval")
    return Figure("accuracy-over-seeds", "Final test accuracy per backend with 95% confidence intervals across seeds "
                  "(small dots: the individual seeds).", drawing.png(figure))
