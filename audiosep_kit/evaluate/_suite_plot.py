"""The cross-task bar chart: one PNG per head, tasks on the x axis, one bar per backend.

Bars are each task's primary score (mean, %), with the sample std over runs as error bars; the
title carries the protocol(s), the weights' checksum prefix and, when the weights are random, the
warning, so the picture cannot be mistaken for a measurement of AudioSep's features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def suite_title(rows: Sequence[dict], head: str) -> str:
    """Head, protocol(s), weights and the warnings that must travel with the numbers."""
    protocols = ", ".join(dict.fromkeys(str(r["protocol"]) for r in rows))
    weights = ", ".join(dict.fromkeys(str(r["weights_sha256"])[:12] for r in rows))
    lines = [f"{head}: primary score per task (protocol {protocols}; weights {weights})"]
    if any(r["random_weights"] for r in rows):
        lines.append("RANDOM WEIGHTS: smoke run, not AudioSep features")
    if any(r["leaky"] for r in rows):
        lines.append("LEAKY PROTOCOL: selected on the test set")
    return "\n".join(lines)


def plot_suite(rows: Sequence[dict], head: str, path: Path) -> None:
    """Grouped bars of ``rows`` (one head) into ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    width = 0.8 / max(len(backends), 1)
    fig = Figure(figsize=(max(6.0, 1.4 * len(tasks) + 2), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(tasks))
    for k, backend in enumerate(backends):
        by_task = {r["task"]: r for r in rows if r["backend"] == backend}
        means = [100 * (by_task[t]["mean"] or 0.0) if t in by_task else np.nan for t in tasks]
        stds = [100 * (by_task[t]["std"] or 0.0) if t in by_task else 0.0 for t in tasks]
        ax.bar(x + (k - (len(backends) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=backend)
    labels = [f"{t}\n({next(r['score'] for r in rows if r['task'] == t)})" for t in tasks]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    random = any(r["random_weights"] for r in rows) or any(r["leaky"] for r in rows)
    ax.set_title(suite_title(rows, head), fontsize=9, color="darkred" if random else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
