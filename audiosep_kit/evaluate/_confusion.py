"""Confusion-matrix PNGs that read right at 5 classes and at 50, and that carry the run's warnings.

Why each choice: tick labels shrink with the class count and the figure grows with it, so 50 labels
stay legible; up to :data:`COUNT_CELLS_UP_TO` classes each cell shows its count (a fraction hides
whether 1.0 means 1 clip or 100), above that the view is row-normalised with the clip count in the
title; a class with no test example is hatched grey and labelled "absent" instead of looking like
a class that is always wrong; a LEAKY protocol or RANDOM weights are stated on the image itself,
because PNGs travel without the summary.md that explains them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Largest class count whose cells show counts (above it the cells would be unreadable).
COUNT_CELLS_UP_TO = 20
#: Largest class count that gets tick labels at all.
_TICK_LABELS_UP_TO = 100
#: The line every PNG of a run on random weights carries (confusion matrices, embedding maps).
RANDOM_WEIGHTS_LINE = "RANDOM WEIGHTS: smoke run, not AudioSep features"


def absent_classes(matrix: np.ndarray) -> np.ndarray:
    """(C,) bool: the true classes (rows) without a single test example."""
    return np.asarray(matrix).sum(axis=1) == 0


def tick_fontsize(num_classes: int) -> float:
    """Points for tick labels: 10 for a few classes, down to 6 at 50 and beyond (the figure grows too)."""
    return float(np.clip(320 / max(num_classes, 1), 6, 10))


def figure_inches(num_classes: int) -> float:
    """Side of the square figure: about a quarter inch per class, 5 to 22 inches."""
    return float(np.clip(4 + 0.28 * num_classes, 5, 22))


def confusion_title(task: str, head: str, *, leaky: bool, random_weights: bool) -> str:
    """The PNG title: task / head, then a line per warning that applies (the image carries them)."""
    lines = [f"{task} / {head}"]
    if leaky:
        lines.append("LEAKY PROTOCOL: selected on the test set")
    if random_weights:
        lines.append(RANDOM_WEIGHTS_LINE)
    return "\n".join(lines)


def _label_cells(ax, matrix: np.ndarray, norm: np.ndarray, fontsize: float) -> None:
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            color = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=fontsize, color=color)


def _mark_absent(ax, absent: np.ndarray, width: int) -> None:
    from matplotlib.patches import Rectangle

    for i in np.flatnonzero(absent):
        ax.add_patch(Rectangle((-0.5, i - 0.5), width, 1, facecolor="0.85", edgecolor="0.5", hatch="//", linewidth=0))


def plot_confusion(matrix: np.ndarray, label_names: Sequence[str], path: Path, title: str) -> None:
    """Write the confusion matrix (rows: true, columns: predicted) as a PNG; see the module docstring."""
    # An Agg canvas on a bare Figure: no pyplot, so no global backend switch and no figure registry.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    n = len(label_names)
    rows = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    absent = absent_classes(matrix)
    fig = Figure(figsize=(figure_inches(n), figure_inches(n)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    _mark_absent(ax, absent, n)
    font = tick_fontsize(n)
    if n <= COUNT_CELLS_UP_TO:
        _label_cells(ax, matrix, norm, font)
    if n <= _TICK_LABELS_UP_TO:
        ticks = np.arange(n)
        ax.set_xticks(ticks, label_names, rotation=90, fontsize=font)
        rows_named = [f"{name} (absent)" if a else name for name, a in zip(label_names, absent, strict=True)]
        ax.set_yticks(ticks, rows_named, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    view = "counts in cells, colour = fraction of the row" if n <= COUNT_CELLS_UP_TO else "row-normalised"
    warn = "LEAKY" in title or "RANDOM" in title
    ax.set_title(f"{title}\n{view}; {int(matrix.sum())} test clips", color="darkred" if warn else "black")
    bar = fig.colorbar(image, ax=ax, fraction=0.046)
    bar.set_label("fraction of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
