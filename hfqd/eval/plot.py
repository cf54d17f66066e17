"""The one place results plots are drawn: scatter panels of (size or speed, quality), one marker per row."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Point:
    x: float
    y: float
    label: str
    marker: str = "o"
    legend: str | None = None  # rows sharing a legend entry (e.g. a peer library) say so here


@dataclass
class Panel:
    points: list[Point]
    xlabel: str
    ylabel: str
    log_x: bool = False
    title: str = ""
    legend: bool = False
    legend_loc: str = "best"  # a matplotlib location: where a long legend stays off the points
    legend_columns: int = 2
    extra: dict = field(default_factory=dict)


def scatter_panels(path: str, panels: list[Panel], width: float = 6.0, height: float = 5.0, dpi: int = 110) -> None:
    """Draw the panels side by side into the PNG ``path`` (written to a temporary name, then renamed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for p in panel.points:
            ax.scatter(p.x, p.y, marker=p.marker, s=60, label=p.legend or p.label)
            ax.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(3, 3), fontsize=7)
        if panel.log_x:
            ax.set_xscale("log")
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.title:
            ax.set_title(panel.title, fontsize=9)
        ax.grid(True, alpha=0.3)
        if panel.legend:
            ax.legend(fontsize=7, ncol=panel.legend_columns, loc=panel.legend_loc)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
