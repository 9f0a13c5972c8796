"""A sweep's summary: sweep.json (versioned), sweep.csv, sweep.md and one accuracy-versus-layer PNG per head.

``sweep.json`` holds ``format_version``, what was swept (``axes``), the task, protocol (with its
``leaky`` flag), seeds and heads shared by every point, the weights (and whether they were random),
the extraction's cost (``extraction``: seconds per FiLM mode, the single-configuration baseline
when timed, their ratio), and under ``points`` one entry per (film, layer, pooling) with its run
folder, its cache entry and, per head, the test scores' mean and std and the mean validation score.
Every point's full report is its own run folder's results.json.

Why the validation score is there: every point is scored on the test split, so picking a point by
its test score would select on the test set. Choose by ``val_score_mean`` (each head's own model-
selection score on validation data); the Markdown says so. The PNGs carry the RANDOM WEIGHTS and
LEAKY warnings themselves, like the confusion matrices, because images travel alone.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audiosep_kit._tables import format_table as render_table
from audiosep_kit._validation import atomic_write_text
from audiosep_kit._versions import package_versions
from audiosep_kit.evaluate._confusion import confusion_title
from audiosep_kit.evaluate._report import banners, json_safe

SWEEP_FORMAT_VERSION = 1
SELECTION_NOTE = (
    "Every point is scored on the test split: choosing the best point by these test scores is selection on "
    "the test set. Choose by the validation score (val_score_mean), then report that point's test score."
)


def _point_entry(name: str, point: Any, report: dict) -> dict:
    scores = report["task"]["scores"]
    heads = {}
    for head, block in report["heads"].items():
        vals = [run["val_score"] for run in block["runs"] if run.get("val_score") is not None]
        heads[head] = {
            **{f"{s}_{k}": block.get(f"{s}_{k}") for s in scores for k in ("mean", "std")},
            "val_score_mean": float(np.mean(vals)) if vals else None,
            "n_runs": block["n_runs"],
        }
    cache = (report.get("provenance") or {}).get("cache") or {}
    return {
        "film": point.film, "layer": point.layer, "pooling": point.pooling, "run_dir": name,
        "cache_key": cache.get("key"), "extracted_now": cache.get("extracted_now"), "heads": heads,
    }  # fmt: skip


def build_sweep_summary(
    points: Mapping[str, tuple[Any, dict]], *, axes: dict[str, list[str]], cost: dict, command: str | None
) -> dict:
    """The sweep.json document from each point's (SweepPoint, report), keyed by run folder name."""
    first = next(iter(points.values()))[1]
    measured = first["measured"]
    return {
        "format_version": SWEEP_FORMAT_VERSION,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "axes": axes,
        "task": first["task"],
        "protocol": {"name": first["protocol"]["name"], "leaky": first["leaky"]},
        "leaky": first["leaky"],
        "seeds": first["seeds"],
        "heads": list(first["heads"]),
        "backend": measured["backend"],
        "precision": measured["precision"],
        "weights": {k: measured[k] for k in ("weights_sha256", "weights_source", "random_weights")},
        "random_weights": bool(measured["random_weights"]),
        "banners": banners(first),
        "n_test_total": measured["n_test_total"],
        "extraction": cost,
        "selection_note": SELECTION_NOTE,
        "points": [_point_entry(name, point, report) for name, (point, report) in points.items()],
        "versions": package_versions(),
    }


def _frame(summary: dict) -> pd.DataFrame:
    rows = []
    for entry in summary["points"]:
        for head, scores in entry["heads"].items():
            rows.append({
                "film": entry["film"], "layer": entry["layer"], "pooling": entry["pooling"], "head": head,
                **scores, "run_dir": entry["run_dir"], "random_weights": summary["random_weights"],
                "leaky": summary["leaky"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def _cost_lines(cost: dict) -> list[str]:
    lines = [f"- extraction of {cost['clips']} clips: sweep {cost['sweep_seconds']:.1f} s in all"]
    lines += [
        f"  - FiLM {film}: {f['seconds']:.1f} s for {f['taps']} taps ({f['taps_extracted']} extracted now)"
        for film, f in cost["films"].items()
    ]
    base = cost.get("baseline")
    if base:
        lines.append(
            f"- single configuration (film {base['film']}, {base['layer']}, {base['pooling']}) on the same clips: "
            f"{base['seconds']:.1f} s; sweep / single = {cost['ratio'] if cost['ratio'] is not None else 'n/a'}"
        )
    if cost.get("ratio_note"):
        lines.append(f"- note: {cost['ratio_note']}")
    return lines


def format_sweep_table(summary: dict, *, markdown: bool = False) -> str:
    """Per (point, head): the primary test score's mean and std and the validation score, in %."""
    score = summary["task"]["scores"][0]
    rows = [
        [r["film"], r["layer"], r["pooling"], r["head"], _percent(r[f"{score}_mean"]), _percent(r[f"{score}_std"]),
         _percent(r["val_score_mean"]), r["run_dir"]]
        for r in _frame(summary).to_dict("records")
    ]  # fmt: skip
    header = ["film", "layer", "pooling", "head", f"test {score} %", "std %", "val score %", "run folder"]
    return render_table(rows, header, markdown=markdown)


def format_sweep(summary: dict) -> str:
    """The sweep on screen: warnings, the table, the extraction cost and the selection note."""
    lines = [*summary["banners"], f"sweep of {len(summary['points'])} points on {summary['task']['name']}"]
    return "\n".join([*lines, format_sweep_table(summary), *_cost_lines(summary["extraction"]), SELECTION_NOTE])


def _markdown(summary: dict, images: dict[str, str]) -> str:
    score = summary["task"]["scores"][0]
    out = [f"# sweep: {summary['task']['name']}, protocol {summary['protocol']['name']}", ""]
    out += [f"> **{line.strip('! ')}**" for line in summary["banners"]]
    out += [""] if summary["banners"] else []
    axes = "; ".join(f"{axis}: {', '.join(values)}" for axis, values in summary["axes"].items())
    out += [
        f"- command: `{summary['command']}`" if summary["command"] else "- command: (not recorded: called from Python)",
        f"- swept: {axes}; seeds {summary['seeds']}; test set {summary['n_test_total']} clips",
        f"- engine: backend {summary['backend']}, precision {summary['precision']}; weights sha256 "
        f"{summary['weights']['weights_sha256']} from {summary['weights']['weights_source']}",
        *_cost_lines(summary["extraction"]),
        "",
        f"**{SELECTION_NOTE}**",
        "",
    ]
    out.append(format_sweep_table(summary, markdown=True))
    for head, image in images.items():
        out += ["", f"![{score} versus layer, {head}]({image})"]
    return "\n".join(out) + "\n"


def _as_percent(value: float | None, missing: float) -> float:
    return missing if value is None else 100 * value


def plot_sweep(summary: dict, head: str, path: Path) -> None:
    """Test accuracy (mean ± std, %) versus layer in network order: one line per (pooling, FiLM mode)."""
    # An Agg canvas on a bare Figure: no pyplot, so no global backend switch and no figure registry.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = summary["axes"]["layer"]
    fig = Figure(figsize=(max(5.0, 1.1 * len(layers) + 2), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    several_films = len(summary["axes"]["film"]) > 1
    for film in summary["axes"]["film"]:
        for pooling in summary["axes"]["pooling"]:
            line = [e for e in summary["points"] if (e["film"], e["pooling"]) == (film, pooling)]
            entries = {e["layer"]: e["heads"][head] for e in line}
            mean = [_as_percent(entries[layer].get("accuracy_mean"), np.nan) for layer in layers]
            std = [_as_percent(entries[layer].get("accuracy_std"), 0.0) for layer in layers]
            label = f"{pooling}, FiLM {film}" if several_films else pooling
            ax.errorbar(range(len(layers)), mean, yerr=std, marker="o", capsize=3, label=label)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_xlabel("layer (network order)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    title = confusion_title(
        summary["task"]["name"], f"{head}: accuracy vs layer", leaky=summary["leaky"],
        random_weights=summary["random_weights"],
    )  # fmt: skip
    ax.set_title(title, fontsize=9, color="darkred" if "\n" in title else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_sweep_dir(summary: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write sweep.json, sweep.csv, sweep.md and sweep_<head>.png into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for head in summary["heads"]:
        images[head] = f"sweep_{head}.png"
        plot_sweep(summary, head, out / images[head])
    paths = {"json": out / "sweep.json", "csv": out / "sweep.csv", "markdown": out / "sweep.md"}
    atomic_write_text(paths["json"], json.dumps(json_safe(summary), indent=2, allow_nan=False))
    _frame(summary).to_csv(paths["csv"], index=False)
    atomic_write_text(paths["markdown"], _markdown(summary, images))
    return {**paths, **{f"plot_{head}": out / name for head, name in images.items()}}
