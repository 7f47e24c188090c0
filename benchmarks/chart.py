"""bench-report.png: one panel per figure, its measured value as a bar against its goal (dashed),
green when met, red when not, grey when the figure is only reported."""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks.goals import GOALS, met


def draw(figures: dict[str, float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(figures, key=lambda n: (n not in GOALS, list(GOALS).index(n) if n in GOALS else 0, n))
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        value = float(figures[name])
        ok = met(name, value)
        colour = {True: "#2e7d32", False: "#c62828", None: "#757575"}[ok]
        ax.bar([0], [value], color=colour, width=0.5)
        top = value
        if name in GOALS:
            op, goal = GOALS[name]
            ax.axhline(goal, color="black", linestyle="--", linewidth=1)
            ax.text(0.3, goal, f" goal {op} {goal:g}", va="bottom", fontsize=8)
            top = max(top, goal)
        ax.set_ylim(0, (top or 1) * 1.3)
        ax.set_xlim(-0.6, 1.2)
        ax.set_xticks([])
        ax.text(0, value, f"{value:g}", ha="center", va="bottom", fontsize=9, fontweight="bold")
        ax.set_title(name, fontsize=8, color=colour)
    fig.suptitle("flare_assets benchmarks (bar: measured, dashed: goal)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
